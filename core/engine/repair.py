"""The engine's book repair pipeline: snapshot requests, their answers, rebuild and validation.

A book whose continuity broke (gap, overflow, crossed or bad level, a reader's gap notice, the
operator) is invalidated and buffers again; the pipeline asks for a snapshot
(``FetchSnapshot``, retried with backoff on failure or an unusable answer), installs it, checks
every invariant, and calls the book resynchronised only once a live diff has bridged it. When
every book of the epoch is synced and validated, the epoch (and any incident) is closed with
its time-to-correct-resync. Too many unusable snapshots in a row, or a book that fails its
invariants right after a rebuild, is fatal.

A mixin of `epochbot.engine.engine.Engine` (the state it reads and writes is the engine's; see its theory
of operation): kept apart because it is one stage of the data flow, with its own tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from epochbot.book.book import BookState, SnapshotOutcome
from epochbot.model import events as ev
from epochbot.model.records import BookResync

_NO_COMMANDS: tuple = ()
_MS = 1_000_000

if TYPE_CHECKING:
    from epochbot.engine.engine import _SymbolState

__all__ = ["ResyncPipeline"]


class ResyncPipeline:
    """Part of `epochbot.engine.engine.Engine` (a mixin: no state of its own)."""

    def _request_snapshot(self, state: _SymbolState, now: int, why: str, delay_ms: float = 0.0):
        self._request_seq += 1
        state.snapshot_request = self._request_seq
        state.snapshot_requested_ns = now
        state.overflow_logged = False
        symbol = state.book.symbol
        self._log("debug", "snapshot requested", symbol=symbol, request_id=self._request_seq, why=why)
        return (
            ev.FetchSnapshot(
                epoch=self.epoch,
                symbol=symbol,
                request_id=self._request_seq,
                limit=self.config.snapshot_limits.get(symbol, self.config.snapshot_limit),
                delay_ms=delay_ms,
            ),
        )

    def _on_snapshot_ready(self, event: ev.SnapshotReady, now: int):
        state = self.symbols.get(event.symbol)
        if state is None or event.request_id != state.snapshot_request:
            self.counters["unsolicited_snapshots"] += 1
            return _NO_COMMANDS
        state.snapshot_request = 0
        book = state.book
        started = self.clock()
        outcome = book.on_snapshot(event.last_update_id, event.bids, event.asks)
        rebuild_ns = self.clock() - started
        if outcome is not SnapshotOutcome.SYNCED:
            state.bad_snapshots += 1
            self.counters["snapshots_refetched"] += 1
            self._log(
                "warn",
                f"snapshot {outcome.value}: fetch again",
                symbol=event.symbol,
                last_update_id=event.last_update_id,
                problem=book.last_problem,
            )
            if (
                outcome in (SnapshotOutcome.CROSSED, SnapshotOutcome.BAD_LEVEL)
                and state.bad_snapshots >= self.config.max_bad_snapshots
            ):
                return self._go_fatal(
                    now, f"{event.symbol}: {state.bad_snapshots} consecutive unusable snapshots ({book.last_problem})"
                )
            delay = (
                0.0
                if outcome is SnapshotOutcome.TOO_OLD and state.bad_snapshots == 1
                else self._snapshot_backoff(state.bad_snapshots)
            )
            return self._request_snapshot(state, now, outcome.value, delay)
        started = self.clock()
        problem = book.check_invariants()
        validate_ns = self.clock() - started
        if problem:
            return self._go_fatal(now, f"{event.symbol}: invariant broken right after rebuild: {problem}")
        state.bad_snapshots = 0
        record = self._current_epoch_record()
        if record is not None and not record.synced_ns:
            record.rebuild_ns += rebuild_ns
            record.validate_ns += validate_ns
        if record is not None and not record.synced_ns:
            record.snapshots_ns = max(record.snapshots_ns, now)
        self._log(
            "info",
            "book synced",
            symbol=event.symbol,
            last_update_id=book.last_update_id,
            levels=len(book.bids) + len(book.asks),
            fetch_ms=round(event.fetch_ms, 3),
            validating=book.awaiting_bridge,
        )
        if state.resync is not None:
            state.resync.snapshots += 1
        if book.awaiting_bridge:
            # Installed from REST, but no live diff has yet shown that the stream continues
            # from it: the book is not called resynchronised until one does (_on_depth).
            self._validating.add(event.symbol)
            return _NO_COMMANDS
        return self._book_validated(state, now)

    def _book_validated(self, state: _SymbolState, now: int):
        """The book is synced *and* its continuity with the live stream is proven."""
        self._validating.discard(state.book.symbol)
        if state.resync is not None:
            state.resync.synced_ns = now
            self._log(
                "info",
                "book resynchronized",
                symbol=state.book.symbol,
                cause=state.resync.cause,
                resync_ms=round(state.resync.resync_ms or 0.0, 3),
            )
            state.resync = None
        return self._maybe_resynchronized(now)

    def _on_snapshot_failed(self, event: ev.SnapshotFailed, now: int):
        state = self.symbols.get(event.symbol)
        if state is None or event.request_id != state.snapshot_request:
            return _NO_COMMANDS
        state.snapshot_request = 0
        state.bad_snapshots += 1
        self.counters["snapshots_failed"] += 1
        delay = max(float(event.retry_after_ms), self._snapshot_backoff(state.bad_snapshots))
        state.book.last_problem = f"snapshot failed ({event.reason}); retry in {delay / 1000:.1f} s"
        self._log(
            "warn", "snapshot failed: retry", symbol=event.symbol, reason=event.reason, retry_in_ms=round(delay, 1)
        )
        return self._request_snapshot(state, now, "retry", delay)

    def _snapshot_backoff(self, failures: int) -> float:
        base = self.config.snapshot_retry_base_ms * (2 ** max(0, failures - 1))
        return min(self.config.snapshot_retry_max_ms, base)

    def _maybe_resynchronized(self, now: int):
        if not self.symbols or self._validating or not all(s.book.synced for s in self.symbols.values()):
            return _NO_COMMANDS
        record = self._current_epoch_record()
        if record is not None and not record.synced_ns and record.opened_ns:
            record.synced_ns = now
            record.snapshots_ns = record.snapshots_ns or now
            self._failed_dials = 0
            self._log(
                "info",
                "resynchronized",
                cause=record.cause,
                resync_ms=round(record.resync_ms or 0.0, 3),
                phases_ms=record.phases_ms(),
            )
        if self._incident_start is not None:
            self.ttcr_ms.append((now - self._incident_start) / _MS)
            self._incident_start = None
        self._evaluate(now)
        return _NO_COMMANDS

    def _on_gap_detected(self, event: ev.GapDetected, now: int):
        state = self.symbols.get(event.symbol)
        if state is None or state.book.state is BookState.INVALID:
            return _NO_COMMANDS
        self.counters["gaps"] += 1
        state.book.gaps += 1
        cause = "malformed" if self._after_malformed(now) else "gap"
        prefix = "malformed frame skipped, then " if cause == "malformed" else ""
        state.book.invalidate(f"{prefix}reader saw gap: expected {event.expected}, got {event.got}")
        self._log("warn", "book gap: resync", symbol=event.symbol, expected=event.expected, got=event.got, cause=cause)
        self._start_book_resync(state, cause, now)
        return self._request_snapshot(state, now, cause)

    def _on_overflow(self, event: ev.MarketQueueOverflow, now: int):
        self.counters["overflow_dropped"] += event.dropped
        commands: list[ev.Command] = []
        for symbol in event.symbols:
            state = self.symbols.get(symbol)
            if state is None:
                continue
            self._log(
                "warn", "market queue overflow: events lost, book invalidated", symbol=symbol, dropped=event.dropped
            )
            if state.book.state is not BookState.EMPTY:
                state.book.invalidate("market queue overflow")
            self._start_book_resync(state, "overflow", now)
            if not state.snapshot_request:
                commands.extend(self._request_snapshot(state, now, "overflow"))
        return commands

    def _start_book_resync(self, state: _SymbolState, cause: str, now: int) -> None:
        self._validating.discard(state.book.symbol)
        if state.resync is None:
            state.resync = BookResync(state.book.symbol, cause, self.epoch, now)
            self.book_resyncs.append(state.resync)
            self.counters["book_resyncs"] += 1
        if self._incident_start is None:
            self._incident_start = now

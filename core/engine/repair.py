"""Book repair: snapshot requests, their answers, rebuild and validation, per symbol.

A book whose continuity broke (gap, overflow, crossed or bad level, a reader's gap notice, an
unreadable depth frame, the operator) is invalidated and buffers again; `BookRepair` asks for a
snapshot (``FetchSnapshot``, retried with back-off on failure or an unusable answer), installs
it, checks every invariant, and calls the book resynchronised only once a live diff has bridged
it (``validating`` holds the books waiting for that diff; the facade's hot path checks it). When
every book of the epoch is synced and validated, the epoch's record is stamped, the open
incident closes with its time-to-correct-resync, and confidence is evaluated again. Too many
unusable snapshots in a row, or a book that fails its invariants right after a rebuild, is
fatal.

Its collaborators come in through the constructor: the clock, the symbol table, the session
machine (the epoch, its record), the incidents, the log and the counters; and two callbacks into the engine
around it, ``evaluate(now)`` (confidence) and ``fatal(now, why)`` (stop, returning its commands).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from epochbot.book.book import BookState, DiffOutcome, SnapshotOutcome
from epochbot.engine.config import EngineConfig
from epochbot.engine.incidents import Incidents
from epochbot.engine.log import EngineLog
from epochbot.engine.session import SessionMachine
from epochbot.engine.symbols import Symbols, SymbolState
from epochbot.model import events as ev
from epochbot.model.records import BookResync

__all__ = ["BookRepair"]

_NO_COMMANDS: tuple[ev.Command, ...] = ()
_MS = 1_000_000
_MALFORMED_LINK_NS = 2_000_000_000  # a gap this soon after an unreadable frame is caused by it
_PARKED_BUFFER = 20  # diffs kept by a book whose snapshot waits for request weight
_MAX_DOUBLINGS = 1000  # of the retry back-off: far past any ceiling, and still a float


class BookRepair:
    """Resynchronises single books within a session (see the module docstring)."""

    def __init__(
        self,
        config: EngineConfig,
        clock: Callable[[], int],
        symbols: Symbols,
        session: SessionMachine,
        incidents: Incidents,
        log: EngineLog,
        counters: dict[str, int],
        evaluate: Callable[[int], None],
        fatal: Callable[[int, str], ev.Commands],
    ) -> None:
        self.config = config
        self.clock = clock  # times rebuild and validation (the facade keeps it current)
        self._symbols = symbols
        self._session = session
        self._incidents = incidents
        self._log = log.write
        self._counters = counters
        self._evaluate = evaluate
        self._fatal = fatal
        self.validating: set[str] = set()  # books installed from a snapshot, awaiting their bridge diff
        self.book_resyncs: deque[BookResync] = deque(maxlen=1000)
        # The request-weight planner's view (`ev.SnapshotBudget`): books whose snapshot waits.
        self.budget_waiting: tuple[str, ...] = ()
        self.budget_used = 0
        self.budget_cap = 0
        self._request_seq = 0
        self._malformed_ns, self._malformed_epoch = 0, -1  # the last unreadable frame

    # ------------------------------------------------------------------ snapshots

    def request_snapshot(self, state: SymbolState, now: int, why: str, delay_ms: float = 0.0) -> ev.Commands:
        self._request_seq += 1
        state.snapshot_request = self._request_seq
        state.snapshot_requested_ns = now
        state.overflow_logged = False
        symbol = state.book.symbol
        self._log("debug", "snapshot requested", symbol=symbol, request_id=self._request_seq, why=why)
        return (
            ev.FetchSnapshot(
                epoch=self._session.epoch,
                symbol=symbol,
                request_id=self._request_seq,
                limit=self.config.snapshot_limits.get(symbol, self.config.snapshot_limit),
                delay_ms=delay_ms,
            ),
        )

    def on_snapshot_ready(self, event: ev.SnapshotReady, now: int) -> ev.Commands:
        state = self._symbols.get(event.symbol)
        if state is None or event.request_id != state.snapshot_request:
            self._counters["unsolicited_snapshots"] += 1
            return _NO_COMMANDS
        state.snapshot_request = 0
        book = state.book
        started = self.clock()
        outcome = book.on_snapshot(event.last_update_id, event.bids, event.asks)
        rebuild_ns = self.clock() - started
        if outcome is not SnapshotOutcome.SYNCED:
            state.bad_snapshots += 1
            self._counters["snapshots_refetched"] += 1
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
                return self._fatal(
                    now, f"{event.symbol}: {state.bad_snapshots} consecutive unusable snapshots ({book.last_problem})"
                )
            delay = (
                0.0
                if outcome is SnapshotOutcome.TOO_OLD and state.bad_snapshots == 1
                else self._snapshot_backoff(state.bad_snapshots)
            )
            return self.request_snapshot(state, now, outcome.value, delay)
        started = self.clock()
        problem = book.check_invariants()
        validate_ns = self.clock() - started
        if problem:
            return self._fatal(now, f"{event.symbol}: invariant broken right after rebuild: {problem}")
        state.bad_snapshots = 0
        record = self._session.current()
        if record is not None and not record.synced_ns:
            record.rebuild_ns += rebuild_ns
            record.validate_ns += validate_ns
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
            # from it: the book is not called resynchronised until one does (book_validated).
            self.validating.add(event.symbol)
            return _NO_COMMANDS
        return self.book_validated(state, now)

    def on_snapshot_failed(self, event: ev.SnapshotFailed, now: int) -> ev.Commands:
        state = self._symbols.get(event.symbol)
        if state is None or event.request_id != state.snapshot_request:
            return _NO_COMMANDS
        state.snapshot_request = 0
        state.bad_snapshots += 1
        self._counters["snapshots_failed"] += 1
        delay = max(float(event.retry_after_ms), self._snapshot_backoff(state.bad_snapshots))
        state.book.last_problem = f"snapshot failed ({event.reason}); retry in {delay / 1000:.1f} s"
        self._log(
            "warn", "snapshot failed: retry", symbol=event.symbol, reason=event.reason, retry_in_ms=round(delay, 1)
        )
        return self.request_snapshot(state, now, "retry", delay)

    def _snapshot_backoff(self, failures: int) -> float:
        # Capped like the dial back-off: a venue failing a thousand fetches must not raise here.
        doubling: int = 2 ** min(_MAX_DOUBLINGS, max(0, failures - 1))
        base = self.config.snapshot_retry_base_ms * doubling
        return min(self.config.snapshot_retry_max_ms, base)

    def on_snapshot_budget(self, event: ev.SnapshotBudget, now: int) -> ev.Commands:
        if event.waiting and not self.budget_waiting:
            self._log(
                "warn",
                "request weight spent: snapshots wait their turn",
                waiting=len(event.waiting),
                used=event.used,
                cap=event.cap,
                first=list(event.waiting[:10]),
            )
        elif self.budget_waiting and not event.waiting:
            self._log("info", "every waiting snapshot has been requested", used=event.used, cap=event.cap)
        waiting = set(event.waiting)
        # A book whose snapshot request has not even been sent needs only the newest diffs (the
        # snapshot will be newer than anything buffered now): keep a few, not a minute's worth.
        # Bounds memory (and the collector's work) with hundreds of books waiting for weight.
        for symbol in waiting.union(self.budget_waiting):
            state = self._symbols.get(symbol)
            if state is not None:
                state.book.buffer_limit = _PARKED_BUFFER if symbol in waiting else self.config.book_buffer_limit
        self.budget_waiting = tuple(event.waiting)
        self.budget_used, self.budget_cap = event.used, event.cap
        return _NO_COMMANDS

    # ------------------------------------------------------------------ validation

    def book_validated(self, state: SymbolState, now: int) -> ev.Commands:
        """The book is synced *and* its continuity with the live stream is proven."""
        self.validating.discard(state.book.symbol)
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

    def _maybe_resynchronized(self, now: int) -> ev.Commands:
        symbols = self._symbols
        if not symbols or self.validating or not all(s.book.synced for s in symbols.values()):
            return _NO_COMMANDS
        record = self._session.resynchronized(now)
        if record is not None:
            self._log(
                "info",
                "resynchronized",
                cause=record.cause,
                resync_ms=round(record.resync_ms or 0.0, 3),
                phases_ms=record.phases_ms(),
            )
        self._incidents.close(now)
        self._evaluate(now)
        return _NO_COMMANDS

    # ------------------------------------------------------------------ what breaks a book

    def on_diff_buffered(self, state: SymbolState, now: int) -> ev.Commands:
        """A diff was buffered: the first of a wait asks for the snapshot."""
        if not state.snapshot_request:
            return self.request_snapshot(state, now, "first diff")
        return _NO_COMMANDS

    def on_diff_overflow(self, state: SymbolState, diff: ev.DepthDiff) -> ev.Commands:
        """The book's buffer was full while it waited for its snapshot (said once per wait)."""
        if not state.overflow_logged:
            state.overflow_logged = True
            self._log(
                "warn",
                "book buffer full while waiting for snapshot: oldest diffs dropped",
                symbol=diff.symbol,
                kept=len(state.book.buffer),
                awaiting_weight=diff.symbol in self.budget_waiting,
            )
        return _NO_COMMANDS

    def on_broken_diff(self, state: SymbolState, diff: ev.DepthDiff, outcome: DiffOutcome, now: int) -> ev.Commands:
        """GAP / CROSSED / BAD_LEVEL / STALE_SNAPSHOT: the book is invalid; resync it alone."""
        book = state.book
        if outcome is DiffOutcome.STALE_SNAPSHOT:
            self._counters["snapshots_refetched"] += 1
        else:
            self._counters["gaps"] += 1
        self._log(
            "warn",
            f"book {outcome.value}: resync",
            symbol=diff.symbol,
            first_id=diff.first_id,
            final_id=diff.final_id,
            prev_final_id=diff.prev_final_id,
            problem=book.last_problem,
        )
        cause = outcome.value
        if outcome is DiffOutcome.GAP and self.after_malformed(now):
            # The frame we could not read carried the missing updates: name the real cause.
            cause = "malformed"
            book.last_problem = f"malformed frame skipped, then {book.last_problem}"
        self.start_book_resync(state, cause, now)
        return self.request_snapshot(state, now, cause)

    def on_gap_detected(self, event: ev.GapDetected, now: int) -> ev.Commands:
        state = self._symbols.get(event.symbol)
        if state is None or state.book.state is BookState.INVALID:
            return _NO_COMMANDS
        self._counters["gaps"] += 1
        state.book.gaps += 1
        cause = "malformed" if self.after_malformed(now) else "gap"
        prefix = "malformed frame skipped, then " if cause == "malformed" else ""
        state.book.invalidate(f"{prefix}reader saw gap: expected {event.expected}, got {event.got}")
        self._log("warn", "book gap: resync", symbol=event.symbol, expected=event.expected, got=event.got, cause=cause)
        self.start_book_resync(state, cause, now)
        return self.request_snapshot(state, now, cause)

    def on_overflow(self, event: ev.MarketQueueOverflow, now: int) -> ev.Commands:
        self._counters["overflow_dropped"] += event.dropped
        commands: list[ev.Command] = []
        for symbol in event.symbols:
            state = self._symbols.get(symbol)
            if state is None:
                continue
            self._log(
                "warn", "market queue overflow: events lost, book invalidated", symbol=symbol, dropped=event.dropped
            )
            if state.book.state is not BookState.EMPTY:
                state.book.invalidate("market queue overflow")
            self.start_book_resync(state, "overflow", now)
            if not state.snapshot_request:
                commands.extend(self.request_snapshot(state, now, "overflow"))
        return commands

    def on_malformed(self, event: ev.MalformedFrame, now: int) -> ev.Commands:
        self._counters["malformed"] += 1
        # An unreadable frame without a symbol (invalid JSON) may have held depth updates: a gap
        # soon after it is recorded as cause "malformed" (see after_malformed).
        self._malformed_ns, self._malformed_epoch = now, self._session.epoch
        self._log(
            "warn",
            "malformed frame skipped",
            reason=event.reason[:300],
            sample=event.sample[:200],
            event=event.event,
            symbol=event.symbol,
        )
        state = self._symbols.get(event.symbol) if event.event == "depthUpdate" else None
        if state is None or state.book.state in (BookState.INVALID, BookState.EMPTY):
            return _NO_COMMANDS
        # A depth event was lost: the book can no longer be trusted; resync it alone.
        state.book.invalidate(f"malformed depth event: {event.reason[:100]}")
        self.start_book_resync(state, "malformed", now)
        if state.snapshot_request:
            return _NO_COMMANDS
        return self.request_snapshot(state, now, "malformed")

    def operator_resync(self, state: SymbolState, now: int) -> ev.Commands:
        """The operator asked for this book to be fetched again, whatever its state."""
        self._log("warn", "operator: book resync", symbol=state.book.symbol)
        if state.book.state is not BookState.EMPTY:
            state.book.invalidate("operator resync")
        self.start_book_resync(state, "operator", now)
        return self.request_snapshot(state, now, "operator")

    def after_malformed(self, now: int) -> bool:
        """A gap this soon after an unreadable frame in this epoch: that frame held the updates."""
        return self._malformed_epoch == self._session.epoch and now - self._malformed_ns <= _MALFORMED_LINK_NS

    def start_book_resync(self, state: SymbolState, cause: str, now: int) -> None:
        self.validating.discard(state.book.symbol)
        if state.resync is None:
            state.resync = BookResync(state.book.symbol, cause, self._session.epoch, now)
            self.book_resyncs.append(state.resync)
            self._counters["book_resyncs"] += 1
        self._incidents.open(now)

    # ------------------------------------------------------------------ a new epoch

    def reset(self, cause: str) -> None:
        """A new session: every book starts over (the old session's diffs and requests are void)."""
        self.validating.clear()
        for state in self._symbols.values():
            state.book.reset()
            state.book.last_problem = f"new session ({cause})"  # the current cause, not an old one
            state.snapshot_request = 0
            state.bad_snapshots = 0
            state.resync = None

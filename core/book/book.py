"""Exact local order book for one symbol, synchronised by Binance's documented rules.

Theory of operation
-------------------
A book is a pair of dicts ``price_ticks -> qty_lots`` (integers in units of the symbol's scale)
plus the best bid/ask kept incrementally, the ``last_update_id`` it reflects, and a small
synchronisation state machine:

    EMPTY      --diff-->      BUFFERING   (buffer the diff; the engine asks for a snapshot)
    BUFFERING  --diff-->      BUFFERING   (buffer)
    BUFFERING  --snapshot-->  SYNCED      (buffered diffs replayed, first one bridged)
               --snapshot-->  BUFFERING   (snapshot older than the buffer: fetch again)
    SYNCED     --diff-->      SYNCED      (continuity holds: applied)
               --diff-->      INVALID     (gap, crossed book, bad level: fetch a snapshot)
    INVALID    --diff-->      INVALID     (buffer, like BUFFERING)
    INVALID    --snapshot-->  SYNCED | INVALID
    any        --reset-->     EMPTY       (new epoch: everything from the old one is void)

The transitions live in ``_TRANSITIONS``; any other move raises ``IllegalTransition`` and leaves
the book untouched.

Continuity rules (``VenueRules``):

* spot: drop buffered diffs with ``u <= lastUpdateId``; the first applied diff must satisfy
  ``U <= lastUpdateId + 1 <= u``; afterwards ``U == previous u + 1``.
* USD-M: drop diffs with ``u < lastUpdateId``; the first applied diff must satisfy
  ``U <= lastUpdateId <= u`` (or ``pu == lastUpdateId``: the snapshot fell exactly between two
  events); afterwards ``pu == previous u``.
* A snapshot older than the first buffered diff (spot ``lastUpdateId + 1 < U``, USD-M
  ``lastUpdateId < U`` unless that diff's ``pu == lastUpdateId``) cannot be bridged: fetch
  another. The ``pu`` bridge holds whichever arrived first, the snapshot or the diff. If no diff was buffered yet, the
  snapshot is installed and the *next* diff must bridge it (else the snapshot was too old).
* A diff entirely older than the book (spot ``u <= last``; USD-M ``u <= last``) is a duplicate
  and is dropped without harm.
* After every applied diff the book must be uncrossed (best bid < best ask).

Applying a diff is the engine's hot path. Levels arrive either as the venue's strings or, when
the C decoder already converted them at this book's exact scale (``diff.scale``), as packed
integer units. With the optional C extension (``core/book/_fastbook.c``) conversion and apply run in
C; without it, a pure-Python path with memoised codecs gives identical results (parity tests).
Everything is converted before anything is applied, so a bad level never half-applies a diff.
The best price moves only when an improving level arrives or the best level is deleted (then a
short walk along the tick grid finds the next one, with a full scan as the fallback).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import struct
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import TYPE_CHECKING

from epochbot.model.digest import Digest
from epochbot.model.events import DiffLevels, Levels
from epochbot.model.numeric import DecimalFormatError, UnitCodec

if TYPE_CHECKING:
    from epochbot.model.events import DepthDiff

try:  # optional C accelerator (core/book/_fastbook.c); the pure-Python loop below is the reference
    from epochbot.book import _fastbook
except ImportError:  # pragma: no cover - depends on whether the extension was built
    _fastbook = None  # type: ignore[assignment]  # the extension is optional: None means "not built"

# Tests flip this to prove both paths against the reference model.
USE_FASTBOOK = _fastbook is not None

__all__ = ["BookState", "DiffOutcome", "IllegalTransition", "OrderBook", "SnapshotOutcome", "VenueRules"]


class BookState(str, Enum):  # noqa: UP042 - a StrEnum would change str() and format() of members, which logs and reports print
    EMPTY = "empty"
    BUFFERING = "buffering"
    SYNCED = "synced"
    INVALID = "invalid"


class VenueRules(str, Enum):  # noqa: UP042 - a StrEnum would change str() and format() of members, which logs and reports print
    SPOT = "spot"
    USDM = "usdm"


class DiffOutcome(str, Enum):  # noqa: UP042 - a StrEnum would change str() and format() of members, which logs and reports print
    APPLIED = "applied"
    BUFFERED = "buffered"
    DUPLICATE = "duplicate"  # entirely older than the book: dropped harmlessly
    GAP = "gap"  # continuity broken: book invalidated
    CROSSED = "crossed"  # applying it crossed the book: invalidated
    BAD_LEVEL = "bad_level"  # a price/qty string the book cannot represent: invalidated
    STALE_SNAPSHOT = "stale_snapshot"  # first diff after a snapshot could not bridge it
    OVERFLOW = "overflow"  # the buffer limit was hit while waiting for a snapshot


class SnapshotOutcome(str, Enum):  # noqa: UP042 - a StrEnum would change str() and format() of members, which logs and reports print
    SYNCED = "synced"
    TOO_OLD = "too_old"  # older than the buffered diffs: fetch again
    CROSSED = "crossed"  # the snapshot itself is crossed: fetch again
    BAD_LEVEL = "bad_level"
    NO_BRIDGE = "no_bridge"  # buffered diffs did not chain: fetch again


class IllegalTransition(RuntimeError):
    pass


_S = BookState
_TRANSITIONS: dict[tuple[BookState, str], frozenset[BookState]] = {
    (_S.EMPTY, "diff"): frozenset({_S.BUFFERING}),
    (_S.BUFFERING, "diff"): frozenset({_S.BUFFERING, _S.INVALID}),
    (_S.BUFFERING, "snapshot"): frozenset({_S.SYNCED, _S.BUFFERING}),
    (_S.EMPTY, "snapshot"): frozenset({_S.SYNCED, _S.BUFFERING}),
    (_S.SYNCED, "diff"): frozenset({_S.SYNCED, _S.INVALID}),
    (_S.INVALID, "diff"): frozenset({_S.INVALID}),
    (_S.INVALID, "snapshot"): frozenset({_S.SYNCED, _S.INVALID}),
    (_S.SYNCED, "invalidate"): frozenset({_S.INVALID}),
    (_S.BUFFERING, "invalidate"): frozenset({_S.INVALID}),
    (_S.INVALID, "invalidate"): frozenset({_S.INVALID}),
    (_S.EMPTY, "invalidate"): frozenset({_S.INVALID}),
}

_TICK_WALK = 64  # steps along the tick grid before falling back to a full scan

_unpack_units = struct.Struct("=qq").iter_unpack


def _padded(units: int, decimals: int) -> str:
    if not decimals:
        return str(units)
    digits = str(units).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def unit_levels_as_strings(levels: bytes, scale: tuple[int, int]) -> Levels:
    """Unit levels from the C decoder (bytes of int64 pairs at ``scale``) -> ``[price, qty]``
    decimal strings padded to the scale: exactly the values the venue sent, so parsing them at
    any codec gives what parsing the original strings would have."""
    pd, qd = scale
    return [[_padded(p, pd), _padded(q, qd)] for p, q in _unpack_units(levels)]


def _as_strings(levels: DiffLevels, scale: tuple[int, int] | None) -> Levels:
    """A diff's levels as the venue's strings (they are packed units exactly when it has a scale)."""
    if isinstance(levels, bytes):
        assert scale is not None, "packed units always come with their scale"
        return unit_levels_as_strings(levels, scale)
    return levels


class OrderBook:
    """One symbol's book; mutated only by the engine (single consumer)."""

    __slots__ = (
        "symbol",
        "rules",
        "codec",
        "tick",
        "bids",
        "asks",
        "best_bid",
        "best_ask",
        "last_update_id",
        "state",
        "buffer",
        "buffer_limit",
        "awaiting_bridge",
        "gaps",
        "resyncs",
        "duplicates",
        "applied",
        "last_problem",
    )

    def __init__(
        self,
        symbol: str,
        rules: VenueRules = VenueRules.SPOT,
        codec: UnitCodec | None = None,
        tick: int | None = None,
        buffer_limit: int = 10_000,
    ) -> None:
        self.symbol = symbol
        self.rules = rules
        self.codec = codec  # None until exchangeInfo or the first snapshot fixes the scale
        self.tick = tick  # price units per tick (None: inferred from the snapshot)
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.best_bid: int | None = None
        self.best_ask: int | None = None
        self.last_update_id = 0
        self.state = BookState.EMPTY
        self.buffer: list[DepthDiff] = []
        self.buffer_limit = buffer_limit
        self.awaiting_bridge = False
        self.gaps = 0
        self.resyncs = 0
        self.duplicates = 0
        self.applied = 0
        self.last_problem = ""

    # ----------------------------------------------------------------------------- transitions

    def _move(self, trigger: str, target: BookState) -> None:
        allowed = _TRANSITIONS.get((self.state, trigger))
        if allowed is None or target not in allowed:
            raise IllegalTransition(f"{self.symbol}: {self.state.value} --{trigger}--> {target.value}")
        self.state = target

    def reset(self) -> None:
        """A new epoch: forget everything (the old session's diffs are void)."""
        self.bids.clear()
        self.asks.clear()
        self.best_bid = self.best_ask = None
        self.last_update_id = 0
        self.buffer.clear()
        self.awaiting_bridge = False
        self.state = BookState.EMPTY

    def invalidate(self, problem: str) -> None:
        """Continuity doubt from outside (overflow, operator): stop trusting, keep buffering."""
        self._move("invalidate", BookState.INVALID)
        self.last_problem = problem
        self.buffer.clear()
        self.awaiting_bridge = False

    # ----------------------------------------------------------------------------- diffs

    def on_diff(self, diff: DepthDiff) -> DiffOutcome:
        """Feed one DepthDiff of the current epoch; returns what happened to it."""
        state = self.state
        if state is BookState.SYNCED:
            return self._on_synced_diff(diff)
        if state is BookState.EMPTY:
            self._move("diff", BookState.BUFFERING)
        if len(self.buffer) >= self.buffer_limit:
            # Waiting too long for a snapshot: keep the newest window. Dropping the oldest
            # diffs is safe because a snapshot older than what remains is refused anyway.
            del self.buffer[: self.buffer_limit // 2]
            self.buffer.append(diff)
            return DiffOutcome.OVERFLOW
        self.buffer.append(diff)
        return DiffOutcome.BUFFERED

    def _on_synced_diff(self, diff: DepthDiff) -> DiffOutcome:
        last = self.last_update_id
        u = diff.final_id
        if self.awaiting_bridge:
            if u < last or (self.rules is VenueRules.SPOT and u == last):
                self.duplicates += 1
                return DiffOutcome.DUPLICATE
            bridge = last + 1 if self.rules is VenueRules.SPOT else last
            # USD-M: an event whose pu equals the snapshot's id continues it exactly (the
            # snapshot was taken between two events); the documented U <= id <= u test
            # alone would refuse that perfectly good bridge and loop on refetches.
            bridged = diff.first_id <= bridge <= u or (self.rules is VenueRules.USDM and diff.prev_final_id == last)
            if not bridged:
                return self._break(
                    DiffOutcome.STALE_SNAPSHOT, f"first diff U={diff.first_id} u={u} does not bridge snapshot {last}"
                )
            self.awaiting_bridge = False
        elif self.rules is VenueRules.SPOT:
            if diff.first_id != last + 1:
                if u <= last:
                    self.duplicates += 1
                    return DiffOutcome.DUPLICATE
                return self._break(DiffOutcome.GAP, f"U={diff.first_id} expected {last + 1}")
        else:
            if diff.prev_final_id != last:
                if u <= last:
                    self.duplicates += 1
                    return DiffOutcome.DUPLICATE
                return self._break(DiffOutcome.GAP, f"pu={diff.prev_final_id} expected {last}")
        try:
            self._apply_levels(diff.bids, diff.asks, diff.scale)
        except (DecimalFormatError, ValueError, TypeError) as exc:
            return self._break(DiffOutcome.BAD_LEVEL, f"bad level in update {u}: {exc}")
        self.last_update_id = u
        self.applied += 1
        bb = self.best_bid
        ba = self.best_ask
        if bb is not None and ba is not None and bb >= ba:
            return self._break(DiffOutcome.CROSSED, f"crossed after update {u}: bid {bb} >= ask {ba}")
        return DiffOutcome.APPLIED

    def _break(self, outcome: DiffOutcome, problem: str) -> DiffOutcome:
        self._move("diff", BookState.INVALID)
        if outcome is not DiffOutcome.STALE_SNAPSHOT:
            self.gaps += 1
        self.last_problem = problem
        self.awaiting_bridge = False
        self.buffer.clear()
        return outcome

    # ----------------------------------------------------------------------------- snapshot

    def on_snapshot(self, last_update_id: int, bids: Levels, asks: Levels) -> SnapshotOutcome:
        """Install a REST snapshot and replay the buffered diffs by the venue's rules."""
        before = self.state
        if (before, "snapshot") not in _TRANSITIONS:
            # Refuse before touching anything: an illegal move leaves the book untouched.
            raise IllegalTransition(f"{self.symbol}: {before.value} --snapshot-->")
        target_fail = BookState.INVALID if before is BookState.INVALID else BookState.BUFFERING
        if self.codec is None:
            # No exchangeInfo: infer the scale from the strings we have. An empty snapshot
            # with nothing buffered cannot tell; refuse it rather than fix a wrong scale.
            sample = list(bids) + list(asks)
            for diff in self.buffer:
                sample.extend(_as_strings(diff.bids, diff.scale))
                sample.extend(_as_strings(diff.asks, diff.scale))
            try:
                codec = UnitCodec.infer(sample) if sample else None
            except (TypeError, ValueError, AttributeError):
                codec = None
            if codec is None:
                self._move("snapshot", target_fail)
                self.last_problem = "empty snapshot and no exchangeInfo: price scale unknown"
                return SnapshotOutcome.BAD_LEVEL
            self.codec = codec
        buffered = self.buffer
        spot = self.rules is VenueRules.SPOT
        if buffered:
            first = buffered[0]
            first_u = first.first_id
            # USD-M: a first buffered diff whose pu equals the snapshot's id continues it
            # exactly (the same bridge as in _on_synced_diff), however U compares.
            too_old = (
                (last_update_id + 1 < first_u)
                if spot
                else (last_update_id < first_u and first.prev_final_id != last_update_id)
            )
            if too_old:
                self._move("snapshot", target_fail)
                self.last_problem = f"snapshot {last_update_id} older than buffered U={first_u}"
                return SnapshotOutcome.TOO_OLD
        try:
            new_bids = self._parse_side(bids)
            new_asks = self._parse_side(asks)
        except (DecimalFormatError, ValueError, TypeError) as exc:
            self._move("snapshot", target_fail)
            self.last_problem = f"bad snapshot level: {exc}"
            return SnapshotOutcome.BAD_LEVEL
        best_bid = max(new_bids) if new_bids else None
        best_ask = min(new_asks) if new_asks else None
        if best_bid is not None and best_ask is not None and best_bid >= best_ask:
            self._move("snapshot", target_fail)
            self.last_problem = f"crossed snapshot {last_update_id}: bid {best_bid} >= ask {best_ask}"
            return SnapshotOutcome.CROSSED
        if self.tick is None:
            prices = list(new_bids) + list(new_asks)
            self.tick = math.gcd(*prices) if prices else 1
        # Install, then replay the buffer through the ordinary synced path.
        self.bids, self.asks = new_bids, new_asks
        self.best_bid, self.best_ask = best_bid, best_ask
        self.last_update_id = last_update_id
        self.buffer = []
        self._move("snapshot", BookState.SYNCED)
        self.awaiting_bridge = True
        replayed_problem = None
        for diff in buffered:
            outcome = self._on_synced_diff(diff)
            if outcome in (DiffOutcome.APPLIED, DiffOutcome.DUPLICATE):
                continue
            replayed_problem = outcome
            break
        if replayed_problem is not None:
            # _break moved us to INVALID and counted a gap; a snapshot that cannot be bridged
            # by its own buffer is "fetch again", not a gap in the live stream.
            if replayed_problem is not DiffOutcome.STALE_SNAPSHOT:
                self.gaps -= 1
            return SnapshotOutcome.NO_BRIDGE
        self.resyncs += 1
        return SnapshotOutcome.SYNCED

    def _parse_side(self, levels: Iterable[Sequence[str]]) -> dict[int, int]:
        codec = self.codec
        assert codec is not None, "on_snapshot fixes the codec before it parses a side"
        if _fastbook is not None and USE_FASTBOOK and type(levels) is list:
            # The C converter (same exact semantics, ~10x faster on a 1000-level side): a
            # snapshot burst of hundreds of books must not stall the loop.
            return {p: q for p, q in _fastbook.levels_to_units(levels, codec.price_decimals, codec.qty_decimals) if q}
        price, qty = codec.price, codec.qty
        out: dict[int, int] = {}
        for p, q in levels:
            lots = qty[q]
            if lots:
                out[price[p]] = lots
        return out

    # ----------------------------------------------------------------------------- hot path

    def _apply_levels(
        self, bid_levels: DiffLevels, ask_levels: DiffLevels, scale: tuple[int, int] | None = None
    ) -> None:
        fb = _fastbook
        # Two facts mypy cannot see, and checking them here would cost every diff on the hot path
        # (hence the ignores): only a synced book applies levels, and on_snapshot fixes the codec
        # before it syncs one; a diff's levels are packed units exactly when it has a ``scale``
        # (`epochbot.model.events.DepthDiff`), else the venue's strings.
        codec: UnitCodec = self.codec  # type: ignore[assignment]
        res = None
        if scale is not None:
            bid_units: bytes = bid_levels  # type: ignore[assignment]
            ask_units: bytes = ask_levels  # type: ignore[assignment]
            # Levels the C decoder already converted (bytes of int64 pairs at `scale`). Usable
            # as they are only at this book's own scale; otherwise (a codec inferred or changed
            # after decoding) they go back to exact decimal strings and take the string path.
            if fb is not None and USE_FASTBOOK and scale[0] == codec.price_decimals and scale[1] == codec.qty_decimals:
                res = fb.apply_units(
                    self.bids, self.asks, bid_units, ask_units, self.tick, self.best_bid, self.best_ask
                )
            if res is None:  # another scale, the C path off, or a tick beyond 64 bits
                bid_strings = unit_levels_as_strings(bid_units, scale)
                ask_strings = unit_levels_as_strings(ask_units, scale)
                scale = None
        else:
            bid_strings = bid_levels  # type: ignore[assignment]
            ask_strings = ask_levels  # type: ignore[assignment]
        if res is None:  # the venue's strings (as sent, or unpacked above)
            if fb is None or not USE_FASTBOOK:
                self._apply_levels_py(bid_strings, ask_strings)
                return
            # Same steps as _apply_levels_py with the parsing, the tick check and both per-side
            # loops in one C call (parse everything first: a bad string raises before the book is
            # touched).
            res = fb.apply_levels(
                self.bids,
                self.asks,
                bid_strings,
                ask_strings,
                codec.price_decimals,
                codec.qty_decimals,
                self.tick,
                self.best_bid,
                self.best_ask,
            )
            if res is None:  # a price, quantity or tick beyond 64 bits: the general C path
                self._apply_levels_c(bid_strings, ask_strings)
                return
        self.tick, top, lost, atop, alost = res
        if lost or top is not None:
            side = self.bids
            best = self.best_bid
            if lost and best not in side:
                best = self._next_bid(best)
            if top is not None and (best is None or top > best):
                best = top
            self.best_bid = best
        if alost or atop is not None:
            side = self.asks
            best = self.best_ask
            if alost and best not in side:
                best = self._next_ask(best)
            if atop is not None and (best is None or atop < best):
                best = atop
            self.best_ask = best

    def _apply_levels_c(self, bid_levels: Levels, ask_levels: Levels) -> None:
        # General C path (Python ints of any size): convert, coarsen the tick, apply per side.
        fb = _fastbook
        codec = self.codec
        assert fb is not None and codec is not None, "taken only after the C fast path declined"
        to_units = fb.levels_to_units
        pd = codec.price_decimals
        qd = codec.qty_decimals
        bids = to_units(bid_levels, pd, qd)
        asks = to_units(ask_levels, pd, qd)
        tick = self.tick
        if tick and tick != 1:
            if bids:
                tick = fb.grid_tick(bids, tick)
            if asks:
                tick = fb.grid_tick(asks, tick)
            self.tick = tick
        apply_side = fb.apply_side
        if bids:
            side = self.bids
            best = self.best_bid
            top, lost = apply_side(side, bids, True, best)
            if lost and best not in side:
                best = self._next_bid(best)
            if top is not None and (best is None or top > best):
                best = top
            self.best_bid = best
        if asks:
            side = self.asks
            best = self.best_ask
            top, lost = apply_side(side, asks, False, best)
            if lost and best not in side:
                best = self._next_ask(best)
            if top is not None and (best is None or top < best):
                best = top
            self.best_ask = best

    def _apply_levels_py(self, bid_levels: Levels, ask_levels: Levels) -> None:
        codec = self.codec
        assert codec is not None, "only a synced book applies levels, and a synced book has a codec"
        price = codec.price
        qty = codec.qty
        # Convert both sides first: a bad string raises before the book is touched. Then one
        # plain loop per side (on CPython this beats zip/map/dict.update plus the extra passes
        # for deletions).
        bids = [(price[p], qty[q]) for p, q in bid_levels]
        asks = [(price[p], qty[q]) for p, q in ask_levels]
        tick = self.tick
        if tick and tick != 1:
            # Keep every price on the walk grid: a tick inferred from a snapshot (gcd of its
            # prices) can be coarser than the venue's, and the best-price walk would skip an
            # off-grid level.
            for p, _ in bids:
                if p % tick:
                    tick = math.gcd(tick, p)
            for p, _ in asks:
                if p % tick:
                    tick = math.gcd(tick, p)
            self.tick = tick
        if bids:
            side = self.bids
            best = self.best_bid
            top = None
            lost = False
            for p, q in bids:
                if q:
                    side[p] = q
                    if top is None or p > top:
                        top = p
                elif side.pop(p, None) is not None and p == best:
                    lost = True
            if top is not None and top not in side:  # a price repeated in the message ended deleted
                top = max([p for p, _ in bids if p in side], default=None)
            if lost and best not in side:
                best = self._next_bid(best)
            if top is not None and (best is None or top > best):
                best = top
            self.best_bid = best
        if asks:
            side = self.asks
            best = self.best_ask
            top = None
            lost = False
            for p, q in asks:
                if q:
                    side[p] = q
                    if top is None or p < top:
                        top = p
                elif side.pop(p, None) is not None and p == best:
                    lost = True
            if top is not None and top not in side:
                top = min([p for p, _ in asks if p in side], default=None)
            if lost and best not in side:
                best = self._next_ask(best)
            if top is not None and (best is None or top < best):
                best = top
            self.best_ask = best

    def _next_bid(self, gone: int | None) -> int | None:
        """The best bid after ``gone`` (the old best, deleted) left the book."""
        side = self.bids
        if not side:
            return None
        assert gone is not None, "called when the best bid was deleted, so there was one"
        tick = self.tick or 1
        p = gone - tick
        for _ in range(_TICK_WALK):
            if p in side:
                return p
            p -= tick
        return max(side)

    def _next_ask(self, gone: int | None) -> int | None:
        """The best ask after ``gone`` (the old best, deleted) left the book."""
        side = self.asks
        if not side:
            return None
        assert gone is not None, "called when the best ask was deleted, so there was one"
        tick = self.tick or 1
        p = gone + tick
        for _ in range(_TICK_WALK):
            if p in side:
                return p
            p += tick
        return min(side)

    # ----------------------------------------------------------------------------- views

    @property
    def synced(self) -> bool:
        return self.state is BookState.SYNCED

    def top(self, depth: int = 20) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Best ``depth`` levels per side as (price_units, qty_units), best first."""
        bids = self.bids
        asks = self.asks
        top_bids = heapq.nlargest(depth, bids)
        top_asks = heapq.nsmallest(depth, asks)
        return [(p, bids[p]) for p in top_bids], [(p, asks[p]) for p in top_asks]

    def top_strings(self, depth: int = 20) -> tuple[list[list[str]], list[list[str]]]:
        """Top levels as plain decimal strings (no trailing zeros, no exponent)."""
        codec = self.codec
        if codec is None:
            return [], []
        bids, asks = self.top(depth)
        ps, qs = codec.price_str, codec.qty_str
        return [[ps(p), qs(q)] for p, q in bids], [[ps(p), qs(q)] for p, q in asks]

    def state_hash(self) -> str:
        """Deterministic digest of the full book and its update id (sha256, hex)."""
        h = hashlib.sha256()
        self.feed_hash(h)
        return h.hexdigest()

    def feed_hash(self, h: Digest) -> None:
        """Feed the book (state, update id, scale, every level) into a state digest."""
        codec = self.codec
        h.update(f"{self.symbol}|{self.state.value}|{self.last_update_id}|".encode())
        if codec is None:
            return
        h.update(f"{codec.price_decimals},{codec.qty_decimals}|".encode())
        for side in (self.bids, self.asks):
            h.update(",".join(f"{p}:{side[p]}" for p in sorted(side)).encode())
            h.update(b"|")

    def check_invariants(self) -> str | None:
        """Full (slow) consistency check: cached best prices, no zero levels, uncrossed."""
        if self.state is not BookState.SYNCED:
            return None
        if any(q <= 0 for q in self.bids.values()) or any(q <= 0 for q in self.asks.values()):
            return "non-positive quantity in book"
        bb = max(self.bids) if self.bids else None
        ba = min(self.asks) if self.asks else None
        if bb != self.best_bid or ba != self.best_ask:
            return f"cached best ({self.best_bid}, {self.best_ask}) != actual ({bb}, {ba})"
        if bb is not None and ba is not None and bb >= ba:
            return f"crossed: {bb} >= {ba}"
        return None

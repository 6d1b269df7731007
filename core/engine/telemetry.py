"""Latency telemetry: rolling windows with p50/p99/max at O(1) cost per sample.

A `RollingHistogram` keeps a ring of one-second slots; each slot is a log-linear histogram
(16 sub-buckets per power of two, so any percentile is reported within ~6% of the true value)
of integer microseconds plus its exact max. Recording a sample is a bit_length, a shift and an
increment; a query merges the slots of the window (a few thousand integer additions, done at the
snapshot rate, not per event).

Three measurements per event (``../shared/DESIGN.md``):

* transport latency = recv - exchange - clock offset (venue minus local)
* queue delay       = process - recv
* market silence    = now - last receive of useful market data (per symbol and per connection)
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate

__all__ = ["LatencyStats", "RollingHistogram", "Telemetry", "bucket_of", "bucket_upper"]

_SUB = 16  # sub-buckets per octave
_LINEAR = 2 * _SUB  # values below this are their own bucket
_NBUCKETS = 40 * _SUB  # up to ~2^40 us; larger values land in the last bucket


def bucket_of(value: int) -> int:
    if value < _LINEAR:
        return value if value > 0 else 0
    shift = value.bit_length() - 5  # keep the top 5 bits: 16..31
    return shift * _SUB + (value >> shift)


def bucket_upper(index: int) -> int:
    """Largest value that falls into ``index`` (a conservative percentile estimate)."""
    if index < _LINEAR:
        return index
    shift, top = divmod(index, _SUB)
    shift -= 1
    top += _SUB
    return ((top + 1) << shift) - 1


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Window summary in milliseconds."""

    last: float
    p50: float
    p99: float
    max: float
    count: int

    def as_dict(self) -> dict[str, float]:
        return {"p50": round(self.p50, 3), "p99": round(self.p99, 3), "max": round(self.max, 3)}


EMPTY_STATS = LatencyStats(0.0, 0.0, 0.0, 0.0, 0)


class RollingHistogram:
    """Samples (integer microseconds) over the last ``window_s`` seconds of the given clock.

    Each one-second slot keeps its own counts; ``_agg`` is the running sum of the slots still
    inside the window, so a query never merges slots: it expires what fell out (a subtraction
    per expired slot, at most once a second) and runs one C-level prefix sum for the ranks.
    """

    __slots__ = (
        "window_s",
        "_counts",
        "_maxes",
        "_slot_sec",
        "_agg",
        "_cur",
        "_cur_sec",
        "_cur_slot",
        "last",
        "total",
        "_run",
        "_run_max",
    )

    def __init__(self, window_s: int = 10) -> None:
        self.window_s = window_s
        self._counts = [[0] * _NBUCKETS for _ in range(window_s)]
        self._maxes = [0] * window_s
        self._slot_sec = [-1] * window_s
        self._agg = [0] * _NBUCKETS
        self._cur: list[int] = self._counts[0]
        self._cur_sec = -1
        self._cur_slot = 0
        self.last = 0
        self.total = 0
        # Whole-run counts beside the window (one record feeds both; never expire).
        self._run = [0] * _NBUCKETS
        self._run_max = 0

    def record(self, value_us: int, now_s: int) -> None:
        if now_s != self._cur_sec:
            self._rotate(now_s)
        if value_us < _LINEAR:
            idx = value_us if value_us > 0 else 0
        else:
            shift = value_us.bit_length() - 5
            idx = shift * _SUB + (value_us >> shift)
            if idx >= _NBUCKETS:
                idx = _NBUCKETS - 1
        self._cur[idx] += 1
        self._agg[idx] += 1
        self._run[idx] += 1
        if value_us > self._maxes[self._cur_slot]:
            self._maxes[self._cur_slot] = value_us
            if value_us > self._run_max:
                self._run_max = value_us
        self.last = value_us
        self.total += 1

    def restart_window(self) -> None:
        """Forget the window (a new connection is judged on its own); keep the whole run."""
        for slot in range(self.window_s):
            self._clear_slot(slot)
        self._cur_sec = -1

    def _clear_slot(self, slot: int) -> None:
        agg = self._agg
        counts = self._counts[slot]
        for i, c in enumerate(counts):
            if c:
                agg[i] -= c
                counts[i] = 0
        self._maxes[slot] = 0
        self._slot_sec[slot] = -1

    def _expire(self, now_s: int) -> None:
        oldest = now_s - self.window_s + 1
        for slot, sec in enumerate(self._slot_sec):
            if sec != -1 and sec < oldest:
                self._clear_slot(slot)

    def _rotate(self, now_s: int) -> None:
        # The wall clock may step back a little: seconds inside the window keep their slot.
        self._expire(now_s)
        slot = now_s % self.window_s
        if self._slot_sec[slot] not in (-1, now_s):
            self._clear_slot(slot)
        self._slot_sec[slot] = now_s
        self._cur = self._counts[slot]
        self._cur_slot = slot
        self._cur_sec = now_s

    def stats(self, now_s: int) -> LatencyStats:
        self._expire(now_s)
        if self._cur_sec != -1 and self._slot_sec[self._cur_slot] != self._cur_sec:
            self._cur_sec = -1  # the current slot expired: the next record re-rotates
        cum = list(accumulate(self._agg))
        n = cum[-1]
        if n == 0:
            return LatencyStats(self.last / 1000, 0.0, 0.0, 0.0, 0)
        peak = max(self._maxes)
        return LatencyStats(
            self.last / 1000,
            min(_rank_value(cum, n, 0.50), peak) / 1000,
            min(_rank_value(cum, n, 0.99), peak) / 1000,
            peak / 1000,
            n,
        )

    def run_stats(self) -> LatencyStats:
        """Over every sample ever recorded (the headless report's whole-run figures)."""
        cum = list(accumulate(self._run))
        n = cum[-1]
        if n == 0:
            return LatencyStats(self.last / 1000, 0.0, 0.0, 0.0, 0)
        peak = self._run_max
        return LatencyStats(
            self.last / 1000,
            min(_rank_value(cum, n, 0.50), peak) / 1000,
            min(_rank_value(cum, n, 0.99), peak) / 1000,
            peak / 1000,
            n,
        )


def _rank_value(cum: list[int], n: int, q: float) -> int:
    rank = max(1, -(-int(q * n * 1_000_000) // 1_000_000))  # ceil(q*n) without float drift
    return bucket_upper(bisect_left(cum, rank))


class Telemetry:
    """Per-event measurements for one engine; times are integer nanoseconds (local wall clock).

    ``clock_offset_ms`` is venue minus local (from REST /time); transport latency subtracts it
    so a skewed local clock does not masquerade as network latency.
    """

    __slots__ = (
        "transport",
        "queue",
        "silence_samples",
        "clock_offset_ns",
        "last_market_recv",
        "last_recv_by_symbol",
        "events",
    )

    def __init__(self, window_s: int = 10) -> None:
        self.transport = RollingHistogram(window_s)
        self.queue = RollingHistogram(window_s)

        self.silence_samples = RollingHistogram(window_s)
        self.clock_offset_ns = 0
        self.last_market_recv = 0  # ns, whole connection
        self.last_recv_by_symbol: dict[str, int] = {}
        self.events = 0

    def on_market(self, symbol: str, exchange_ts_ms: int, recv_ts: int, process_ts: int) -> None:
        now_s = process_ts // 1_000_000_000
        self.queue.record((process_ts - recv_ts) // 1000, now_s)
        if exchange_ts_ms:
            self.transport.record((recv_ts - exchange_ts_ms * 1_000_000 + self.clock_offset_ns) // 1000, now_s)
        self.last_market_recv = recv_ts
        self.last_recv_by_symbol[symbol] = recv_ts
        self.events += 1

    def silence_ns(self, now: int, symbol: str | None = None) -> int:
        """Market silence: time since the last useful market data (0 before any arrived)."""
        last = self.last_market_recv if symbol is None else self.last_recv_by_symbol.get(symbol, 0)
        return max(0, now - last) if last else 0

    def reset_connection(self, now: int) -> None:
        """A new session: silence restarts from its opening, not from the dead one's last frame,
        and the rolling latency windows forget the old connection (the whole-run ones keep it)."""
        self.transport.restart_window()
        self.queue.restart_window()
        self.last_market_recv = now
        for symbol in self.last_recv_by_symbol:
            self.last_recv_by_symbol[symbol] = now

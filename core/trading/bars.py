"""Candles: kline backfill planning with gap detection.

Backfill: given the open times we hold for an interval and the span we want, `find_gaps` lists
the missing candle ranges and `backfill_requests` cuts them into REST requests of at most
``limit`` klines (Binance serves 1000 per call on spot, 1500 on USD-M). Open times off the
interval grid are reported as ``misaligned`` rather than silently trusted.

Range bars are market data the engine keeps for the price pane: `epochbot.engine.market_history` defines
them (re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from epochbot.engine.market_history import RangeBar, RangeBarBuilder

__all__ = ["GapRange", "KlineGaps", "RangeBar", "RangeBarBuilder", "backfill_requests", "find_gaps", "interval_ms"]

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def interval_ms(interval: str) -> int:
    """Binance interval names ("1s", "1m", "15m", "4h", "1d", "1w") in milliseconds.

    "1M" (calendar month) has no fixed length and is refused.
    """
    if len(interval) < 2 or interval[-1] not in _UNIT_MS or not interval[:-1].isdigit() or int(interval[:-1]) <= 0:
        raise ValueError(f"unsupported kline interval {interval!r}")
    return int(interval[:-1]) * _UNIT_MS[interval[-1]]


@dataclass(frozen=True, slots=True)
class GapRange:
    """Missing candles with open times ``start_ms``, ``start_ms + step``, ... ``end_ms`` (inclusive)."""

    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def count(self) -> int:
        return (self.end_ms - self.start_ms) // self.step_ms + 1


@dataclass(frozen=True, slots=True)
class KlineGaps:
    gaps: tuple[GapRange, ...]
    misaligned: tuple[int, ...]  # open times not on the interval grid
    duplicates: int

    @property
    def missing(self) -> int:
        return sum(g.count for g in self.gaps)


def find_gaps(open_times: Iterable[int], interval: str | int, start_ms: int, end_ms: int) -> KlineGaps:
    """Missing candles in ``[start_ms, end_ms]`` (open times; the bounds are aligned inward)."""
    step = interval if isinstance(interval, int) else interval_ms(interval)
    first = -(-start_ms // step) * step
    last = end_ms // step * step
    have: set[int] = set()
    misaligned = []
    duplicates = 0
    for ts in open_times:
        if ts % step:
            misaligned.append(ts)
            continue
        if ts in have:
            duplicates += 1
        have.add(ts)
    gaps = []
    t = first
    for ts in sorted(x for x in have if first <= x <= last) + [last + step]:
        if ts > t:
            gaps.append(GapRange(t, ts - step, step))
        t = ts + step
    return KlineGaps(tuple(gaps), tuple(sorted(misaligned)), duplicates)


def backfill_requests(gaps: Iterable[GapRange], limit: int = 1000) -> list[tuple[int, int]]:
    """(startTime, endTime) pairs for GET klines, each covering at most ``limit`` candles."""
    out = []
    for gap in gaps:
        t = gap.start_ms
        while t <= gap.end_ms:
            end = min(gap.end_ms, t + (limit - 1) * gap.step_ms)
            out.append((t, end))
            t = end + gap.step_ms
    return out

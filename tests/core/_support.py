"""Small shared helpers for the core tests: a fake clock and event builders."""

from __future__ import annotations

from epochbot.model import events as ev


class FakeClock:
    """Integer-nanosecond clock that only moves when a test says so."""

    def __init__(self, start_ns: int = 1_000_000_000_000) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> int:
        self.now += int(ms * 1_000_000)
        return self.now


def diff(
    first: int,
    final: int,
    bids=(),
    asks=(),
    *,
    pu: int | None = None,
    symbol: str = "BTCUSDT",
    epoch: int = 1,
    recv_ts: int = 0,
    exchange_ts: int = 0,
) -> ev.DepthDiff:
    return ev.DepthDiff(
        epoch,
        symbol,
        first,
        final,
        pu,
        [list(level) for level in bids],
        [list(level) for level in asks],
        exchange_ts,
        recv_ts,
    )

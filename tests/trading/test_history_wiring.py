"""Candles and range bars wired into the engine, the strategy API and the kline backfill.

Pure tests: a fake REST client for the backfill (paging, gap refetch, what stays missing), the
engine fed synthetic Kline/AggTrade events, the trader's warm-up hook.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.persistence.storage import Candle
from epochbot.runtime.runtime import backfill_klines
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.strategy import BaseStrategy, OrderIntent, Strategy
from epochbot.trading.trader import Trader
from epochbot.venues.binance.wire import streams_for
from epochbot.views.snapshot import SnapshotBuilder

M = 60_000
SYM = "BTCUSDT"


def row(open_ts: int, close: str = "100.0") -> list:
    return [open_ts, "100.0", "101.0", "99.0", close, "1.5", open_ts + M - 1, "150", 3, "1", "100", "0"]


class FakeRest:
    """Serves rows like Binance: the oldest ``limit`` with open time in [start, end]."""

    def __init__(self, open_times, *, hide_once=(), hide_always=()) -> None:
        self.open_times = sorted(open_times)
        self.hide_once = set(hide_once)
        self.hide_always = set(hide_always)
        self.calls: list[tuple[int, int, int]] = []

    async def klines(self, symbol, interval, start_ms, end_ms, limit):
        self.calls.append((start_ms, end_ms, limit))
        first_call = len(self.calls) == 1
        out = [
            t
            for t in self.open_times
            if start_ms <= t <= end_ms and t not in self.hide_always and not (first_call and t in self.hide_once)
        ]
        return [row(t) for t in out[:limit]]


def run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------- streams


def test_streams_for_adds_the_kline_stream_on_the_market_route():
    usdm = streams_for([SYM], "usdm", kline_interval="1m")
    assert "btcusdt@kline_1m" in usdm["/market"] and not any("kline" in s for s in usdm["/public"])
    spot = streams_for([SYM], "spot", kline_interval="1m")
    assert "btcusdt@kline_1m" in spot[""]
    assert not any("kline" in s for r in streams_for([SYM], "usdm").values() for s in r)  # off by default


# ---------------------------------------------------------------------------------- backfill


def test_backfill_pages_and_returns_every_closed_candle():
    start, end = 100 * M, 129 * M
    rest = FakeRest(range(start, end + M, M))
    result = run(backfill_klines(rest, SYM, "1m", start, end, limit=7))
    assert [c.open_ts for c in result.candles] == list(range(start, end + M, M))
    assert result.missing == 0 and result.refetched == 0
    assert len(rest.calls) == 5  # 7+7+7+7+2
    assert all(c.closed and c.interval == "1m" and c.symbol == SYM for c in result.candles)


def test_backfill_refetches_gaps_once_and_recovers_them():
    start, end = 100 * M, 119 * M
    hidden = {105 * M, 106 * M, 113 * M}
    rest = FakeRest(range(start, end + M, M), hide_once=hidden)
    result = run(backfill_klines(rest, SYM, "1m", start, end))
    assert result.missing == 0 and result.refetched == 3
    assert rest.calls[1:] == [(105 * M, 106 * M, 1000), (113 * M, 113 * M, 1000)]
    assert len(result.candles) == 20


def test_backfill_flags_what_is_still_missing():
    start, end = 100 * M, 119 * M
    rest = FakeRest(range(start, end + M, M), hide_always={110 * M, 111 * M})
    result = run(backfill_klines(rest, SYM, "1m", start, end))
    assert result.missing == 2
    assert [(g.start_ms, g.end_ms) for g in result.gaps] == [(110 * M, 111 * M)]
    assert len(rest.calls) == 2  # one refetch, not a loop


def test_shorter_history_than_asked_is_not_a_gap_and_the_forming_candle_is_left_out():
    # The venue (the simulator) has candles only since 150: asking from 100 is not 50 missing.
    start, end = 100 * M, 159 * M
    rest = FakeRest(range(150 * M, 161 * M, M))  # 160 is still forming at now=160.5
    result = run(backfill_klines(rest, SYM, "1m", start, end, now_ms=160 * M + M // 2))
    assert result.start_ms == 150 * M and result.missing == 0
    assert [c.open_ts for c in result.candles] == list(range(150 * M, 160 * M, M))
    empty = run(backfill_klines(FakeRest([]), SYM, "1m", start, end))
    assert empty.candles == [] and empty.missing == 0


# ---------------------------------------------------------------------------------- engine


def make_engine(**kw) -> Engine:
    t = [1_000_000_000]
    engine = Engine(EngineConfig(symbols=(SYM,), **kw), lambda: t[0])
    engine.handle(ev.SymbolSpec(symbol=SYM, tick_size="0.1", step_size="0.001", min_notional="5"))
    return engine


def kline(open_ts: int, closed: bool, close: str = "100.0") -> ev.Kline:
    return ev.Kline(
        0, SYM, "1m", open_ts, open_ts + M - 1, "100.0", "101.0", "99.0", close, "2.0", closed, open_ts + M, 0
    )


def test_add_candles_merges_in_order_without_duplicates_and_is_bounded():
    engine = make_engine(candle_history=5)
    c = lambda t, close="1": Candle(SYM, "1m", t, "1", "1", "1", close, "0")  # noqa: E731
    assert engine.market.add_candles(SYM, [c(3 * M), c(1 * M), c(2 * M)]) == 3
    assert engine.market.add_candles(SYM, [c(2 * M, "9"), c(4 * M)]) == 1
    assert [x.open_ts for x in engine.market.candles(SYM)] == [M, 2 * M, 3 * M, 4 * M]
    assert engine.market.candles(SYM)[1].close == "9"
    engine.market.add_candles(SYM, [c(t * M) for t in range(5, 12)])
    assert [x.open_ts for x in engine.market.candles(SYM)] == [t * M for t in range(7, 12)]
    assert engine.market.add_candles(SYM, [Candle(SYM, "5m", 20 * M, "1", "1", "1", "1", "0")]) == 0  # another interval


def test_closed_live_klines_extend_the_history_and_are_queued_for_storage():
    engine = make_engine()
    engine.market.add_candles(SYM, [Candle(SYM, "1m", 10 * M, "1", "1", "1", "1", "0")])
    engine.handle(kline(11 * M, False))  # still forming: not history
    assert [c.open_ts for c in engine.market.candles(SYM)] == [10 * M]
    engine.handle(kline(11 * M, True, close="100.5"))
    assert engine.market.pending_candles is None  # nothing collected without storage
    engine.market.pending_candles = []
    engine.handle(kline(12 * M, True))
    engine.handle(kline(12 * M, True))  # a repeat: merged, not appended twice
    assert [c.open_ts for c in engine.market.candles(SYM)] == [10 * M, 11 * M, 12 * M]
    assert engine.market.candles(SYM)[1] == Candle(SYM, "1m", 11 * M, "100.0", "101.0", "99.0", "100.5", "2.0", True)
    assert [c.open_ts for c in engine.market.pending_candles] == [12 * M, 12 * M]  # storage upserts by open time


def test_range_bars_from_agg_trades_reach_the_snapshot():
    engine = make_engine(range_bar_bps=10, range_bar_keep=3)
    prices = [
        "100.0",
        "100.0",
        "100.1",  # +10 bps: bar 1 closes at 100.1
        "100.0",
        "99.9",  # -10 bps from 100.0: bar 2
        "99.9",
        "100.0",  # +10 bps from 99.9... 0.1/99.9 = 10.01 bps: bar 3
        "100.0",
        "100.1",  # bar 4 (keep=3 drops bar 1)
        "100.1",
    ]  # forming
    for i, p in enumerate(prices):
        engine.handle(ev.AggTrade(0, SYM, i, p, "0.010", False, 1_000 + i, 1_000 + i, 0))
    snap = SnapshotBuilder("test").build(engine)
    bars = snap.book(SYM).range_bars
    assert bars == (
        (1_004, "100", "100", "99.9", "99.9"),
        (1_006, "99.9", "100", "99.9", "100"),
        (1_008, "100", "100.1", "100", "100.1"),
    )
    disabled = make_engine(range_bar_bps=0)
    for i, p in enumerate(prices):
        disabled.handle(ev.AggTrade(0, SYM, i, p, "0.010", False, 1_000 + i, 1_000 + i, 0))
    assert SnapshotBuilder("test").build(disabled).book(SYM).range_bars == ()


# ---------------------------------------------------------------------------------- strategy


@dataclass
class Recorder(BaseStrategy):
    name: str = "recorder"
    seen: list = field(default_factory=list)

    def on_history(self, symbol, candles):
        self.seen.append((symbol, [c.open_ts for c in candles]))
        return [OrderIntent(symbol, "BUY", 0, 1, tag="noop")]  # qty 0: cancels nothing, places nothing


def test_trader_warm_up_hands_the_history_to_the_strategy():
    strategy = Recorder()
    assert isinstance(strategy, Strategy)
    trader = Trader(strategy, {SYM: SymbolFilters.from_strings(SYM, "0.1", "0.001", market="usdm")})
    candles = [Candle(SYM, "1m", t * M, "1", "1", "1", "1", "0") for t in range(3)]
    assert trader.warm_up(SYM, candles) == []
    assert trader.warm_up(SYM, []) == []
    assert strategy.seen == [(SYM, [0, M, 2 * M])]
    assert BaseStrategy().on_history(SYM, candles) == []


def test_a_strategy_without_on_history_is_not_told():
    class Bare:
        name = "bare"

        def on_book(self, view):
            return []

        def on_trade(self, trade):
            return []

        def on_fill(self, fill):
            return []

        def on_mode_change(self, mode):
            return []

        def on_timer(self, now_ns):
            return []

    trader = Trader(Bare(), {SYM: SymbolFilters.from_strings(SYM, "0.1", "0.001")})
    assert trader.warm_up(SYM, [Candle(SYM, "1m", 0, "1", "1", "1", "1", "0")]) == []

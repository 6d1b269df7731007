"""Kline backfill at start against the embedded simulator, and USD-M funding from the mark stream.

The runtime test seeds the simulator with 30 minutes of candles (two of them missing), runs the
live Runtime with paper trading and SQLite storage over loopback, and checks the history in the
engine, the missing-candle count, the strategy's warm-up and what storage holds. Waits are
event-driven and bounded. The funding test drives the engine with a synthetic MarkPrice
sequence and a non-zero position.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

import pytest

from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.persistence.storage import SqliteStorage
from epochbot.runtime.config import VENUES, RuntimeConfig, TradingConfig
from epochbot.sim.streams import KlineState
from epochbot.trading import strategy as strategy_mod
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.portfolio import FundingRecord
from epochbot.trading.strategy import _Base, register_strategy
from epochbot.trading.trader import Trader
from tests.runtime.test_runtime_sim import Running

M = 60_000
SYM = "BTCUSDT"
HOLE = (10, 9)  # minutes ago with no candle at the venue


@dataclass
class HistoryRecorder(_Base):
    name: str = "history-recorder"
    seen: dict = field(default_factory=dict)

    def on_history(self, symbol, candles):
        self.seen[symbol] = list(candles)
        return []


LAST: list[HistoryRecorder] = []


def _make_recorder(params) -> HistoryRecorder:
    strategy = HistoryRecorder()
    LAST.append(strategy)
    return strategy


@pytest.fixture
def recorder_strategy():
    """Registered for one test only (the registry is global; its names are listed in errors)."""
    register_strategy("history-recorder", _make_recorder)
    try:
        yield
    finally:
        strategy_mod._REGISTRY.pop("history-recorder", None)


class Seeded:
    """Gives the embedded simulator 30 closed 1m candles before the runtime asks for them."""

    def __init__(self) -> None:
        self.seeded: list[int] = []

    def __call__(self, sim) -> None:
        now = int(time.time() * 1000)
        minute = now - now % M
        for sym in sim.config.symbols:
            m = sim.markets[sym]
            p = m.last_trade_price
            old = list(sim.candles.history(sym))
            ks = sim.candles.history(sym)
            ks.clear()
            for ago in range(30, 0, -1):
                if ago in HOLE:
                    continue
                ks.append(KlineState(minute - ago * M, p, p + 1, p - 1, p))
                if sym == SYM:
                    self.seeded.append(minute - ago * M)
            ks.extend(k for k in old if k.open_ms >= minute)


async def test_backfill_at_start_fills_history_flags_the_hole_and_warms_up(tmp_path, recorder_strategy):
    LAST.clear()
    db = str(tmp_path / "bot.sqlite")
    venue = replace(VENUES["sim"], market="usdm")
    cfg = RuntimeConfig(
        venue=venue,
        symbols=(SYM,),
        sim_rate=50.0,
        history_lookback_min=120,
        trading=TradingConfig(strategy="history-recorder", storage_path=db),
    )
    seed = Seeded()
    async with Running(cfg, prepare=seed) as (rt, _):
        streams = [s for route in rt.streams.routes() for s in route.streams]
        assert "btcusdt@kline_1m" in streams
        history = [c.open_ts for c in rt.engine.market.candles(SYM)]
        # Everything seeded is there (the venue had only 30 of the 120 minutes asked: no gap
        # before its first candle), the hole was refetched once and is flagged.
        assert set(seed.seeded) <= set(history)
        assert history == sorted(history) and len(history) == len(set(history))
        assert rt.engine.counters["candles_missing"] == len(HOLE)
        assert any(r.msg.startswith("kline backfill: candles still missing") for r in rt.engine.log)
        strategy = LAST[-1]
        assert [c.open_ts for c in strategy.seen[SYM]] == history
        assert rt.engine.market.pending_candles is not None  # live closed klines are persisted too
    storage = SqliteStorage(db)
    try:
        stored = [c.open_ts for c in storage.load_candles(SYM, "1m")]
    finally:
        storage.close()
    assert set(seed.seeded) <= set(stored)


async def test_backfill_off_with_zero_lookback():
    venue = replace(VENUES["sim"], market="usdm")
    cfg = RuntimeConfig(venue=venue, symbols=(SYM,), sim_rate=50.0, history_lookback_min=0)
    async with Running(cfg, prepare=Seeded()) as (rt, _):
        assert not any(r.msg.startswith("kline backfill") for r in rt.engine.log)
        assert rt.engine.counters["candles_missing"] == 0
        # Only a live closed kline can be there (the seeded last one closes when the sim's
        # minute turns over): nothing was fetched.
        assert len(rt.engine.market.candles(SYM)) <= 1


# ---------------------------------------------------------------------------------- funding

H8 = 8 * 3_600_000


def mark(t_next: int, rate: str, price: str, e_ms: int, symbol: str = SYM) -> ev.MarkPrice:
    return ev.MarkPrice(0, symbol, price, price, rate, t_next, e_ms, 0)


def funding_engine():
    filters = {s: SymbolFilters.from_strings(s, "0.1", "0.001", market="usdm") for s in (SYM, "ETHUSDT")}
    trader = Trader(_Base(), filters)
    engine = Engine(EngineConfig(symbols=(SYM, "ETHUSDT")), lambda: 1, trader=trader)
    return engine, trader


def expected(qty_lots: int, mark_text: str, rate: str) -> Fraction:
    return -Fraction(qty_lots, 1000) * Fraction(Decimal(mark_text)) * Fraction(Decimal(rate))


def test_funding_from_mark_price_events_is_settled_once_per_funding_time():
    engine, trader = funding_engine()
    trader.portfolio.apply_fill(SYM, "BUY", 1_500, 500_000, ts_ns=1)  # long 1.5 @ 50000
    events = [
        mark(H8, "0.00010000", "50001.1", H8 - 3_000),  # first sight: a baseline only
        mark(H8, "0.00012000", "50010.3", H8 - 1_000),  # the rate and mark in force at 8h
        mark(2 * H8, "-0.00005000", "50020.0", H8 + 50),  # 8h has passed: settle once
        mark(2 * H8, "-0.00005000", "50021.0", H8 + 1_050),  # same funding time: nothing
        mark(H8, "0.00012000", "50021.0", H8 + 1_100),  # a stale next time: nothing
    ]
    for e in events:
        assert not engine.handle(e)
    records = [r for r in trader.drain_records() if isinstance(r, FundingRecord)]
    assert len(records) == 1
    first = records[0]
    assert (first.symbol, first.ts_ns, first.rate, first.mark_price, first.qty) == (
        SYM,
        H8 * 1_000_000,
        Decimal("0.00012000"),
        500_103,
        1_500,
    )
    assert first.amount == expected(1_500, "50010.3", "0.00012") < 0  # a long pays a positive rate

    trader.portfolio.apply_fill(SYM, "SELL", 2_500, 500_200, ts_ns=2)  # now short 1.0
    engine.handle(mark(2 * H8, "-0.00005000", "50030.7", 2 * H8 - 500))
    engine.handle(mark(3 * H8, "0.0001", "50040.0", 2 * H8 + 20))
    records = [r for r in trader.drain_records() if isinstance(r, FundingRecord)]
    assert len(records) == 1 and records[0].ts_ns == 2 * H8 * 1_000_000
    assert records[0].amount == expected(-1_000, "50030.7", "-0.00005")  # a short pays a negative rate
    assert records[0].amount < 0
    assert trader.portfolio.position(SYM).funding == first.amount + records[0].amount
    assert engine.counters["funding_settlements"] == 2


def test_no_funding_for_a_flat_position_or_without_a_trader():
    engine, trader = funding_engine()
    engine.handle(mark(H8, "0.0001", "3000.0", H8 - 100, "ETHUSDT"))
    engine.handle(mark(2 * H8, "0.0001", "3000.0", H8 + 100, "ETHUSDT"))
    assert not [r for r in trader.drain_records() if isinstance(r, FundingRecord)]
    bare = Engine(EngineConfig(symbols=(SYM,)), lambda: 1)
    bare.handle(mark(H8, "0.0001", "3000.0", H8 - 100))
    assert bare.handle(mark(2 * H8, "0.0001", "3000.0", H8 + 100)) == ()

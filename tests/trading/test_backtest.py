"""Backtests: simulated fills, determinism, exact PnL reconciliation, drawdown and mode time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import pytest

from epochbot.model import events as ev
from epochbot.offline.backtest import FillModel, run_backtest, run_backtest_capture
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.money import to_decimal
from epochbot.trading.strategy import OrderIntent, get_strategy

CAPTURE = "/work/shared/captures/binance-spot-2021-10-12.jsonl"
CAPTURE_2024 = "/work/shared/captures/binance-spot-2024-08-08.jsonl.gz"
BTC = SymbolFilters.from_strings("BTCUSDT", "0.01", "0.001", min_qty="0.001", min_notional="5")
FILTERS = {"BTCUSDT": BTC}
MS = 1_000_000
T0 = 1_700_000_000_000 * MS


def ticker(i: int, bid: int, ask: int, ts: int) -> ev.BookTicker:
    return ev.BookTicker(0, "BTCUSDT", i, BTC.price_str(bid), "1", BTC.price_str(ask), "1", ts // MS, ts)


def trade(i: int, price: int, ts: int, buyer_is_maker: bool = False) -> ev.AggTrade:
    return ev.AggTrade(0, "BTCUSDT", i, BTC.price_str(price), "0.5", buyer_is_maker, ts // MS, ts // MS, ts)


def synthetic_market(seed: int = 7, steps: int = 600) -> list:
    """A seeded random walk of bookTickers with trades printing around the touch."""
    rng = random.Random(seed)
    out = []
    bid = 2_000_000
    ts = T0
    for i in range(steps):
        ts += rng.randint(20, 200) * MS
        bid += rng.choice((-3, -1, 0, 0, 1, 3))
        ask = bid + rng.choice((1, 2, 3))
        out.append(ticker(i, bid, ask, ts))
        if rng.random() < 0.6:
            ts += MS
            price = rng.choice((bid - 4, bid - 2, bid, ask, ask + 2, ask + 4))
            out.append(trade(i, price, ts, buyer_is_maker=price <= bid))
    return out


def reconcile_from_fills(report) -> Decimal:
    """Independent of the report's own arithmetic: cash from every fill, minus fees, plus marks."""
    cash = Fraction(0)
    position = 0
    for fill in report.fills:
        notional = Fraction(fill.price * fill.qty, 10 ** (BTC.price_decimals + BTC.qty_decimals))
        cash += -notional if fill.side == "BUY" else notional
        cash -= Fraction(fill.fee)
        position += fill.qty if fill.side == "BUY" else -fill.qty
    mark = report.marks["BTCUSDT"] / 10**BTC.price_decimals
    return to_decimal(cash + mark * Fraction(position, 10**BTC.qty_decimals))


@dataclass
class Scripted:
    """Emits queued intents at given view counts."""

    name: str = "scripted"
    plan: dict = field(default_factory=dict)
    seen: int = 0

    def on_book(self, view):
        self.seen += 1
        return self.plan.pop(self.seen, [])

    def on_trade(self, trade):
        return []

    def on_fill(self, fill):
        return []

    def on_mode_change(self, mode):
        return []

    def on_timer(self, now_ns):
        return []


@pytest.mark.parametrize("name", ["quoter", "momentum"])
def test_pnl_reconciles_exactly_with_the_fills(name):
    # The quoter with its fee floor off: this is about reconciliation, and it must trade a lot.
    params = {"moves": 2, "cooldown_ms": 500} if name == "momentum" else {"half_spread_bps": 0.0, "exit_edge_bps": -1.0}

    report = run_backtest(synthetic_market(), get_strategy(name, params), FillModel(), filters=FILTERS)

    assert report.trades > 5
    assert reconcile_from_fills(report) == report.pnl
    assert report.reconcile() == report.pnl
    assert report.pnl == report.realized + report.unrealized - report.fees


@pytest.mark.parametrize("name", ["quoter", "momentum"])
def test_the_same_input_gives_the_same_report(name):
    first = run_backtest(synthetic_market(seed=11), get_strategy(name), filters=FILTERS)
    second = run_backtest(synthetic_market(seed=11), get_strategy(name), filters=FILTERS)

    assert first.digest() == second.digest()
    assert first.as_dict() == second.as_dict()


def test_a_market_order_fills_at_the_opposite_best_and_pays_the_taker_fee():
    strategy = Scripted(plan={1: [OrderIntent("BTCUSDT", "BUY", 1_000, None, "MARKET", None)]})
    events = [ticker(1, 2_000_000, 2_000_002, T0)]

    report = run_backtest(events, strategy, FillModel(taker_fee_bps=Decimal(4)), filters=FILTERS)

    (fill,) = report.fills
    assert (fill.price, fill.qty, fill.is_maker) == (2_000_002, 1_000, False)
    assert fill.fee == Decimal("8.000008")  # 20000.02 * 4 bps


def test_a_resting_bid_fills_only_when_a_trade_prints_through_it():
    strategy = Scripted(plan={1: [OrderIntent("BTCUSDT", "BUY", 1_000, 1_999_990, tag="bid")]})
    events = [
        ticker(1, 2_000_000, 2_000_002, T0),
        trade(1, 1_999_990, T0 + MS, buyer_is_maker=True),  # at the price: not through
        trade(2, 1_999_989, T0 + 2 * MS, buyer_is_maker=True),  # through
    ]

    report = run_backtest(events, strategy, FillModel(maker_fee_bps=Decimal(0)), filters=FILTERS)

    (fill,) = report.fills
    assert (fill.price, fill.is_maker, fill.ts_ns, fill.fee) == (1_999_990, True, T0 + 2 * MS, 0)


def test_max_drawdown_is_the_worst_fall_of_marked_equity_from_its_peak():
    strategy = Scripted(plan={1: [OrderIntent("BTCUSDT", "BUY", 1_000, None, "MARKET", None)]})
    events = [
        ticker(1, 100_00, 100_02, T0),  # buy 1 @ 100.02, equity at mid -0.01
        ticker(2, 99_00, 99_02, T0 + MS),  # -1.01
        ticker(3, 101_00, 101_02, T0 + 2 * MS),  # +0.99 (new peak)
        ticker(4, 100_00, 100_02, T0 + 3 * MS),  # -0.01: a 1.00 fall
    ]

    report = run_backtest(events, strategy, FillModel(Decimal(0), Decimal(0)), filters=FILTERS)

    assert report.max_drawdown == Decimal("1.01")
    assert report.pnl == Decimal("-0.01")


def test_time_in_each_mode_is_reported_and_strict_modes_stop_entries():
    strategy = Scripted(plan={2: [OrderIntent("BTCUSDT", "BUY", 1_000, None, "MARKET", None)]})
    events = [
        ticker(1, 2_000_000, 2_000_002, T0),
        ev.OperatorSetMode(mode="reduce-only", recv_ts=T0 + 1_000 * MS),
        ticker(2, 2_000_000, 2_000_002, T0 + 1_500 * MS),
        ev.OperatorSetMode(mode="normal", recv_ts=T0 + 4_000 * MS),
    ]

    report = run_backtest(events, strategy, filters=FILTERS)

    assert report.mode_time_ns == {"normal": 1_000 * MS, "reduce-only": 3_000 * MS}
    assert report.fills == [] and report.refusals == {"mode reduce-only": 1}


def test_a_capture_backtest_follows_the_engine_mode_is_deterministic_and_reconciles():
    first = run_backtest_capture(CAPTURE, get_strategy("quoter"))
    second = run_backtest_capture(CAPTURE, get_strategy("quoter"))

    assert first.digest() == second.digest()
    assert first.orders_placed > 0
    assert set(first.mode_time_ns) >= {"halted", "normal"}
    assert first.reconcile() == first.pnl


def test_a_gzipped_capture_of_raw_trade_prints_backtests_and_its_prints_fill_the_quoter():
    import os

    if not os.path.exists(CAPTURE_2024):
        pytest.skip("the 2024 real capture is not at hand")

    report = run_backtest_capture(CAPTURE_2024, get_strategy("quoter"))

    assert report.events > 50_000
    assert report.trades > 0  # the capture's @trade prints reach the maker fill model
    assert report.reconcile() == report.pnl

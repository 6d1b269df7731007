"""The quoter's default spread and exits clear the maker fee (issue 13: the demo must not defeat
itself), and breaker trips are warnings with cause and until-time."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec
from epochbot.trading.alerts import RiskAlerts
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.portfolio import Portfolio, RoundTrip
from epochbot.trading.risk import RiskGate, RiskLimits
from epochbot.trading.strategy import MarketView, get_strategy

S = 1_000_000_000
BTC = SymbolFilters("BTCUSDT", 2, 3, tick=10, step=1, min_qty=1, market="usdm")  # tick 0.10, step 0.001


@dataclass
class Fill:
    symbol: str
    side: str
    qty: int
    price: int


def view(bid: int, ask: int, position: int = 0, entry=None) -> MarketView:
    return MarketView(
        "BTCUSDT", 0, UnitCodec(2, 3), 10, bid, ask, ((bid, 5),), ((ask, 5),), position, Mode.NORMAL, entry_price=entry
    )


def quotes(q, v) -> dict:
    return {i.tag: i for i in q.on_book(v)}


def test_while_long_the_ask_never_sells_below_break_even_after_both_maker_fees():
    q = get_strategy("quoter", {"size_lots": 3})
    q.on_fill(Fill("BTCUSDT", "BUY", 3, 6_000_000))  # bought 0.003 at 60000.00

    ask = quotes(q, view(5_999_990, 6_000_010, position=3))["ask"]

    # 60000 * (1 + 2bp) / (1 - 2bp) * (1 + 0.5bp) = 60027.01...: on the tick grid, rounded up
    assert ask.side == "SELL" and ask.qty == 3 and ask.price >= 6_002_710
    assert ask.price % 10 == 0


def test_while_short_the_bid_never_buys_above_break_even_after_both_maker_fees():
    q = get_strategy("quoter", {"size_lots": 3})
    q.on_fill(Fill("BTCUSDT", "SELL", 3, 6_000_000))

    bid = quotes(q, view(5_999_990, 6_000_010, position=-3))["bid"]

    assert bid.side == "BUY" and bid.qty == 3 and bid.price <= 5_997_300


def test_after_a_restart_the_exit_floor_comes_from_the_positions_average_entry():
    q = get_strategy("quoter", {"size_lots": 3})  # no fills seen by this instance

    ask = quotes(q, view(5_999_990, 6_000_010, position=6, entry=Fraction(6_000_000)))["ask"]

    assert ask.price >= 6_002_710 and ask.qty == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-1, 1]), st.integers(0, 400)), min_size=5, max_size=80))
def test_a_round_trip_made_of_the_quoters_own_quotes_never_loses(moves):
    """Whatever path the market takes, fills at the quoter's own prices (the simulator's rule:
    a resting order fills at its limit once the book crosses it) close trips at a profit."""
    q = get_strategy("quoter", {})
    portfolio = Portfolio({"BTCUSDT": BTC})
    resting: dict = {}
    mid = 6_000_000
    fee = Fraction(2, 10_000)
    trips: list[RoundTrip] = []
    for direction, ticks in moves:
        mid += direction * ticks * 10
        bid, ask = mid - 10, mid + 10
        for tag, (side, price, qty) in list(resting.items()):
            if (side == "BUY" and ask <= price) or (side == "SELL" and bid >= price):
                del resting[tag]
                _, trip = portfolio.apply_fill("BTCUSDT", side, qty, price, BTC.notional(price, qty) * fee, "", 0)
                if trip is not None:
                    trips.append(trip)
                q.on_fill(Fill("BTCUSDT", side, qty, price))
        pos = portfolio.position("BTCUSDT")
        entry = pos.avg_entry * 100 if pos.qty else None
        for intent in q.on_book(view(bid, ask, position=pos.qty, entry=entry)):
            if intent.qty:
                resting[intent.tag] = (intent.side, intent.price, intent.qty)
            else:
                resting.pop(intent.tag, None)
    assert all(not trip.losing for trip in trips), trips


def test_the_old_symmetric_quoter_is_still_available_with_the_floor_off():
    q = get_strategy("quoter", {"size_lots": 3, "half_spread_bps": 0.0, "exit_edge_bps": -1.0})
    q.on_fill(Fill("BTCUSDT", "BUY", 3, 6_000_000))

    ask = quotes(q, view(5_999_990, 6_000_010, position=3))["ask"]

    assert ask.price < 6_000_100


# ------------------------------------------------------------------------------- alerts


@dataclass
class FakeTrader:
    risk: RiskGate


def losing_trip(ts: int) -> RoundTrip:
    return RoundTrip("BTCUSDT", ts - S, ts, Fraction(-1))


def test_a_tripping_breaker_is_one_warning_with_cause_and_until_time():
    trader = FakeTrader(RiskGate(RiskLimits(breaker_losses=3), {"BTCUSDT": BTC}))
    alerts = RiskAlerts()
    for i in range(3):
        trader.risk.on_round_trip(losing_trip((i + 1) * S), (i + 1) * S)

    first = alerts.poll(trader)
    again = alerts.poll(trader)

    assert len(first) == 1 and again == []
    level, msg, fields = first[0]
    assert level == "warn" and msg == "circuit breaker tripped"
    assert fields["symbol"] == "BTCUSDT" and "3 losing round trips within 600 s" == fields["cause"]
    assert fields["until"] == "00:15:03 UTC"


def test_a_breaker_restored_at_startup_is_not_reported_again_but_a_new_trip_is():
    trader = FakeTrader(RiskGate(RiskLimits(breaker_losses=1), {"BTCUSDT": BTC}))
    trader.risk.state.breakers["BTCUSDT"] = 100 * S
    alerts = RiskAlerts(known_breakers={"BTCUSDT": 100 * S})

    assert alerts.poll(trader) == []
    trader.risk.on_round_trip(losing_trip(2000 * S), 2000 * S)
    assert [a[1] for a in alerts.poll(trader)] == ["circuit breaker tripped"]


def test_a_latched_session_loss_limit_is_a_warning():
    trader = FakeTrader(RiskGate(RiskLimits(session_loss_limit=Fraction(5)), {"BTCUSDT": BTC}))
    alerts = RiskAlerts()
    trader.risk.on_pnl(Fraction(-6), S)

    assert [a[1] for a in alerts.poll(trader)] == ["session loss limit reached"]

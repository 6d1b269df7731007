"""Pre-trade gates, circuit breakers, loss limits and the risk state's restore policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.portfolio import RoundTrip
from epochbot.trading.risk import DAY_NS, RiskGate, RiskLimits, RiskState
from epochbot.trading.strategy import MarketView, OrderIntent, get_strategy, strategy_names

S = 1_000_000_000
DAY0 = 20_000 * DAY_NS  # some UTC midnight
BTC = SymbolFilters.from_strings("BTCUSDT", "0.01", "0.001", min_qty="0.001", min_notional="5")
FILTERS = {"BTCUSDT": BTC}
PRICE = 2_000_000  # 20000.00


@dataclass
class Working:
    """What the gate needs to know about a live order."""

    side: str
    remaining: int
    client_order_id: str = "x"
    resting: bool = True
    state_value: str = "NEW"

    @property
    def signed_remaining(self) -> int:
        return self.remaining if self.side == "BUY" else -self.remaining

    @property
    def is_resting_maker(self) -> bool:
        return self.resting

    @property
    def state(self):
        return type("S", (), {"value": self.state_value})()


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def advance(self, ns: int) -> int:
        self.now += ns
        return self.now


def gate(**limits) -> RiskGate:
    return RiskGate(RiskLimits(**limits), FILTERS, RiskState(day=DAY0 // DAY_NS))


def buy(qty=10, price=PRICE, **kw) -> OrderIntent:
    return OrderIntent("BTCUSDT", "BUY", qty, price, **kw)


def sell(qty=10, price=PRICE, **kw) -> OrderIntent:
    return OrderIntent("BTCUSDT", "SELL", qty, price, **kw)


# ------------------------------------------------------------------------------- modes


def test_normal_mode_passes_a_plain_order():
    assert gate().check(buy(), mode=Mode.NORMAL, position=0, now_ns=DAY0).ok


def test_halted_refuses_even_an_exit():
    decision = gate().check(sell(10, tif="IOC"), mode=Mode.HALTED, position=10, now_ns=DAY0)

    assert not decision.ok and decision.reason.startswith("mode halted")


def test_reduce_only_passes_an_exit_and_refuses_new_exposure():
    g = gate()

    exit_ok = g.check(sell(5), mode=Mode.REDUCE_ONLY, position=10, now_ns=DAY0)
    add = g.check(buy(5), mode=Mode.REDUCE_ONLY, position=10, now_ns=DAY0)
    overshoot = g.check(sell(11), mode=Mode.REDUCE_ONLY, position=10, now_ns=DAY0)

    assert exit_ok.ok
    assert not add.ok and "would not reduce" in add.reason
    assert not overshoot.ok


def test_reduce_only_counts_other_working_exits_against_the_position():
    decision = gate().check(sell(5), mode=Mode.REDUCE_ONLY, position=10, working=[Working("SELL", 6)], now_ns=DAY0)

    assert not decision.ok


def test_cancel_makers_allows_only_taker_exits():
    g = gate()

    maker_exit = g.check(sell(5), mode=Mode.CANCEL_MAKERS, position=10, now_ns=DAY0)
    ioc_exit = g.check(sell(5, tif="IOC"), mode=Mode.CANCEL_MAKERS, position=10, now_ns=DAY0)
    market_exit = g.check(
        OrderIntent("BTCUSDT", "SELL", 5, None, "MARKET", None),
        mode=Mode.CANCEL_MAKERS,
        position=10,
        reference_price=PRICE,
        now_ns=DAY0,
    )

    assert not maker_exit.ok and "IOC/market" in maker_exit.reason
    assert ioc_exit.ok and market_exit.ok


def test_cancel_makers_and_halted_list_resting_makers_to_pull():
    g = gate()
    working = [
        Working("BUY", 1, "maker-1"),
        Working("SELL", 1, "ioc-1", resting=False),
        Working("BUY", 1, "unk", state_value="UNKNOWN"),
    ]

    assert g.mode_cancels(Mode.CANCEL_MAKERS, working) == ["maker-1"]
    assert g.mode_cancels(Mode.HALTED, working) == ["maker-1"]
    assert g.mode_cancels(Mode.REDUCE_ONLY, working) == []


def test_a_reduce_only_flag_that_would_not_reduce_is_refused_even_in_normal_mode():
    decision = gate().check(buy(5, reduce_only=True), mode=Mode.NORMAL, position=0, now_ns=DAY0)

    assert not decision.ok and decision.reason.startswith("reduce-only")


# ------------------------------------------------------------------------------- filters and limits


@pytest.mark.parametrize(
    ("intent", "reason"),
    [
        (buy(qty=0), "filter LOT_SIZE"),
        (buy(price=PRICE + 0), None),
        (OrderIntent("BTCUSDT", "BUY", 1, PRICE), None),  # 0.001 * 20000 = 20 >= 5
        (OrderIntent("BTCUSDT", "BUY", 1, 100_00), "filter MIN_NOTIONAL"),  # 0.001 * 100 = 0.1
        (OrderIntent("BTCUSDT", "BUY", 1, None, "MARKET", None), "filter MIN_NOTIONAL: no reference price"),
        (OrderIntent("BTCUSDT", "BUY", 10, None), "filter PRICE_FILTER"),
        (OrderIntent("ETHUSDT", "BUY", 10, PRICE), "unknown symbol"),
    ],
)
def test_symbol_filters_refuse_with_a_reason(intent, reason):
    decision = gate().check(intent, mode=Mode.NORMAL, position=0, now_ns=DAY0)

    if reason is None:
        assert decision.ok
    else:
        assert not decision.ok and decision.reason.startswith(reason)


def test_tick_and_step_grids_are_enforced():
    eth = SymbolFilters.from_strings("ETHUSDT", "0.05", "0.01", min_qty="0.01")
    g = RiskGate(RiskLimits(), {"ETHUSDT": eth})

    off_tick = g.check(OrderIntent("ETHUSDT", "BUY", 1, 100_001), mode=Mode.NORMAL, position=0)
    off_step = RiskGate(RiskLimits(), {"ETHUSDT": SymbolFilters("ETHUSDT", 2, 3, tick=5, step=10)}).check(
        OrderIntent("ETHUSDT", "BUY", 15, 100_000), mode=Mode.NORMAL, position=0
    )

    assert "PRICE_FILTER" in off_tick.reason
    assert "LOT_SIZE" in off_step.reason


def test_max_order_notional_and_max_position_refuse():
    g = gate(max_order_notional=Fraction(100), max_position_lots=15)

    too_big = g.check(buy(10), mode=Mode.NORMAL, position=0, now_ns=DAY0)  # 0.01 * 20000 = 200
    small = OrderIntent("BTCUSDT", "BUY", 4, PRICE)
    too_long = g.check(small, mode=Mode.NORMAL, position=8, working=[Working("BUY", 4)], now_ns=DAY0)

    assert too_big.reason.startswith("max order notional")
    assert too_long.reason.startswith("max position")


# ------------------------------------------------------------------------------- breaker and loss limits


def losing_trip(ts: int) -> RoundTrip:
    return RoundTrip("BTCUSDT", ts - S, ts, Fraction(-1))


def test_breaker_trips_after_n_losses_in_the_window_and_resets_after_the_cooldown():
    clock = FakeClock(DAY0)
    g = gate(breaker_losses=3, breaker_window_ns=60 * S, breaker_cooldown_ns=300 * S)

    tripped = [g.on_round_trip(losing_trip(clock.advance(10 * S)), clock.now) for _ in range(3)]
    during = g.check(buy(), mode=Mode.NORMAL, position=0, now_ns=clock.advance(299 * S))
    exit_during = g.check(sell(5), mode=Mode.NORMAL, position=10, now_ns=clock.now)
    after = g.check(buy(), mode=Mode.NORMAL, position=0, now_ns=clock.advance(1 * S))

    assert tripped == [False, False, True]
    assert not during.ok and during.reason.startswith("circuit breaker")
    assert exit_during.ok
    assert after.ok


def test_losses_spread_wider_than_the_window_do_not_trip_the_breaker():
    clock = FakeClock(DAY0)
    g = gate(breaker_losses=2, breaker_window_ns=60 * S)

    first = g.on_round_trip(losing_trip(clock.now), clock.now)
    second = g.on_round_trip(losing_trip(clock.advance(61 * S)), clock.now)

    assert (first, second) == (False, False)


def test_winning_trips_never_count_toward_the_breaker():
    g = gate(breaker_losses=1)

    assert g.on_round_trip(RoundTrip("BTCUSDT", 0, DAY0, Fraction(5)), DAY0) is False


def test_session_loss_limit_latches_and_allows_only_exits():
    g = gate(session_loss_limit=Fraction(50))

    g.on_pnl(Fraction(-50), DAY0 + S)
    entry = g.check(buy(), mode=Mode.NORMAL, position=0, now_ns=DAY0 + 2 * S)
    exit_ = g.check(sell(5), mode=Mode.NORMAL, position=10, now_ns=DAY0 + 2 * S)

    assert entry.reason.startswith("session loss limit")
    assert exit_.ok


def test_daily_loss_limit_resets_at_the_utc_day_boundary():
    g = gate(daily_loss_limit=Fraction(10))
    g.on_pnl(Fraction(-11), DAY0 + 23 * 3600 * S)

    same_day = g.check(buy(), mode=Mode.NORMAL, position=0, now_ns=DAY_NS + DAY0 - 1)
    next_day = g.check(buy(), mode=Mode.NORMAL, position=0, now_ns=DAY_NS + DAY0)

    assert same_day.reason.startswith("daily loss limit")
    assert next_day.ok and g.state.daily_pnl == 0


# ------------------------------------------------------------------------------- state persistence


LIMITS = RiskLimits(breaker_window_ns=600 * S, breaker_cooldown_ns=900 * S)


def test_risk_state_round_trips_through_json_exactly():
    state = RiskState(
        day=DAY0 // DAY_NS,
        session_pnl=Fraction(-1, 3),
        daily_pnl=Fraction(7, 10),
        daily_latched=True,
        losses={"BTCUSDT": [DAY0 + S]},
        breakers={"ETHUSDT": DAY0 + 100 * S},
        saved_ns=DAY0 + 2 * S,
    )

    text = json.dumps(state.to_dict())
    restored, warnings = RiskState.restore(text, DAY0 + 3 * S, LIMITS)

    assert json.loads(text)["version"] == 1
    assert warnings == []
    assert restored == state


def test_unknown_version_is_ignored_with_a_warning():
    body = RiskState(day=DAY0 // DAY_NS, session_pnl=Fraction(-5)).to_dict() | {"version": 2}

    restored, warnings = RiskState.restore(body, DAY0, LIMITS)

    assert restored.session_pnl == 0
    assert len(warnings) == 1 and "version 2" in warnings[0]


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[1, 2]",
        '{"version": 1, "day": "x"}',
        '{"version": 1}',
        b"\xff\xfe",
        '{"version": 1, "day": 1, "session_pnl": "1/0", "daily_pnl": "0"}',
    ],
)
def test_a_corrupt_risk_state_is_ignored_with_a_warning_and_never_raises(raw):
    restored, warnings = RiskState.restore(raw, DAY0, LIMITS)

    assert restored == RiskState(day=DAY0 // DAY_NS)
    assert len(warnings) == 1 and "corrupt" in warnings[0]


def test_nothing_saved_restores_a_fresh_state_silently():
    assert RiskState.restore(None, DAY0, LIMITS) == (RiskState(day=DAY0 // DAY_NS), [])


def test_restore_on_a_new_utc_day_resets_session_and_daily_pnl():
    saved = RiskState(
        day=DAY0 // DAY_NS, session_pnl=Fraction(-40), daily_pnl=Fraction(-40), session_latched=True, daily_latched=True
    )

    restored, warnings = RiskState.restore(saved.to_dict(), DAY0 + DAY_NS + S, LIMITS)

    assert (restored.session_pnl, restored.daily_pnl, restored.session_latched, restored.daily_latched) == (
        0,
        0,
        False,
        False,
    )
    assert "another UTC day" in warnings[0]


def test_restore_expires_old_losses_and_resets_breakers_whose_cooldown_passed():
    now = DAY0 + 3600 * S
    saved = RiskState(
        day=DAY0 // DAY_NS,
        losses={"BTCUSDT": [now - 601 * S, now - 10 * S], "ETHUSDT": [now - 700 * S]},
        breakers={"BTCUSDT": now - 1, "ETHUSDT": now + 60 * S},
    )

    restored, _ = RiskState.restore(saved.to_dict(), now, LIMITS)

    assert restored.losses == {"BTCUSDT": [now - 10 * S]}
    assert restored.breakers == {"ETHUSDT": now + 60 * S}


# ------------------------------------------------------------------------------- properties

STRICT = [Mode.REDUCE_ONLY, Mode.CANCEL_MAKERS, Mode.HALTED]

intents = st.builds(
    OrderIntent,
    symbol=st.just("BTCUSDT"),
    side=st.sampled_from(["BUY", "SELL"]),
    qty=st.integers(0, 40),
    price=st.one_of(st.none(), st.integers(1_990_000, 2_010_000)),
    order_type=st.sampled_from(["LIMIT", "MARKET", "LIMIT_MAKER"]),
    tif=st.sampled_from(["GTC", "IOC", "FOK", "GTX", None]),
    reduce_only=st.booleans(),
    tag=st.sampled_from(["", "bid", "ask", "take"]),
)
workings = st.lists(st.builds(Working, side=st.sampled_from(["BUY", "SELL"]), remaining=st.integers(1, 20)), max_size=4)


def assert_cannot_increase_exposure(decision, intent, mode, position, working):
    if mode is Mode.HALTED:
        assert not decision.ok
        return
    if decision.ok:
        # Even if this order and every working order on its side fill, |position| must not grow.
        worst = position + intent.signed_qty + sum(w.signed_remaining for w in working if w.side == intent.side)
        assert abs(worst) <= abs(position)
        assert abs(position + intent.signed_qty) < abs(position)
        if mode is Mode.CANCEL_MAKERS:
            assert intent.is_taker


@settings(max_examples=400, deadline=None)
@given(intent=intents, mode=st.sampled_from(STRICT), position=st.integers(-30, 30), working=workings)
def test_strict_modes_never_pass_an_intent_that_increases_exposure(intent, mode, position, working):
    g = gate()

    decision = g.check(intent, mode=mode, position=position, working=working, reference_price=PRICE, now_ns=DAY0)

    assert_cannot_increase_exposure(decision, intent, mode, position, working)


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(list(strategy_names())),
    mode=st.sampled_from(STRICT),
    position=st.integers(-30, 30),
    mids=st.lists(st.integers(-3, 3), min_size=1, max_size=12),
    spread=st.integers(1, 4),
    working=workings,
)
def test_strict_modes_hold_for_every_registered_strategy(name, mode, position, mids, spread, working):
    strategy = get_strategy(name, {})
    g = gate()
    bid = PRICE
    produced = []
    strategy.on_mode_change(mode)
    for i, step in enumerate(mids):
        bid += step * BTC.tick
        view = MarketView(
            "BTCUSDT", DAY0 + i * S, UnitCodec(2, 3), BTC.tick, bid, bid + spread, position=position, mode=mode
        )
        produced += strategy.on_book(view)

    for intent in produced:
        if intent.qty == 0:
            continue
        decision = g.check(intent, mode=mode, position=position, working=working, reference_price=bid, now_ns=DAY0)
        assert_cannot_increase_exposure(decision, intent, mode, position, working)

"""Startup check of venue orders the journal does not know (epochbot.trading.adoption)."""

from __future__ import annotations

import pytest

from epochbot.trading.adoption import plan
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.orders import OrderManager, OrderState

BTC = SymbolFilters.from_strings("BTCUSDT", "0.10", "0.001", min_qty="0.001", min_notional="5")


def row(coid: str, status: str = "NEW", order_id: int = 1, **kw) -> dict:
    base = {
        "symbol": "BTCUSDT",
        "orderId": order_id,
        "clientOrderId": coid,
        "status": status,
        "side": "BUY",
        "type": "LIMIT",
        "origQty": "0.010",
        "price": "100.0",
        "executedQty": "0.000",
        "timeInForce": "GTC",
        "reduceOnly": False,
        "updateTime": 5,
    }
    return {**base, **kw}


def test_open_orders_of_ours_unknown_to_the_journal_are_cancelled_by_default_and_known_ones_untouched():
    rows = [
        row("eb7-1", order_id=1),
        row("eb7-2", order_id=2),
        row("eb7-2", order_id=2),
        row("eb6-9", "FILLED", order_id=3, executedQty="0.010"),
    ]

    decisions = plan(rows, known_ids={"eb7-1"})

    assert [(d.client_order_id, d.action) for d in decisions] == [("eb7-2", "cancel"), ("eb6-9", "record")]


@pytest.mark.parametrize("policy, action", [("adopt", "adopt"), ("ignore", "ignore")])
def test_the_policy_for_unknown_open_orders_of_ours_is_configurable(policy, action):
    assert [d.action for d in plan([row("eb7-2")], set(), unknown=policy)] == [action]


def test_orders_without_our_prefix_are_never_touched_unless_configured():
    rows = [row("manual-1", order_id=1), row("web_abc", order_id=2, status="FILLED")]

    assert plan(rows, set()) == []
    assert [(d.client_order_id, d.action) for d in plan(rows, set(), foreign="cancel")] == [
        ("manual-1", "cancel-foreign")
    ]


def test_an_adopted_order_to_cancel_is_journaled_counts_as_working_and_gets_a_cancel():
    om = OrderManager(8, filters={"BTCUSDT": BTC})
    (decision,) = plan([row("eb7-2", status="PARTIALLY_FILLED", executedQty="0.004")], set())

    commands = om.adopt_venue_order(decision, now_ns=10)

    order = om.orders["eb7-2"]
    assert (order.state, order.qty, order.filled_qty, order.price) == (OrderState.PARTIALLY_FILLED, 10, 4, 1000)
    assert [o.client_order_id for o in om.working("BTCUSDT")] == ["eb7-2"]
    assert [(c.symbol, c.client_order_id) for c in commands] == [("BTCUSDT", "eb7-2")]
    assert [(t.prev_state, t.state) for t in om.journal] == [("", "PARTIALLY_FILLED")]


def test_a_closed_order_of_ours_unknown_to_the_journal_is_recorded_with_its_final_state():
    om = OrderManager(8, filters={"BTCUSDT": BTC})
    (decision,) = plan([row("eb6-9", "FILLED", executedQty="0.010")], set())

    assert om.adopt_venue_order(decision, now_ns=10) == []
    assert om.journal[-1].state == "FILLED" and om.working() == []

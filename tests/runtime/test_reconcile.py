"""Reconciliation at start, against the real simulator: orders of ours the journal does not know
are cancelled, adopted or left alone as configured; positions are compared with the venue's."""

from __future__ import annotations

import pytest

from epochbot.model import events as ev
from epochbot.runtime.config import TradingConfig
from epochbot.runtime.reconcile import Reconciler
from tests.runtime.fakes import SYMBOL
from tests.runtime.test_trading_session import KEYS, parts


async def place(p, coid: str, **params) -> dict:
    """An order placed at the venue directly (as a run the journal no longer knows did)."""
    rest = p.rest.client
    body = {"symbol": SYMBOL, "newClientOrderId": coid, **params}
    return await rest.signed("POST", f"{rest.prefix}/order", body, KEYS["api_key"], KEYS["api_secret"])


def reconciler(p) -> Reconciler:
    return Reconciler(p.config, engine=p.engine, durable=p.durable, tasks=p.tasks, clock=p.engine.clock, log=p.log)


async def resting_bid(p, coid: str) -> None:
    depth = await p.rest.client.depth(SYMBOL, 5)
    best_bid = float(depth[1][0][0])
    await place(p, coid, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price=f"{best_bid - 500:.1f}")


@pytest.mark.parametrize("policy, action", [("cancel", "cancel"), ("adopt", "adopt")])
async def test_an_open_order_of_ours_unknown_to_the_journal_is_cancelled_or_adopted(policy, action):
    async with parts(TradingConfig(strategy="quoter", unknown_orders=policy, **KEYS)) as p:
        await resting_bid(p, "eb7-1")
        started = await p.trading.start(await p.rest.client.exchange_filters([SYMBOL]))

        reconciled = await reconciler(p).reconcile(started)

    assert [(a.client_order_id, a.action) for a in reconciled.adopted] == [("eb7-1", action)]
    assert started.trader.orders.orders["eb7-1"].state.value == "NEW"
    cancels = [c for c in reconciled.commands if type(c) is ev.CancelOrder]
    assert [c.client_order_id for c in cancels] == (["eb7-1"] if action == "cancel" else [])
    assert p.log.find(f"venue order unknown to the journal: {action}")["client_order_id"] == "eb7-1"
    assert p.engine.counters["venue_orders_adopted"] == 1


async def test_with_unknown_orders_ignored_the_order_is_left_alone_and_said():
    async with parts(TradingConfig(strategy="quoter", unknown_orders="ignore", **KEYS)) as p:
        await resting_bid(p, "eb7-2")
        started = await p.trading.start(await p.rest.client.exchange_filters([SYMBOL]))

        reconciled = await reconciler(p).reconcile(started)

    assert reconciled.adopted == [] and "eb7-2" not in started.trader.orders.orders
    assert p.log.find("open order of ours unknown to the journal left alone (unknown_orders=ignore)") is not None


async def test_a_position_the_venue_has_and_we_do_not_is_reported_as_a_mismatch():
    async with parts(TradingConfig(strategy="quoter", **KEYS)) as p:
        await place(p, "other-1", side="BUY", type="MARKET", quantity="0.005")
        started = await p.trading.start(await p.rest.client.exchange_filters([SYMBOL]))
        part = reconciler(p)

        assert await part.check_positions(started.gateway, started.trader, started.filters, final=False) is False
        assert await part.check_positions(started.gateway, started.trader, started.filters) is True

    assert p.engine.counters["position_mismatch"] == 1
    assert p.log.find("position differs from the venue's after restore") == {
        "symbol": SYMBOL,
        "ours": "0",
        "venue": "0.005",
    }

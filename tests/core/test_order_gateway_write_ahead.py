"""The order gateway never lets a cancel overtake its own order on our side of the wire.

A new order waits for its write-ahead (the journal row is fsynced) before it is sent; a cancel
for it issued meanwhile (cancel-all, the kill switch) must wait too, or the venue sees the cancel
first, answers "Unknown order sent." and then opens the order nobody will cancel.
"""

from __future__ import annotations

import asyncio

from epochbot.model import events as ev
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.order_gateway import OrderGateway
from epochbot.trading.filters import SymbolFilters

SYM = "BTCUSDT"
BTC = SymbolFilters.from_strings(SYM, "0.10", "0.001", min_qty="0.001", min_notional="5", market="usdm")
PLACE = ev.PlaceOrder(symbol=SYM, side="BUY", order_type="LIMIT", qty="0.010", price="100.00", client_order_id="eb1-1")
CANCEL = ev.CancelOrder(symbol=SYM, client_order_id="eb1-1")


class _Rest:
    market, prefix, base_url = "usdm", "/fapi/v1", "http://127.0.0.1:1"


class _Router:
    """Records what reaches the wire, in order."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def call(self, method: str, params: dict) -> dict:
        self.sent.append(method)
        if method == "POST":
            return {"orderId": 1, "clientOrderId": params["newClientOrderId"], "status": "NEW", "executedQty": "0"}
        return {"orderId": 1, "clientOrderId": params["origClientOrderId"], "status": "CANCELED", "executedQty": "0"}


def _gateway(durable) -> tuple[OrderGateway, _Router]:
    gw = OrderGateway(
        _Rest(),
        ws_base="ws://127.0.0.1:1",
        api_key="k",
        api_secret="s",
        inbox=Inbox(100),
        codecs={SYM: BTC.codec},
        quote_assets={SYM: "USDT"},
        clock=lambda: 1,
        durable=durable,
    )
    router = gw.router = _Router()
    return gw, router


async def _settle(gw: OrderGateway) -> None:
    while gw._tasks:
        await asyncio.gather(*list(gw._tasks))


async def test_a_cancel_waits_for_its_order_to_leave_before_it_is_sent():
    committed = asyncio.Event()

    async def durable(command) -> bool:
        await committed.wait()
        return True

    gw, router = _gateway(durable)
    gw.execute(PLACE)
    gw.execute(CANCEL)
    for _ in range(20):  # let every task run as far as it can
        await asyncio.sleep(0)
    held = list(router.sent)
    committed.set()
    await _settle(gw)

    assert held == []  # neither left while the order was not durable
    assert router.sent == ["POST", "DELETE"]


async def test_a_cancel_of_an_order_that_could_not_be_made_durable_does_not_wait_for_ever():
    async def durable(command) -> bool:
        return False

    gw, router = _gateway(durable)
    gw.execute(PLACE)
    gw.execute(CANCEL)
    await asyncio.wait_for(_settle(gw), 5)

    assert "POST" not in router.sent and gw.not_durable == 1


async def test_a_cancel_of_an_order_already_sent_goes_at_once():
    gw, router = _gateway(None)
    gw.execute(PLACE)
    await _settle(gw)
    gw.execute(CANCEL)
    await _settle(gw)

    assert router.sent == ["POST", "DELETE"]

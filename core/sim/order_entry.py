"""`OrderEntry`: the one way new orders reach the paper venue, for REST and the WebSocket API alike.

New orders of the matching engine (``POST /fapi/v1/order``, ``order.place``) and of the USD-M Algo
Service (``POST /fapi/v1/algoOrder``, ``algoOrder.place``) come in by the same door. Both transports
count every new-order request by client order id (``place_requests``, ``clientAlgoId`` for
conditional orders: what a test compares with what a client believes it sent), refuse orders on a
symbol that is not TRADING, apply the order faults and pump the user events after the venue acted:

* ``order_delay``: the order reaches the matching engine ``ms`` later (cancels and queries are
  not held, so a cancel sent right after its order can overtake it);
* ``unknown_execution``: the client is not told what happened; whether the order was placed is
  a coin flip of the simulator's seeded generator.
"""

from __future__ import annotations

import asyncio
import random

from epochbot.sim.auth import SimApiError
from epochbot.sim.exchange_info import ExchangeInfo
from epochbot.sim.faults import Fault, FaultBoard
from epochbot.sim.market import SymbolMarket
from epochbot.sim.matching import PaperVenue
from epochbot.sim.user_data import UserEvents

__all__ = ["OrderEntry"]


class OrderEntry:
    """New orders into the venue, through the order faults (see module docstring)."""

    def __init__(
        self,
        *,
        venue: PaperVenue,
        markets: dict[str, SymbolMarket],
        faults: FaultBoard,
        rng: random.Random,
        exchange_info: ExchangeInfo,
        user_events: UserEvents,
    ) -> None:
        self._venue = venue
        self._markets = markets
        self._faults = faults
        self._rng = rng
        self._exchange_info = exchange_info
        self._user_events = user_events
        # Every new-order request seen (REST or WebSocket API), by client order id.
        self.place_requests: dict[str, int] = {}

    def note_place(self, client_order_id: str | None) -> None:
        """Count a new-order request by client order id (REST and WebSocket API alike)."""
        if client_order_id:
            self.place_requests[client_order_id] = self.place_requests.get(client_order_id, 0) + 1

    def admit(self, symbol: str, client_order_id: str | None) -> None:
        """Count the request, then refuse it unless the symbol is TRADING."""
        self.note_place(client_order_id)
        self._exchange_info.refuse_unless_trading(symbol)

    async def hold(self, symbol: str) -> bool:
        """Wait out an ``order_delay`` fault on the symbol; whether there was one."""
        delay = self._faults.take("order_delay", symbol)
        if delay is None:
            return False
        await asyncio.sleep(delay.params.get("ms", 300) / 1000)
        return True

    def gamble(
        self, account_id: str, params: dict[str, str], symbol: str, now_ms: int, *, algo: bool = False
    ) -> Fault | None:
        """Apply an ``unknown_execution`` fault if one is armed: the order (a conditional one when
        ``algo``) is placed or not by the seeded coin flip, and the fault is returned (None: no
        fault, place the order normally)."""
        fault = self._faults.take("unknown_execution", symbol)
        if fault is None:
            return None
        if self._rng.random() < 0.5:
            place = self._venue.place_algo if algo else self._venue.place_order
            try:
                place(account_id, params, self._markets[symbol], now_ms)
            except SimApiError:
                pass
            self._user_events.pump()
        return fault

    def place(self, account_id: str, params: dict[str, str], symbol: str, now_ms: int) -> dict:
        """Place the order and hand out its user events; the venue's answer."""
        body = self._venue.place_order(account_id, params, self._markets[symbol], now_ms)
        self._user_events.pump()
        return body

    def place_algo(self, account_id: str, params: dict[str, str], symbol: str, now_ms: int) -> dict:
        """Place a conditional order with the Algo Service and hand out its ALGO_UPDATE; the answer."""
        body = self._venue.place_algo(account_id, params, self._markets[symbol], now_ms)
        self._user_events.pump()
        return body

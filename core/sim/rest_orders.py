"""REST trading: SIGNED order placement, query, cancel, open orders, history, account, positions.

The USD-M Algo Service, the dead-man switch and the account settings are `AccountRest`
(``rest_account.py``).
"""

from __future__ import annotations

from aiohttp import web

from epochbot.sim.auth import Credentials, SimApiError, verify_signed
from epochbot.sim.clock import now_ms
from epochbot.sim.market import SymbolMarket
from epochbot.sim.matching import PaperVenue
from epochbot.sim.order_entry import OrderEntry
from epochbot.sim.rest import UNKNOWN_ERROR_MSG, int_param, json_body
from epochbot.sim.user_data import UserEvents

__all__ = ["OrderRest"]

_MISSING_SYMBOL = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."


class OrderRest:
    """The SIGNED trading endpoints of one market (spot ``/api/v3``, USD-M ``/fapi``)."""

    def __init__(
        self,
        *,
        market: str,
        accounts: dict[str, Credentials],
        markets: dict[str, SymbolMarket],
        venue: PaperVenue,
        orders: OrderEntry,
        user_events: UserEvents,
    ) -> None:
        self._market = market
        self._accounts = accounts
        self._markets = markets
        self._venue = venue
        self._orders = orders
        self._user_events = user_events

    def add_routes(self, router: web.UrlDispatcher) -> None:
        spot = self._market == "spot"
        v = "/api/v3" if spot else "/fapi/v1"
        router.add_post(f"{v}/order", self._order_new)
        router.add_get(f"{v}/order", self._order_query)
        router.add_delete(f"{v}/order", self._order_cancel)
        router.add_get(f"{v}/openOrders", self._open_orders)
        if not spot:
            router.add_delete("/fapi/v1/allOpenOrders", self._cancel_all)
        router.add_get(f"{v}/allOrders", self._all_orders)
        router.add_get("/api/v3/myTrades" if spot else "/fapi/v1/userTrades", self._user_trades)
        if spot:
            router.add_get("/api/v3/account", self._account)
        else:
            router.add_get("/fapi/v2/account", self._account)
            router.add_get("/fapi/v3/account", self._account_v3)
            router.add_get("/fapi/v2/positionRisk", self._position_risk)
            router.add_get("/fapi/v3/positionRisk", self._position_risk_v3)

    async def _signed(self, request: web.Request) -> tuple[Credentials, dict[str, str]]:
        body = await request.text()
        return verify_signed(
            api_key=request.headers.get("X-MBX-APIKEY"),
            query_string=request.rel_url.raw_query_string,
            body=body,
            accounts=self._accounts,
            now_ms=now_ms(),
        )

    async def _order_new(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol", "").upper()
        if sym not in self._markets:
            raise SimApiError(-1121, "Invalid symbol.")
        orders = self._orders
        orders.admit(sym, params.get("newClientOrderId"))
        await orders.hold(sym)
        if orders.gamble(creds.account_id, params, sym, now_ms()) is not None:
            return json_body({"code": -1000, "msg": UNKNOWN_ERROR_MSG}, status=503)
        return json_body(orders.place(creds.account_id, params, sym, now_ms()))

    async def _order_query(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return json_body(self._venue.query_order(creds.account_id, params))

    async def _order_cancel(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        body = self._venue.cancel_order(creds.account_id, params, now_ms())
        self._user_events.pump()
        return json_body(body)

    async def _cancel_all(self, request: web.Request) -> web.Response:
        """DELETE /fapi/v1/allOpenOrders: the symbol's open orders (conditional ones stay)."""
        creds, params = await self._signed(request)
        body = self._venue.cancel_all_orders(creds.account_id, params, now_ms())
        self._user_events.pump()
        return json_body(body)

    async def _open_orders(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        return json_body(self._venue.open_orders(creds.account_id, sym.upper() if sym else None))

    async def _user_trades(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/userTrades (usdm) or /api/v3/myTrades (spot): the account's executions."""
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        if not sym:
            raise SimApiError(-1102, _MISSING_SYMBOL)
        limit = int_param(params, "limit")
        trades = self._venue.user_trades(
            creds.account_id,
            sym.upper(),
            start_time=int_param(params, "startTime"),
            end_time=int_param(params, "endTime"),
            from_id=int_param(params, "fromId"),
            limit=500 if limit is None else limit,
        )
        return json_body(trades)

    async def _all_orders(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/allOrders or /api/v3/allOrders: every order of the symbol, oldest first
        (USD-M since 2026-08-25: without ``symbol``, every symbol's, by order id)."""
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        limit = int_param(params, "limit")
        if not sym and self._market == "usdm":
            rows = sorted(
                (o for s in self._markets for o in self._venue.all_orders(creds.account_id, s, 0)),
                key=lambda o: o["orderId"],
            )
            return json_body(rows[-limit:] if limit else rows)
        if not sym:
            raise SimApiError(-1102, _MISSING_SYMBOL)
        return json_body(self._venue.all_orders(creds.account_id, sym.upper(), 0 if limit is None else limit))

    async def _account(self, request: web.Request) -> web.Response:
        creds, _ = await self._signed(request)
        return json_body(self._venue.account(creds.account_id, now_ms()))

    async def _account_v3(self, request: web.Request) -> web.Response:
        creds, _ = await self._signed(request)
        return json_body(self._venue.account(creds.account_id, now_ms(), version=3))

    async def _position_risk(self, request: web.Request, version: int = 2) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        marks = {s: m.mark_price() for s, m in self._markets.items()}
        return json_body(
            self._venue.position_risk(creds.account_id, sym.upper() if sym else None, marks, version=version)
        )

    async def _position_risk_v3(self, request: web.Request) -> web.Response:
        return await self._position_risk(request, version=3)

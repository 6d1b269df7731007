"""USD-M REST: the Algo Service, the dead-man switch and the account settings (all SIGNED).

* Algo Service (conditional orders since 2025-12-09): ``POST/GET/DELETE /fapi/v1/algoOrder``,
  ``GET /fapi/v1/openAlgoOrders``, ``DELETE /fapi/v1/algoOpenOrders``, ``GET /fapi/v1/allAlgoOrders``;
  a new conditional order comes in through `OrderEntry` like any new order (symbol status,
  ``order_delay`` and ``unknown_execution`` faults);
* ``POST /fapi/v1/countdownCancelAll`` (the countdown runs on the venue's clock: see
  ``matching/countdown.py``);
* ``POST /fapi/v1/leverage``, ``POST /fapi/v1/marginType``, ``GET/POST /fapi/v1/positionSide/dual``,
  ``GET/POST /fapi/v1/multiAssetsMargin``, ``GET /fapi/v1/accountConfig``, ``GET /fapi/v1/symbolConfig``.

Every rule and answer is the venue's (``matching/``); this module only reads the request and
hands out the user events the venue queued.
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

__all__ = ["AccountRest"]

_MISSING_SYMBOL = "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."


class AccountRest:
    """The USD-M Algo Service, countdown and account-setting endpoints (see module docstring)."""

    def __init__(
        self,
        *,
        accounts: dict[str, Credentials],
        markets: dict[str, SymbolMarket],
        venue: PaperVenue,
        orders: OrderEntry,
        user_events: UserEvents,
    ) -> None:
        self._accounts = accounts
        self._markets = markets
        self._venue = venue
        self._orders = orders
        self._user_events = user_events

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/fapi/v1/algoOrder", self._algo_new)
        router.add_get("/fapi/v1/algoOrder", self._algo_query)
        router.add_delete("/fapi/v1/algoOrder", self._algo_cancel)
        router.add_get("/fapi/v1/openAlgoOrders", self._algo_open)
        router.add_delete("/fapi/v1/algoOpenOrders", self._algo_cancel_all)
        router.add_get("/fapi/v1/allAlgoOrders", self._algo_all)
        router.add_post("/fapi/v1/countdownCancelAll", self._countdown)
        router.add_post("/fapi/v1/leverage", self._leverage)
        router.add_post("/fapi/v1/marginType", self._margin_type)
        router.add_get("/fapi/v1/positionSide/dual", self._position_mode)
        router.add_post("/fapi/v1/positionSide/dual", self._change_position_mode)
        router.add_get("/fapi/v1/multiAssetsMargin", self._multi_assets)
        router.add_post("/fapi/v1/multiAssetsMargin", self._change_multi_assets)
        router.add_get("/fapi/v1/accountConfig", self._account_config)
        router.add_get("/fapi/v1/symbolConfig", self._symbol_config)

    async def _signed(self, request: web.Request) -> tuple[Credentials, dict[str, str]]:
        body = await request.text()
        return verify_signed(
            api_key=request.headers.get("X-MBX-APIKEY"),
            query_string=request.rel_url.raw_query_string,
            body=body,
            accounts=self._accounts,
            now_ms=now_ms(),
        )

    def _answer(self, body: object) -> web.Response:
        """The venue's answer, after handing out the user events it queued."""
        self._user_events.pump()
        return json_body(body)

    # ------------------------------------------------------------------ the Algo Service

    async def _algo_new(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol", "").upper()
        if not sym:
            raise SimApiError(-1102, _MISSING_SYMBOL)
        if sym not in self._markets:
            raise SimApiError(-1121, "Invalid symbol.")
        orders = self._orders
        orders.admit(sym, params.get("clientAlgoId"))
        await orders.hold(sym)
        if orders.gamble(creds.account_id, params, sym, now_ms(), algo=True) is not None:
            return json_body({"code": -1000, "msg": UNKNOWN_ERROR_MSG}, status=503)
        return json_body(orders.place_algo(creds.account_id, params, sym, now_ms()))

    async def _algo_query(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return json_body(self._venue.query_algo(creds.account_id, params))

    async def _algo_cancel(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._answer(self._venue.cancel_algo(creds.account_id, params, now_ms()))

    async def _algo_open(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        return json_body(self._venue.open_algos(creds.account_id, sym.upper() if sym else None, params))

    async def _algo_cancel_all(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._answer(self._venue.cancel_all_algos(creds.account_id, params, now_ms()))

    async def _algo_all(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        if not sym:
            raise SimApiError(-1102, _MISSING_SYMBOL)
        limit = int_param(params, "limit")
        rows = self._venue.all_algos(
            creds.account_id,
            sym.upper(),
            algo_id=int_param(params, "algoId"),
            start_time=int_param(params, "startTime"),
            end_time=int_param(params, "endTime"),
            limit=500 if limit is None else limit,
        )
        return json_body(rows)

    # ------------------------------------------------------------------ the dead-man switch

    async def _countdown(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._answer(self._venue.countdown_cancel_all(creds.account_id, params, now_ms()))

    # ------------------------------------------------------------------ account settings

    async def _leverage(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._answer(self._venue.change_leverage(creds.account_id, params))

    async def _margin_type(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._answer(self._venue.change_margin_type(creds.account_id, params))

    async def _position_mode(self, request: web.Request) -> web.Response:
        creds, _ = await self._signed(request)
        return json_body(self._venue.position_mode(creds.account_id))

    async def _change_position_mode(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._answer(self._venue.change_position_mode(creds.account_id, params))

    async def _multi_assets(self, request: web.Request) -> web.Response:
        creds, _ = await self._signed(request)
        return json_body(self._venue.multi_assets_mode(creds.account_id))

    async def _change_multi_assets(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        return self._answer(self._venue.change_multi_assets_mode(creds.account_id, params))

    async def _account_config(self, request: web.Request) -> web.Response:
        creds, _ = await self._signed(request)
        return json_body(self._venue.account_config(creds.account_id))

    async def _symbol_config(self, request: web.Request) -> web.Response:
        creds, params = await self._signed(request)
        sym = params.get("symbol")
        return json_body(self._venue.symbol_config(creds.account_id, sym.upper() if sym else None))

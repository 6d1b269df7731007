"""Order I/O: executes the trader's commands and runs the account's user-data stream.

Transport (``core.venues.binance.order_router``): the WebSocket API trading session when it is up,
signed REST otherwise; the account stream is ``core.venues.binance.account_stream`` (spot over the
WebSocket API, USD-M on the ``/private`` route). Errors of either transport arrive here as
`RestError`, so the rules below hold for both.

The gateway decides nothing. Every answer becomes a trading event on the control queue:

* POST order 200 -> OrderAccepted (+ Fills of a FULL response); 4xx -> OrderRejected with
  Binance's code and message; timeout, connection failure or any 5xx (including the 503
  "Unknown error, please check your request or try again later.") -> OrderUnknown: the order
  manager reconciles it by client order id before anything with the same intent is sent again.
* DELETE order 200 -> OrderUpdate(CANCELED); 4xx -> CancelRejected; unknown -> CancelUnknown.
* GET order 200 -> OrderQueryResult(found=True); -2013 "Order does not exist" -> found=False;
  other failures -> OrderQueryResult(error=...) (queried again on a later timer).
* User-data events (executionReport / ORDER_TRADE_UPDATE) -> OrderUpdate and Fill events;
  the stream's up/down changes -> AccountStreamState.

Secrets are used only to sign; neither they nor signed query strings are logged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from core import events as ev
from core.inbox import Inbox
from core.numeric import UnitCodec
from core.trading import events as tev
from core.venues.binance.account_stream import AccountStream, ws_api_url
from core.venues.binance.order_router import OrderRouter
from core.venues.binance.rest import RestClient, RestError
from core.venues.binance.signing import Signer
from core.venues.binance.user import order_response_events, query_response_event

__all__ = ["OrderGateway"]

ORDER_DOES_NOT_EXIST = -2013


class OrderGateway:
    def __init__(
        self,
        rest: RestClient,
        *,
        ws_base: str,
        api_key: str,
        api_secret: str,
        inbox: Inbox,
        codecs: dict[str, UnitCodec],
        quote_assets: dict[str, str] | None = None,
        clock: Callable[[], int] = time.time_ns,
        log: Callable[..., None] = lambda level, msg, **fields: None,
        recv_window_ms: int = 5000,
        offset_ms: Callable[[], float] = lambda: 0.0,
        ws_api: str | None = None,
        ws_orders: bool = True,
        symbol_status: dict[str, str] | None = None,
    ) -> None:
        self.rest = rest
        self.ws_base = ws_base.rstrip("/")
        self._api_key = api_key
        self._api_secret = Signer(api_key, api_secret)  # HMAC, RSA or Ed25519 (PEM) keys
        self.inbox = inbox
        self.codecs = codecs
        self.quote_assets = quote_assets or {}  # fees in these assets count against PnL
        self.clock = clock
        self.log = log
        self.recv_window_ms = recv_window_ms
        self.offset_ms = offset_ms
        self.spot = rest.market == "spot"
        self._tasks: set[asyncio.Task] = set()
        market = rest.market
        ws_api = ws_api_url(market, self.ws_base) if ws_api is None else ws_api
        self.router = OrderRouter(rest, self._api_secret, ws_api=ws_api, use_ws=ws_orders, symbol_status=symbol_status,
                                  clock=clock, log=log, recv_window_ms=recv_window_ms, offset_ms=offset_ms, put=self._put)
        self.account_stream = AccountStream(market=market, rest=rest, signer=self._api_secret, ws_base=self.ws_base, ws_api=ws_api,
                                            put=self._put, codecs=codecs, quotes=self.quote_assets, clock=clock, log=log,
                                            recv_window_ms=recv_window_ms, offset_ms=offset_ms)

    @property
    def user_stream_connected(self) -> bool:
        return self.account_stream.connected

    def __repr__(self) -> str:  # never show the keys
        return f"OrderGateway(base={self.rest.base_url!r}, market={self.rest.market!r})"

    # ------------------------------------------------------------------ commands

    def execute(self, command) -> None:
        kind = type(command)
        if kind is ev.PlaceOrder:
            coro = self._place(command)
        elif kind is ev.CancelOrder:
            coro = self._cancel(command)
        elif kind is tev.QueryOrder:
            coro = self._query(command)
        else:
            raise TypeError(f"not an order command: {kind.__name__}")
        task = asyncio.get_running_loop().create_task(coro, name=f"order-{kind.__name__}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _put(self, event) -> None:
        event.recv_ts = event.recv_ts or self.clock()
        self.inbox.put_control(event)

    async def _signed(self, method: str, params: dict) -> dict:
        """One order request over the router (WebSocket API, or REST when that is down)."""
        return await self.router.call(method, params)

    async def _place(self, command: ev.PlaceOrder) -> None:
        params = {
            "symbol": command.symbol,
            "side": command.side,
            "type": command.order_type,
            "quantity": command.qty,
            "newClientOrderId": command.client_order_id,
        }
        if command.price is not None and command.order_type != "MARKET":
            params["price"] = command.price
        if command.time_in_force and command.order_type == "LIMIT":
            params["timeInForce"] = command.time_in_force
        if self.spot:
            params["newOrderRespType"] = "FULL"
        elif command.reduce_only:
            params["reduceOnly"] = "true"
        try:
            body = await self._signed("POST", params)
        except RestError as exc:
            now = self.clock()
            if exc.unknown_execution:
                self._put(tev.OrderUnknown(ts_ns=now, client_order_id=command.client_order_id, reason=str(exc)))
            else:
                self._put(tev.OrderRejected(ts_ns=now, client_order_id=command.client_order_id, code=exc.code or exc.status, msg=str(exc)))
            return
        try:
            events = order_response_events(body, self.codecs, command.client_order_id, self.clock(), self.quote_assets)
        except (ValueError, KeyError, TypeError) as exc:
            # Accepted, but the answer is unreadable: what happened is unknown; reconcile.
            self._put(tev.OrderUnknown(ts_ns=self.clock(), client_order_id=command.client_order_id, reason=f"unreadable order answer: {exc}"))
            return
        for event in events:
            self._put(event)

    async def _cancel(self, command: ev.CancelOrder) -> None:
        params = {"symbol": command.symbol, "origClientOrderId": command.client_order_id}
        try:
            body = await self._signed("DELETE", params)
        except RestError as exc:
            now = self.clock()
            if exc.unknown_execution:
                self._put(tev.CancelUnknown(ts_ns=now, client_order_id=command.client_order_id, reason=str(exc)))
            else:
                self._put(tev.CancelRejected(ts_ns=now, client_order_id=command.client_order_id, code=exc.code or exc.status, msg=str(exc)))
            return
        codec = self.codecs.get(command.symbol)
        try:
            filled = codec.qty[body.get("executedQty", "0")] if codec else 0
        except (ValueError, TypeError):
            filled = 0
        self._put(tev.OrderUpdate(ts_ns=self.clock(), client_order_id=command.client_order_id, status=str(body.get("status", "CANCELED")), filled_qty=filled, venue_order_id=str(body.get("orderId", ""))))

    async def _query(self, command: tev.QueryOrder) -> None:
        params = {"symbol": command.symbol, "origClientOrderId": command.client_order_id}
        try:
            body = await self._signed("GET", params)
        except RestError as exc:
            now = self.clock()
            if exc.code == ORDER_DOES_NOT_EXIST:
                self._put(tev.OrderQueryResult(ts_ns=now, client_order_id=command.client_order_id, found=False))
            else:
                self._put(tev.OrderQueryResult(ts_ns=now, client_order_id=command.client_order_id, error=str(exc)))
            return
        try:
            event = query_response_event(body, self.codecs, command.client_order_id, self.clock())
        except (ValueError, KeyError, TypeError) as exc:
            event = tev.OrderQueryResult(ts_ns=self.clock(), client_order_id=command.client_order_id, error=f"unreadable answer: {exc}")
        self._put(event)

    # ------------------------------------------------------------------ venue records (startup)

    async def signed_get(self, path: str, params: dict) -> object:
        """A signed GET of any account endpoint (raises `RestError`)."""
        return await self.rest.signed(
            "GET", path, params, self._api_key, self._api_secret,
            recv_window=self.recv_window_ms, offset_ms=self.offset_ms(), clock_ns=self.clock,
        )

    async def user_trades(self, symbol: str, *, start_ms: int | None = None, from_id: int | None = None, limit: int = 1000) -> list[dict]:
        """The account's executions of ``symbol`` (USD-M userTrades / spot myTrades), oldest first.

        Pages forward with ``fromId`` until a short page, so any number of trades is fetched.
        """
        path = "/api/v3/myTrades" if self.spot else "/fapi/v1/userTrades"
        out: list[dict] = []
        params: dict = {"symbol": symbol, "limit": limit}
        if from_id is not None:
            params["fromId"] = from_id
        elif start_ms is not None:
            params["startTime"] = max(0, int(start_ms))
        for _ in range(1000):  # bounded: a million trades at most
            page = await self.signed_get(path, params)
            if not isinstance(page, list):
                raise ValueError("trade history answer is not a list")
            out.extend(page)
            if len(page) < limit:
                break
            params = {"symbol": symbol, "limit": limit, "fromId": int(page[-1]["id"]) + 1}
        return out

    async def order_by_id(self, symbol: str, order_id: str) -> dict | None:
        """GET order by the venue's orderId; None when the venue has no such order."""
        try:
            return await self.signed_get(f"{self.rest.prefix}/order", {"symbol": symbol, "orderId": order_id})
        except RestError as exc:
            if exc.code == ORDER_DOES_NOT_EXIST:
                return None
            raise

    async def open_orders(self, symbol: str | None = None) -> list[dict]:
        """The venue's open orders (WebSocket API ``openOrders.status``, REST when it is down)."""
        return await self.router.open_orders(symbol)

    async def position_amounts(self) -> dict[str, str]:
        """USD-M: symbol -> positionAmt (decimal string) from /fapi/v2/positionRisk."""
        body = await self.signed_get("/fapi/v2/positionRisk", {})
        if not isinstance(body, list):
            raise ValueError("positionRisk answer is not a list")
        out: dict[str, str] = {}
        for row in body:
            if str(row.get("positionSide", "BOTH")) in ("BOTH", ""):
                out[str(row["symbol"])] = str(row.get("positionAmt", "0"))
        return out

    async def spot_balances(self) -> dict[str, str]:
        """Spot: asset -> free + locked (decimal string) from /api/v3/account."""
        from decimal import Decimal

        body = await self.signed_get("/api/v3/account", {})
        return {str(b["asset"]): str(Decimal(str(b.get("free", "0"))) + Decimal(str(b.get("locked", "0")))) for b in body.get("balances", [])}

    async def cancel_all(self, orders: list[tuple[str, str]], timeout_s: float = 3.0) -> int:
        """Best-effort cancel of (symbol, client_order_id) pairs at shutdown; returns how many."""
        async def one(symbol: str, coid: str) -> bool:
            try:
                await self._signed("DELETE", {"symbol": symbol, "origClientOrderId": coid})
                return True
            except RestError:
                return False

        if not orders:
            return 0
        try:
            results = await asyncio.wait_for(asyncio.gather(*(one(s, c) for s, c in orders)), timeout_s)
        except TimeoutError:
            return 0
        return sum(results)

    # ------------------------------------------------------------------ sessions

    async def run_user_stream(self) -> None:
        """Run the account stream and the WebSocket API trading session until cancelled.

        While the account stream is down, fills still reach the order manager through its
        reconciliation (acks time out into queries), and confidence says it is down.
        """
        tasks = [asyncio.ensure_future(self.account_stream.run()), asyncio.ensure_future(self.router.run()),
                 asyncio.ensure_future(self.router.watch_status())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.router.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

"""Order I/O: executes the trader's commands and runs the account's user-data stream.

Transport (``epochbot.venues.binance.order_router``): the WebSocket API trading session when it is up,
signed REST otherwise; the account stream is ``epochbot.venues.binance.account_stream`` (spot over the
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

Write-ahead: nothing is transmitted before ``write_ahead(command)`` returned True. The runtime
installs ``durable`` (an awaitable that resolves once the order's journal row, client order id
included, is committed and fsynced by the storage writer thread); the gateway task awaits it,
the strategy loop never does. When durability fails (queue full, write error) the order is not
sent and comes back as ``OrderRejected(code="NOT_DURABLE")``. Every send path (REST today,
WebSocket API order entry too) must go through ``write_ahead`` first.

Secrets are used only to sign; neither they nor signed query strings are logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.clock import wall_ns
from epochbot.model.numeric import UnitCodec
from epochbot.model.trade_checks import check, problems
from epochbot.runtime.inbox import Inbox
from epochbot.venues.binance.account_stream import AccountStream, ws_api_url
from epochbot.venues.binance.order_router import OrderRouter
from epochbot.venues.binance.rest import RestClient, RestError
from epochbot.venues.binance.signing import Signer
from epochbot.venues.binance.user import UserFrameError, order_response_events, query_response_event

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
        clock: Callable[[], int] = wall_ns,
        log: Callable[..., None] = lambda level, msg, **fields: None,
        recv_window_ms: int = 5000,
        offset_ms: Callable[[], float] = lambda: 0.0,
        durable: Callable[[object], Awaitable[bool]] | None = None,
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
        self.durable = durable  # write-ahead hook (None: no storage, nothing to wait for)
        self.not_durable = 0
        self.bad_user_events = 0
        # Orders still waiting for their write-ahead: a cancel for one of them waits until its
        # order has left (or was dropped), so it never overtakes its own order on our side.
        self._unsent: dict[str, asyncio.Event] = {}
        market = rest.market
        ws_api = ws_api_url(market, self.ws_base) if ws_api is None else ws_api
        self.router = OrderRouter(
            rest,
            self._api_secret,
            ws_api=ws_api,
            use_ws=ws_orders,
            symbol_status=symbol_status,
            clock=clock,
            log=log,
            recv_window_ms=recv_window_ms,
            offset_ms=offset_ms,
            put=self._put,
        )
        self.account_stream = AccountStream(
            market=market,
            rest=rest,
            signer=self._api_secret,
            ws_base=self.ws_base,
            ws_api=ws_api,
            put=self._put,
            codecs=codecs,
            quotes=self.quote_assets,
            clock=clock,
            log=log,
            recv_window_ms=recv_window_ms,
            offset_ms=offset_ms,
        )

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
        elif kind is tev.FetchOrderTrades:
            coro = self._order_trades(command)
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

    async def write_ahead(self, command) -> bool:
        """The seam every send path passes first: True once ``command``'s order is durable."""
        if self.durable is None:
            return True
        try:
            return bool(await self.durable(command))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the storage is gone: do not send what we could not record
            self.log(
                "error",
                "write-ahead failed",
                client_order_id=getattr(command, "client_order_id", ""),
                error=f"{type(exc).__name__}: {exc}",
            )
            return False

    async def _place(self, command: ev.PlaceOrder) -> None:
        left = self._unsent[command.client_order_id] = asyncio.Event()
        try:
            durable = await self.write_ahead(command)
        finally:
            del self._unsent[command.client_order_id]
            left.set()  # waiting cancels go now; the send below starts before they run
        if not durable:
            self.not_durable += 1
            self.log("error", "order not sent: its journal row is not durable", client_order_id=command.client_order_id)
            self._put(
                tev.OrderRejected(
                    ts_ns=self.clock(),
                    client_order_id=command.client_order_id,
                    code="NOT_DURABLE",
                    msg="order intent could not be made durable: not sent",
                )
            )
            return
        await self._transmit_place(command)

    async def _transmit_place(self, command: ev.PlaceOrder) -> None:
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
                self._put(
                    tev.OrderRejected(
                        ts_ns=now, client_order_id=command.client_order_id, code=exc.code or exc.status, msg=str(exc)
                    )
                )
            return
        try:
            if not isinstance(body, dict):
                raise UserFrameError("order answer is not an object")
            events = order_response_events(body, self.codecs, command.client_order_id, self.clock(), self.quote_assets)
            check(events)
        except Exception as exc:  # noqa: BLE001 - decoding is pure: anything it raises is a bad answer
            # Accepted, but the answer is unreadable: what happened is unknown; reconcile.
            self._bad_venue_data("order answer", body, exc)
            self._put(
                tev.OrderUnknown(
                    ts_ns=self.clock(),
                    client_order_id=command.client_order_id,
                    reason=f"unreadable order answer: {str(exc)[:200]}",
                )
            )
            return
        for event in events:
            self._put(event)

    async def _cancel(self, command: ev.CancelOrder) -> None:
        unsent = self._unsent.get(command.client_order_id)
        if unsent is not None:
            await unsent.wait()  # its order is still being made durable: never overtake it
        params = {"symbol": command.symbol, "origClientOrderId": command.client_order_id}
        try:
            body = await self._signed("DELETE", params)
        except RestError as exc:
            now = self.clock()
            if exc.unknown_execution:
                self._put(tev.CancelUnknown(ts_ns=now, client_order_id=command.client_order_id, reason=str(exc)))
            else:
                self._put(
                    tev.CancelRejected(
                        ts_ns=now, client_order_id=command.client_order_id, code=exc.code or exc.status, msg=str(exc)
                    )
                )
            return
        codec = self.codecs.get(command.symbol)
        try:
            if not isinstance(body, dict):
                raise UserFrameError("cancel answer is not an object")
            filled = codec.qty[body.get("executedQty", "0")] if codec else 0
            event = tev.OrderUpdate(
                ts_ns=self.clock(),
                client_order_id=command.client_order_id,
                status=str(body.get("status", "CANCELED"))[:32],
                filled_qty=filled,
                venue_order_id=str(body.get("orderId", ""))[:64],
            )
            check([event])
        except Exception as exc:  # noqa: BLE001 - the cancel went through, but the order's state is unknown
            self._bad_venue_data("cancel answer", body, exc)
            self._put(
                tev.CancelUnknown(
                    ts_ns=self.clock(),
                    client_order_id=command.client_order_id,
                    reason=f"unreadable cancel answer: {str(exc)[:200]}",
                )
            )
            return
        self._put(event)

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
            if not isinstance(body, dict):
                raise UserFrameError("order query answer is not an object")
            event = query_response_event(body, self.codecs, command.client_order_id, self.clock())
            check([event])
        except Exception as exc:  # noqa: BLE001 - an unreadable answer: asked again on a later timer
            self._bad_venue_data("order query answer", body, exc)
            event = tev.OrderQueryResult(
                ts_ns=self.clock(),
                client_order_id=command.client_order_id,
                error=f"unreadable answer: {str(exc)[:200]}",
            )
        self._put(event)

    async def _order_trades(self, command: tev.FetchOrderTrades) -> None:
        """Executions of one order from the trade history, as validated `Fill` events."""
        try:
            trades = await self.user_trades(command.symbol, start_ms=command.since_ms)
        except Exception as exc:  # noqa: BLE001 - RestError or an unreadable page: the next query asks again
            self.log(
                "warn",
                "trade history of an order unavailable",
                client_order_id=command.client_order_id,
                error=str(exc)[:200],
            )
            return
        codec = self.codecs.get(command.symbol)
        if codec is None:
            return
        quote = self.quote_assets.get(command.symbol, "")
        for t in trades:
            try:
                if str(t.get("orderId")) != command.venue_order_id or not command.venue_order_id:
                    continue
                from decimal import Decimal

                asset = str(t.get("commissionAsset") or "")
                fill = tev.Fill(
                    ts_ns=int(t["time"]) * 1_000_000,
                    recv_ts=self.clock(),
                    client_order_id=command.client_order_id,
                    symbol=command.symbol,
                    side=t.get("side") or ("BUY" if t.get("buyer", t.get("isBuyer")) else "SELL"),
                    qty=codec.qty[str(t["qty"])],
                    price=codec.price[str(t["price"])],
                    fee=Decimal(str(t.get("commission", "0"))),
                    fee_asset="" if asset == quote else asset,
                    is_maker=bool(t.get("maker", t.get("isMaker", False))),
                    trade_id=str(t["id"]),
                )
                check([fill])
            except Exception as exc:  # noqa: BLE001 - decoding is pure: an unreadable row is dropped
                self._bad_venue_data("trade history row", t, exc)
                continue
            self._put(fill)

    # ------------------------------------------------------------------ venue records (startup)

    async def signed_get(self, path: str, params: dict) -> object:
        """A signed GET of any account endpoint (raises `RestError`)."""
        return await self.rest.signed(
            "GET",
            path,
            params,
            self._api_key,
            self._api_secret,
            recv_window=self.recv_window_ms,
            offset_ms=self.offset_ms(),
            clock_ns=self.clock,
        )

    async def user_trades(
        self, symbol: str, *, start_ms: int | None = None, from_id: int | None = None, limit: int = 1000
    ) -> list[dict]:
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

    async def venue_orders(self, symbol: str, *, limit: int = 500) -> list[dict]:
        """The venue's open orders and recent order history of ``symbol`` (openOrders +
        allOrders), for the startup check of orders the journal does not know."""
        out: list[dict] = []
        for leaf, params in (("openOrders", {"symbol": symbol}), ("allOrders", {"symbol": symbol, "limit": limit})):
            body = await self.signed_get(f"{self.rest.prefix}/{leaf}", params)
            if not isinstance(body, list):
                raise ValueError(f"{leaf} answer is not a list")
            out.extend(row for row in body if isinstance(row, dict))
        return out

    async def order_by_id(self, symbol: str, order_id: str) -> dict | None:
        """GET order by the venue's orderId; None when the venue has no such order."""
        try:
            body = await self.signed_get(f"{self.rest.prefix}/order", {"symbol": symbol, "orderId": order_id})
        except RestError as exc:
            if exc.code == ORDER_DOES_NOT_EXIST:
                return None
            raise
        if not isinstance(body, dict):
            raise UserFrameError("order answer is not an object")
        return body

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
            if not isinstance(row, dict):
                raise UserFrameError("positionRisk row is not an object")
            if str(row.get("positionSide", "BOTH")) in ("BOTH", ""):
                out[str(row["symbol"])] = str(row.get("positionAmt", "0"))
        return out

    async def spot_balances(self) -> dict[str, str]:
        """Spot: asset -> free + locked (decimal string) from /api/v3/account."""
        from decimal import Decimal

        body = await self.signed_get("/api/v3/account", {})
        if not isinstance(body, dict):
            raise UserFrameError("account answer is not an object")
        return {
            str(b["asset"]): str(Decimal(str(b.get("free", "0"))) + Decimal(str(b.get("locked", "0"))))
            for b in body.get("balances", [])
        }

    async def settle(self, timeout_s: float = 5.0) -> int:
        """Wait (bounded) until every order request already handed to the gateway has been
        answered; returns how many were still running at the deadline. A clean stop calls
        this before cancelling, so a cancel never overtakes the placement it should cancel."""
        pending = [t for t in self._tasks if not t.done()]
        if not pending:
            return 0
        _, still = await asyncio.wait(pending, timeout=timeout_s)
        return len(still)

    async def cancel_all(self, orders: list[tuple[str, str]], timeout_s: float = 3.0) -> int:
        """Best-effort cancel of (symbol, client_order_id) pairs; returns how many were cancelled."""
        events = await self.cancel_and_confirm(orders, timeout_s)
        return sum(1 for e in events if type(e) is tev.OrderUpdate and e.status == "CANCELED")

    async def cancel_and_confirm(self, orders: list[tuple[str, str]], timeout_s: float = 5.0) -> list:
        """Shutdown: cancel each (symbol, client_order_id) and learn its final state.

        Returns one `OrderUpdate` per order whose state the venue confirmed: the cancel's own
        answer (CANCELED, with the executed quantity), or - when the cancel was refused (the
        order filled or was cancelled meanwhile) or its outcome is unknown - the venue's answer
        to a GET of the order. Orders the venue does not know yield nothing (they stay as the
        journal has them). Bounded by ``timeout_s`` overall.
        """

        async def one(symbol: str, coid: str) -> tev.OrderUpdate | None:
            params = {"symbol": symbol, "origClientOrderId": coid}
            body = None
            try:
                body = await self._signed("DELETE", params)
            except RestError:
                pass
            for attempt in range(3):
                if isinstance(body, dict):
                    try:
                        codec = self.codecs.get(symbol)
                        event = tev.OrderUpdate(
                            ts_ns=self.clock(),
                            recv_ts=self.clock(),
                            client_order_id=coid,
                            status=str(body.get("status", ""))[:32],
                            filled_qty=codec.qty[body.get("executedQty", "0")] if codec else 0,
                            venue_order_id=str(body.get("orderId", ""))[:64],
                            reason="shutdown",
                        )
                        if problems([event]) is None:
                            return event
                    except Exception as exc:  # noqa: BLE001 - decoding is pure: the order is queried instead
                        self._bad_venue_data("shutdown order answer", body, exc)
                try:
                    body = await self._signed("GET", params)
                except RestError as exc:
                    if exc.code == ORDER_DOES_NOT_EXIST:
                        return None
                    await asyncio.sleep(0.1 * (attempt + 1))
                    body = None
            return None

        if not orders:
            return []
        tasks = [asyncio.ensure_future(one(s, c)) for s, c in orders]
        done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        out = []
        for task in done:
            if not task.cancelled() and task.exception() is None and task.result() is not None:
                out.append(task.result())
        return out

    # ------------------------------------------------------------------ sessions

    async def run_user_stream(self) -> None:
        """Run the account stream and the WebSocket API trading session until cancelled.

        While the account stream is down, fills still reach the order manager through its
        reconciliation (acks time out into queries), and confidence says it is down.
        """
        tasks = [
            asyncio.ensure_future(self.account_stream.run()),
            asyncio.ensure_future(self.router.run()),
            asyncio.ensure_future(self.router.watch_status()),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.router.close()

    def user_events(self, frame) -> list:
        """One user-data frame (text) -> validated trading events, exactly as the account
        stream hands them to the loop (see `AccountStream.decode`)."""
        import orjson

        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            self.account_stream.bad_message(frame, exc)
            return []
        return self.account_stream.decode(msg)

    def _bad_venue_data(self, what: str, body, exc: BaseException) -> None:
        self.bad_user_events += 1
        self.log(
            "warn",
            f"unusable {what} dropped",
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
            sample=_sample(body),
            count=self.bad_user_events,
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _sample(body, limit: int = 200) -> str:
    from epochbot.venues.binance.user_checks import sample_of

    return sample_of(body, limit)

"""Order transport: the WebSocket API when its session is up, signed REST when it is not.

The order gateway asks for ``call("POST"|"DELETE"|"GET", params)`` (place, cancel, query one
order) or ``open_orders(symbol)`` and gets Binance's answer or a `RestError`, whichever way the
request travelled, so
the gateway's rules hold unchanged:

* unknown execution (``RestError.unknown_execution``): no answer within the timeout, the
  connection lost with the request in flight, or a 5xx status (REST, or inside a WebSocket API
  answer). The order manager reconciles by client order id before anything is resent. A request
  that failed in flight is **never** retried here over the other transport;
* REST fallback only when the trading session is down *before* sending;
* the rate limits the WebSocket API reports (``rateLimits``) are honoured by holding a request
  until its window has room, and a 429/418 ``retryAfter`` by waiting it out;
* venue rules before sending: no new order unless the symbol's exchangeInfo status is
  ``TRADING`` (cancels and queries always go). Statuses come from exchangeInfo at start and are
  read again after a refusal (ours or the venue's "Market is closed." / "Invalid symbol status."),
  at most every ``status_refresh_s``, and periodically while a symbol is not TRADING
  (`watch_status`); every change becomes a `SymbolStatus` event, so the trader's own gate
  stops asking (and resumes) without a round trip.

The trading session (`run`) is replaced like any transport session: on loss, with capped,
jittered back-off; an Ed25519 key logs it on (``session.logon``) so requests carry no signature.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import websockets

from epochbot.model import trade_events as tev
from epochbot.model.clock import wall_ns
from epochbot.venues.binance.rest import RestClient, RestError
from epochbot.venues.binance.signing import Signer
from epochbot.venues.binance.wsapi import WsApiError, WsApiSession

__all__ = ["SYMBOL_STATUS_REFUSED", "OrderRouter"]

_WS_METHODS = {"POST": "order.place", "DELETE": "order.cancel", "GET": "order.status", "OPEN": "openOrders.status"}
# Binance's refusals of a new order on a symbol that is not TRADING (spot, USD-M).
SYMBOL_STATUS_REFUSED = {-2010: "Market is closed.", -1122: "Invalid symbol status."}
LOCAL_REFUSAL_CODE = -1122


class OrderRouter:
    """See module docstring."""

    def __init__(
        self,
        rest: RestClient,
        signer: Signer,
        *,
        ws_api: str,
        use_ws: bool = True,
        symbol_status: dict[str, str] | None = None,
        clock: Callable[[], int] = wall_ns,
        log: Callable[..., None] = lambda level, msg, **fields: None,
        recv_window_ms: int = 5000,
        offset_ms: Callable[[], float] = lambda: 0.0,
        timeout_s: float = 5.0,
        status_refresh_s: float = 5.0,
        rng: random.Random | None = None,
        put: Callable[[object], None] = lambda event: None,
    ) -> None:
        self.rest = rest
        self.signer = signer
        self.ws_api = ws_api
        self.use_ws = use_ws and bool(ws_api)
        self.symbol_status: dict[str, str] = dict(symbol_status or {})
        self.clock = clock
        self.log = log
        self.recv_window_ms = recv_window_ms
        self.offset_ms = offset_ms
        self.timeout_s = timeout_s
        self.status_refresh_s = status_refresh_s
        self.rng = rng or random.Random(0x0DE5)
        self.put = put  # SymbolStatus events for the trader's gate
        self.session: WsApiSession | None = None
        self.logged_on = False
        self.stats = {"ws": 0, "rest": 0, "ws_unknown": 0, "refused_status": 0, "rate_limit_waits": 0, "sessions": 0}
        self._status_read_at = 0.0
        self._status_task: asyncio.Task | None = None
        self._retiring: set[asyncio.Task[None]] = set()  # serverShutdown retirements in progress

    def __repr__(self) -> str:
        return f"OrderRouter(ws_api={self.ws_api!r}, ws_up={self.ws_up})"

    @property
    def ws_up(self) -> bool:
        return self.session is not None and self.session.up

    # ------------------------------------------------------------------ the trading session
    async def run(self) -> None:
        """Keep the WebSocket API trading session open until cancelled (no-op without one)."""
        if not self.use_ws:
            return
        backoff = 0.1
        while True:
            self.stats["sessions"] += 1
            session = WsApiSession(
                self.ws_api,
                self.signer,
                clock_ms=self._now_ms,
                recv_window_ms=self.recv_window_ms,
                timeout_s=self.timeout_s,
                on_shutdown=self._retire_soon,
            )
            reason = ""
            try:
                await session.open()
                if self.signer.key_type == "ed25519":
                    await session.request("session.logon", signed=True)
                self.logged_on = self.signer.key_type == "ed25519"
                self.session = session
                self.log("info", "trading session connected", url=self.ws_api, logged_on=self.logged_on)
                backoff = 0.1
                await session.closed.wait()
                reason = session.close_reason
            except asyncio.CancelledError:
                await session.close()
                self.session = None
                raise
            except (WsApiError, OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.session = None
            self.logged_on = False
            await session.close()
            delay = backoff * (0.5 + self.rng.random())
            self.log(
                "warn",
                "trading session down: orders go over REST until it is back",
                reason=reason,
                retry_in_s=round(delay, 2),
            )
            await asyncio.sleep(delay)
            backoff = min(30.0, backoff * 2)

    def _retire_soon(self) -> None:
        """The session's on_shutdown (a plain callback): retire it from a task, kept until done."""
        task = asyncio.get_running_loop().create_task(self._retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self) -> None:
        # serverShutdown: a new session takes new requests; the old one's answers still arrive.
        session = self.session
        if session is not None and session.in_flight == 0:
            await session.close()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self._status_task is not None:
            self._status_task.cancel()

    def _now_ms(self) -> float:
        return self.clock() / 1e6 + self.offset_ms()

    # ------------------------------------------------------------------ symbol status
    def _refresh_status_soon(self) -> None:
        if time.monotonic() - self._status_read_at < self.status_refresh_s:
            return
        if self._status_task is not None and not self._status_task.done():
            return
        self._status_read_at = time.monotonic()
        self._status_task = asyncio.get_running_loop().create_task(self._refresh_status())

    async def _refresh_status(self) -> None:
        try:
            statuses = await self.rest.symbol_statuses(self.symbol_status or ())
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self.log("warn", "symbol status refresh failed", error=str(exc))
            return
        for symbol, status in statuses.items():
            if self.symbol_status.get(symbol) != status:
                self.log(
                    "warn" if status != "TRADING" else "info", "symbol status changed", symbol=symbol, status=status
                )
                now = self.clock()
                self.put(tev.SymbolStatus(ts_ns=now, recv_ts=now, symbol=symbol, status=status))
            self.symbol_status[symbol] = status

    async def watch_status(self, every_s: float = 5.0) -> None:
        """While a symbol is not TRADING, read exchangeInfo every ``every_s`` so trading resumes
        when it does (the trader sends nothing for it meanwhile, so no refusal would tell us)."""
        while True:
            await asyncio.sleep(every_s)
            if any(status != "TRADING" for status in self.symbol_status.values()):
                self._status_read_at = time.monotonic()
                await self._refresh_status()

    # ------------------------------------------------------------------ orders
    async def call(self, method: str, params: dict) -> dict:
        """Place (POST), cancel (DELETE) or query (GET) one order; raises `RestError`."""
        if method == "POST":
            symbol = str(params.get("symbol", ""))
            status = self.symbol_status.get(symbol, "TRADING")
            if status != "TRADING":
                self.stats["refused_status"] += 1
                self._refresh_status_soon()
                raise RestError(
                    400, f"not sent: {symbol} is {status} (new orders only while TRADING)", LOCAL_REFUSAL_CODE
                )
        session = self.session
        if session is not None and session.up:
            wait = session.wait_s(orders=method == "POST")
            if wait > 0:
                self.stats["rate_limit_waits"] += 1
                if wait >= 1.0:  # long enough for an operator to wonder why nothing is sent
                    self.log(
                        "warn",
                        "order request held: the venue's rate limit window is full",
                        method=method,
                        symbol=str(params.get("symbol", "")),
                        wait_s=round(wait, 2),
                    )
                await asyncio.sleep(wait)
        try:
            if session is not None and session.up:
                return await self._ws_call(session, method, params)
            self.stats["rest"] += 1
            return await self.rest.signed(
                method,
                f"{self.rest.prefix}/order",
                params,
                self.signer.api_key,
                self.signer,
                recv_window=self.recv_window_ms,
                offset_ms=self.offset_ms(),
                clock_ns=self.clock,
            )
        except RestError as exc:
            if method == "POST" and exc.code in SYMBOL_STATUS_REFUSED:
                self._status_read_at = 0.0
                self._refresh_status_soon()
            raise

    async def open_orders(self, symbol: str | None = None) -> list[dict]:
        """The account's open orders (``openOrders.status``, or REST ``openOrders`` when the
        trading session is down); raises `RestError`."""
        params = {"symbol": symbol} if symbol else {}
        session = self.session
        if session is not None and session.up:
            result = await self._ws_call(session, "OPEN", params)
        else:
            self.stats["rest"] += 1
            result = await self.rest.signed(
                "GET",
                f"{self.rest.prefix}/openOrders",
                params,
                self.signer.api_key,
                self.signer,
                recv_window=self.recv_window_ms,
                offset_ms=self.offset_ms(),
                clock_ns=self.clock,
            )
        if not isinstance(result, list):
            raise RestError(200, "open orders answer is not a list")
        return result

    async def _ws_call(self, session: WsApiSession, method: str, params: dict):
        self.stats["ws"] += 1
        try:
            if self.logged_on:
                body = dict(params)
                body["timestamp"] = int(self._now_ms())
                body["recvWindow"] = self.recv_window_ms
                result = await session.request(_WS_METHODS[method], body)
            else:
                result = await session.request(_WS_METHODS[method], params, signed=True)
        except WsApiError as exc:
            if exc.unknown_execution:
                self.stats["ws_unknown"] += 1
            raise RestError(exc.status, f"WebSocket API: {exc.msg}", exc.code, exc.retry_after_ms) from None
        if method != "OPEN" and not isinstance(result, dict):
            # The request went out and was answered with something unusable: its execution is
            # unknown (the order may well exist), never a rejection.
            raise RestError(200, "WebSocket API answer has no order body", unknown=True)
        return result

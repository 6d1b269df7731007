"""One Binance WebSocket API session (spot ``ws-api/v3``, USD-M ``ws-fapi/v1``): requests by id.

Theory of operation
-------------------
A session is one websocket and one reader task; it is disposable. ``request`` sends
``{"id", "method", "params"}`` and awaits the answer with the same id. The reader resolves
answers, hands account events (``{"subscriptionId": N, "event": {..}}``) to ``on_event``, and on
``serverShutdown`` calls ``on_shutdown`` so the owner replaces the session. When the connection
ends, every request still waiting fails with `WsApiLost`: its execution status is unknown
(Binance: a dropped connection with a request in flight). A request without an answer within
its timeout raises `WsApiTimeout` (also unknown). An answer carries Binance's HTTP-like
``status``; 4xx become `WsApiError` (refused), 5xx `WsApiError` with ``unknown_execution``.

Rate limits: every answer's ``rateLimits`` (REQUEST_WEIGHT and ORDERS counters) is kept, and
``wait_s(orders=...)`` says how long to hold a request so that it does not exceed them; a 429/418
answer's ``retryAfter`` blocks requests until then. Nothing here mutates trading state.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import websockets

from epochbot.model.clock import wall_ns
from epochbot.venues.binance.signing import Signer

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["WsApiError", "WsApiLost", "WsApiSession", "WsApiTimeout"]

_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


class WsApiError(Exception):
    """A WebSocket API answer with a non-200 status (``status``, Binance ``code``)."""

    def __init__(self, status: int, code: int | None, msg: str, retry_after_ms: int = 0) -> None:
        super().__init__(f"status {status}: {msg}" if status else msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.retry_after_ms = retry_after_ms

    @property
    def unknown_execution(self) -> bool:
        return self.status >= 500 or self.status == 0


class WsApiLost(WsApiError):
    """The connection ended (or was never up) with this request in flight: outcome unknown."""

    def __init__(self, msg: str = "WebSocket API connection lost with the request in flight") -> None:
        super().__init__(0, None, msg)


class WsApiTimeout(WsApiError):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(0, None, f"no WebSocket API answer within {timeout_s:g}s")


class WsApiSession:
    """See module docstring. ``open()`` connects; ``closed`` is set when the session is over."""

    def __init__(
        self,
        url: str,
        signer: Signer | None = None,
        *,
        on_event: Callable[[dict], None] = lambda event: None,
        on_shutdown: Callable[[], None] = lambda: None,
        clock_ms: Callable[[], float] = lambda: wall_ns() / 1e6,
        recv_window_ms: int = 5000,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.signer = signer
        self.on_event = on_event
        self.on_shutdown = on_shutdown
        self.clock_ms = clock_ms
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.rate_limits: list[dict] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._blocked_until = 0.0  # monotonic: a 429/418 told us to wait

    def __repr__(self) -> str:
        return f"WsApiSession({self.url!r}, up={self.up})"

    @property
    def up(self) -> bool:
        return self._ws is not None and not self.closed.is_set()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def open(self, open_timeout_s: float = 5.0) -> None:
        # Binance pings every 20 s (spot) / 3 min (USD-M); our own pings find a dead peer sooner.
        self._ws = await websockets.connect(
            self.url,
            compression=None,
            open_timeout=open_timeout_s,
            ping_interval=10,
            ping_timeout=10,
            close_timeout=0.5,
            max_size=1 << 22,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="wsapi-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the reader's own failure was already reported when it ended
                pass
        if self._ws is not None:
            try:
                await self._ws.close()
            except (websockets.exceptions.WebSocketException, OSError):
                pass  # closing a connection that is already gone
        self._finish("closed by us")

    def _finish(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(WsApiLost(f"WebSocket API connection lost with the request in flight ({reason})"))

    async def _read(self) -> None:
        reason = "connection closed"
        ws = self._ws
        if ws is None:
            raise AssertionError("WsApiSession._read before open()")  # a defect of ours
        try:
            async for frame in ws:
                try:
                    msg = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    continue  # an unreadable frame answers nothing; its request times out
                if not isinstance(msg, dict):
                    continue
                if "event" in msg and isinstance(msg["event"], dict):
                    if msg["event"].get("e") == "serverShutdown":
                        self.on_shutdown()
                    else:
                        self.on_event(msg["event"])
                    continue
                if msg.get("e") == "serverShutdown":
                    self.on_shutdown()
                    continue
                rid = msg.get("id")
                fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
                if fut is not None and not fut.done():
                    fut.set_result(msg)
        except asyncio.CancelledError:
            reason = "closed by us"
            raise
        except (websockets.exceptions.WebSocketException, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            self._finish(reason)

    # ------------------------------------------------------------------ rate limits
    def _note_limits(self, limits: list) -> None:
        if isinstance(limits, list):
            self.rate_limits = [r for r in limits if isinstance(r, dict)]

    def wait_s(self, *, orders: bool) -> float:
        """How long to hold the next request so the reported limits are not exceeded."""
        wait = max(0.0, self._blocked_until - time.monotonic())
        for r in self.rate_limits:
            kind = r.get("rateLimitType")
            if kind == "ORDERS" and not orders:
                continue
            try:
                count, limit = int(r["count"]), int(r["limit"])
                interval = _INTERVAL_S.get(str(r.get("interval")), 60) * int(r.get("intervalNum", 1))
            except (KeyError, TypeError, ValueError):
                continue
            if limit and count >= limit and interval <= 60:
                # Full: Binance's windows are wall-clock aligned ("10 SECOND resets at 00, 10,
                # 20... seconds"), so wait for the current one to roll over.
                wait = max(wait, interval - (self.clock_ms() / 1000.0) % interval + 0.01)
        return wait

    # ------------------------------------------------------------------ requests
    async def request(
        self, method: str, params: dict[str, Any] | None = None, *, signed: bool = False, timeout_s: float | None = None
    ) -> Any:
        """Send one request; returns its ``result`` or raises `WsApiError` (see module docstring)."""
        if not self.up:
            raise WsApiLost("WebSocket API session is not connected (nothing was sent)")
        params = dict(params or {})
        if signed:
            if self.signer is None:
                raise WsApiError(400, None, f"{method} needs an API key")
            params = self.signer.sign_ws(params, int(self.clock_ms()), self.recv_window_ms)
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        body = {"id": rid, "method": method}
        if params:
            body["params"] = params
        try:
            if self._ws is None:  # `up` was checked above; a close between then and now
                raise OSError("connection closed")
            await self._ws.send(orjson.dumps(body).decode())
        except (websockets.exceptions.WebSocketException, OSError) as exc:
            self._pending.pop(rid, None)
            # The frame may or may not have left: unknown, like any lost connection.
            raise WsApiLost(f"WebSocket API send failed: {exc}") from None
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            msg = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(rid, None)
            raise WsApiTimeout(timeout) from None
        self._note_limits(msg.get("rateLimits"))
        status = msg.get("status")
        status = status if isinstance(status, int) else 0
        if status == 200:
            return msg.get("result")
        error = msg.get("error")
        err = error if isinstance(error, dict) else {}
        retry_ms = 0
        detail = err.get("data")
        data = detail if isinstance(detail, dict) else {}
        if status in (418, 429):
            retry_after = data.get("retryAfter")
            if isinstance(retry_after, int) and retry_after > 0:
                retry_ms = max(0, int(retry_after - self.clock_ms()))
            retry_ms = min(retry_ms or 1000, 120_000)
            self._blocked_until = time.monotonic() + retry_ms / 1000
        code = err.get("code") if isinstance(err.get("code"), int) else None
        raise WsApiError(status or 500, code, str(err.get("msg", "no error message")), retry_ms)

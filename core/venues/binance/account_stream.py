"""The account's user-data stream on today's Binance, as a disposable session with epochs.

* Spot (the REST listenKey endpoints answer 410 since 2026-02-20): a WebSocket API session
  (``ws-api/v3``). An Ed25519 key logs the session on (``session.logon``) and calls
  ``userDataStream.subscribe``; HMAC and RSA keys use ``userDataStream.subscribe.signature``.
  Events arrive as ``{"subscriptionId": N, "event": {..}}``.
* USD-M (legacy URLs retired 2026-04-23): ``POST /fapi/v1/listenKey`` (kept alive with ``PUT``
  every 30 minutes), then ``/private/ws?listenKey=<key>&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE``.

Theory of operation: `run` opens a session with the next stream epoch, and every frame is
checked against the current epoch before it becomes a trading event (a straggler of a
replaced session is counted and dropped). A session ends when its connection ends, on
``serverShutdown``, on ``listenKeyExpired`` / ``eventStreamTerminated``, or when the liveness
ping gets no pong (account data may be quiet for hours, so silence itself proves nothing; the
websocket ping does). It is then replaced with capped, jittered back-off. Every up/down change is
an `AccountStreamState` event, so the engine's confidence shows the stream down; meanwhile
fills still arrive through the order manager's reconciliation (queries).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import orjson
import websockets

from epochbot.model import trade_events as tev
from epochbot.model.clock import wall_ns
from epochbot.venues.binance.rest import RestClient, RestError
from epochbot.venues.binance.signing import Signer
from epochbot.venues.binance.user_checks import checked_user_events, sample_of
from epochbot.venues.binance.wsapi import WsApiSession

__all__ = ["USDM_USER_EVENTS", "AccountStream", "ws_api_url"]

USDM_USER_EVENTS = ("ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE")
LISTEN_KEY_KEEPALIVE_S = 30 * 60
_END_EVENTS = ("listenKeyExpired", "eventStreamTerminated", "serverShutdown")

# Binance publishes the WebSocket API on its own hosts; anything else (the simulator, a proxy)
# serves it under the stream base URL.
_KNOWN_WS_API = {
    ("spot", "wss://stream.binance.com:9443"): "wss://ws-api.binance.com:443/ws-api/v3",
    ("spot", "wss://stream.binance.com:443"): "wss://ws-api.binance.com:443/ws-api/v3",
    ("spot", "wss://stream.testnet.binance.vision"): "wss://ws-api.testnet.binance.vision/ws-api/v3",
    ("usdm", "wss://fstream.binance.com"): "wss://ws-fapi.binance.com/ws-fapi/v1",
    ("usdm", "wss://fstream.binancefuture.com"): "wss://testnet.binancefuture.com/ws-fapi/v1",
    ("usdm", "wss://stream.binancefuture.com"): "wss://testnet.binancefuture.com/ws-fapi/v1",
}


def ws_api_url(market: str, ws_base: str) -> str:
    """The WebSocket API URL that goes with a stream base URL (see `_KNOWN_WS_API`)."""
    base = ws_base.rstrip("/")
    return _KNOWN_WS_API.get((market, base)) or base + ("/ws-api/v3" if market == "spot" else "/ws-fapi/v1")


class AccountStream:
    """Keeps the account stream of one market open (see module docstring)."""

    def __init__(
        self,
        *,
        market: str,
        rest: RestClient,
        signer: Signer,
        ws_base: str,
        ws_api: str = "",
        put: Callable[[object], None],
        codecs: dict,
        quotes: dict[str, str] | None = None,
        clock: Callable[[], int] = wall_ns,
        log: Callable[..., None] = lambda level, msg, **fields: None,
        recv_window_ms: int = 5000,
        offset_ms: Callable[[], float] = lambda: 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.market = market
        self.rest = rest
        self.signer = signer
        self.ws_base = ws_base.rstrip("/")
        self.ws_api = ws_api or ws_api_url(market, ws_base)
        self.put = put
        self.codecs = codecs
        self.quotes = quotes or {}
        self.clock = clock
        self.log = log
        self.recv_window_ms = recv_window_ms
        self.offset_ms = offset_ms
        self.rng = rng or random.Random(0x5EED)
        self.epoch = 0
        self.connected = False
        self.stats = {"sessions": 0, "frames": 0, "fills": 0, "stragglers": 0, "unreadable": 0}
        self._end: asyncio.Event | None = None
        self._end_reason = ""

    def __repr__(self) -> str:
        return f"AccountStream(market={self.market!r}, epoch={self.epoch}, connected={self.connected})"

    # ------------------------------------------------------------------ frames
    def _on_message(self, epoch: int, msg) -> None:
        if epoch != self.epoch:
            self.stats["stragglers"] += 1  # a replaced session's late frame: its epoch is over
            return
        self.stats["frames"] += 1
        event = msg.get("event", msg.get("data", msg)) if isinstance(msg, dict) else msg
        if isinstance(event, dict) and event.get("e") in _END_EVENTS:
            self._ended(str(event.get("e")))
            return
        for item in self.decode(msg):
            if type(item) is tev.Fill:
                self.stats["fills"] += 1
            item.recv_ts = item.recv_ts or self.clock()
            self.put(item)

    def decode(self, msg) -> list:
        """One parsed message -> validated events (`checked_user_events`); a bad one is counted
        in ``stats["unreadable"]`` and logged with a sample."""
        events, problem = checked_user_events(msg, self.codecs, self.clock(), self.quotes)
        if problem is not None:
            self.bad_message(msg, problem)
        return events

    def bad_message(self, msg, exc: BaseException) -> None:
        self.stats["unreadable"] += 1
        self.log(
            "warn",
            "unusable user data frame dropped",
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
            sample=sample_of(msg),
            count=self.stats["unreadable"],
        )

    def _ended(self, reason: str) -> None:
        self._end_reason = reason
        if self._end is not None:
            self._end.set()

    def _state(self, up: bool, reason: str) -> None:
        if up == self.connected:
            return
        self.connected = up
        self.put(
            tev.AccountStreamState(
                ts_ns=self.clock(), recv_ts=self.clock(), up=up, stream_epoch=self.epoch, reason=reason
            )
        )

    # ------------------------------------------------------------------ sessions
    async def run(self) -> None:
        """Open, watch and replace account-stream sessions until cancelled."""
        backoff = 0.1
        while True:
            self.epoch += 1
            self.stats["sessions"] += 1
            self._end = asyncio.Event()
            self._end_reason = ""
            epoch = self.epoch
            try:
                if self.market == "spot":
                    await self._spot_session(epoch)
                else:
                    await self._usdm_session(epoch)
                reason = self._end_reason or "connection closed"
                backoff = 0.1
            except asyncio.CancelledError:
                self._state(False, "stopped")
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the venue sent or did: the session is replaced, never lost
                reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            self._state(False, reason)
            delay = backoff * (0.5 + self.rng.random())
            self.log(
                "warn",
                "account stream down: replacing the session",
                epoch=epoch,
                reason=reason,
                retry_in_s=round(delay, 2),
            )
            await asyncio.sleep(delay)
            backoff = min(30.0, backoff * 2)

    async def _spot_session(self, epoch: int) -> None:
        session = WsApiSession(
            self.ws_api,
            self.signer,
            on_event=lambda event: self._on_message(epoch, {"event": event}),
            on_shutdown=lambda: self._ended("serverShutdown"),
            clock_ms=lambda: self.clock() / 1e6 + self.offset_ms(),  # the runtime's clock and the venue's offset
            recv_window_ms=self.recv_window_ms,
        )
        await session.open()
        try:
            if self.signer.key_type == "ed25519":
                await session.request("session.logon", signed=True)
                result = await session.request("userDataStream.subscribe")
                how = "session.logon + userDataStream.subscribe"
            else:
                result = await session.request("userDataStream.subscribe.signature", signed=True)
                how = "userDataStream.subscribe.signature"
            self.log(
                "info",
                "account stream connected",
                market="spot",
                how=how,
                epoch=epoch,
                subscription_id=(result or {}).get("subscriptionId"),
            )
            self._state(True, how)
            await self._wait_end(session.closed)
            if not self._end_reason:
                self._end_reason = session.close_reason
        finally:
            await session.close()

    async def _usdm_session(self, epoch: int) -> None:
        body = await self.rest.keyed("POST", "/fapi/v1/listenKey", self.signer.api_key)
        key = body["listenKey"]
        url = f"{self.ws_base}/private/ws?listenKey={key}&events={'/'.join(USDM_USER_EVENTS)}"
        async with websockets.connect(
            url, compression=None, ping_interval=10, ping_timeout=10, open_timeout=5, close_timeout=0.5
        ) as ws:
            self.log("info", "account stream connected", market="usdm", route="/private", epoch=epoch)
            self._state(True, "/private listenKey")
            keepalive = asyncio.get_running_loop().create_task(self._keepalive())

            async def read() -> None:
                async for frame in ws:
                    try:
                        msg = orjson.loads(frame)
                    except orjson.JSONDecodeError as exc:
                        self.bad_message(frame, exc)
                        continue
                    self._on_message(epoch, msg)
                self._ended(f"closed by the venue (code {ws.close_code})")

            reader = asyncio.get_running_loop().create_task(read())
            try:
                await self._wait_end(reader)
            finally:
                keepalive.cancel()
                reader.cancel()
                try:
                    await reader
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the reader's own failure was already reported when it ended
                    pass

    async def _wait_end(self, other: asyncio.Task[Any] | asyncio.Event) -> None:
        if self._end is None:
            raise AssertionError("AccountStream._wait_end outside run()")  # a defect of ours
        end = asyncio.get_running_loop().create_task(self._end.wait())
        watch = other if isinstance(other, asyncio.Task) else asyncio.get_running_loop().create_task(other.wait())
        try:
            await asyncio.wait({end, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            end.cancel()
            if watch is not other:
                watch.cancel()
        failure = watch.exception() if watch.done() and not watch.cancelled() else None
        if failure is not None:
            raise failure

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(LISTEN_KEY_KEEPALIVE_S)
            try:
                await self.rest.keyed("PUT", "/fapi/v1/listenKey", self.signer.api_key)
            except RestError as exc:
                self.log("warn", "listenKey keep-alive failed", error=str(exc))

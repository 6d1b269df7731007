"""Disposable transport sessions: one per epoch.

A `TransportSession` owns, per route, one websocket (the `websockets` library), one reader task
and one writer task. Spot has one route; USD-M has two since 2026 (``/public`` for depth and
bookTicker, ``/market`` for aggTrade and markPrice), so a USD-M session holds two sockets that
live and die together.

* The reader decodes each frame, stamps ``recv_ts`` right after decoding, tags the session's
  epoch, checks each depth stream's update-id continuity (a break is reported at once as a
  control event, which overtakes any backlog of market events), and enqueues.
* The writer serialises outbound messages (SUBSCRIBE and friends); a failed write is reported.
* Neither reconnects nor decides anything: they report by control events (`Disconnected`,
  `WriteFailed`, `SubscriptionConfirmed`/`Failed`, `ServerShutdownNotice`, `MalformedFrame`,
  `GapDetected`). Closing the session cancels its tasks; anything they emitted that is still
  queued carries the old epoch and is discarded by the engine.

Ping/pong: the websockets library answers the venue's pings itself; liveness is judged by
market data, not pings (``../shared/DESIGN.md``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import websockets
from websockets.exceptions import ConnectionClosed

from epochbot.model import events as ev
from epochbot.model.clock import wall_ns
from epochbot.runtime.inbox import Inbox
from epochbot.venues.binance.wire import Ack, FrameError, ServerShutdown, decode_frame

__all__ = ["RouteSpec", "TransportSession"]


MAX_STREAMS_PER_CONNECTION = 1024  # Binance's limit for one websocket connection


@dataclass(frozen=True, slots=True)
class RouteSpec:
    url: str  # websocket URL that accepts live SUBSCRIBE (combined-stream endpoint)
    streams: tuple[str, ...]

    def split(self, limit: int = MAX_STREAMS_PER_CONNECTION) -> list[RouteSpec]:
        """One spec per connection, each within the venue's streams-per-connection limit."""
        if len(self.streams) <= limit:
            return [self]
        return [RouteSpec(self.url, self.streams[i : i + limit]) for i in range(0, len(self.streams), limit)]


class TransportSession:
    def __init__(
        self,
        epoch: int,
        routes: list[RouteSpec],
        inbox: Inbox,
        clock=wall_ns,
        *,
        spot: bool,
        max_message_bytes: int = 1 << 22,
        messages_per_s: float | None = None,
        on_frame=None,
        scales: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        self.on_frame = on_frame  # journal hook: (raw frame, recv_ns) for every frame received
        # symbol -> (price_decimals, qty_decimals) of books whose codec is fixed at that scale:
        # their depth frames are decoded straight to integer units (see decode_frame).
        self.scales = scales
        # Binance counts our control messages (and ping/pong frames) against an incoming
        # limit per connection: 5/s on spot, 10/s on USD-M. Stay under it with margin.
        self.min_send_interval = 1.0 / (messages_per_s or (4.0 if spot else 8.0))
        self.epoch = epoch
        self.routes = routes
        self.inbox = inbox
        self.clock = clock
        self.spot = spot
        self.max_message_bytes = max_message_bytes
        self._sockets: list = []
        self._tasks: list[asyncio.Task] = []
        self._outboxes: list[asyncio.Queue] = []
        self._pending_acks: dict[int, tuple[str, ...]] = {}
        self._next_id = 1
        self.closed = False
        self._last_final: dict[str, int] = {}

    async def open(self) -> None:
        """Dial every route (concurrently); raises on failure after closing what opened."""
        try:
            self._sockets = await asyncio.gather(*(self._dial(route.url) for route in self.routes))
        except BaseException:
            await self.close()
            raise

    async def _dial(self, url: str):
        return await websockets.connect(
            url,
            compression=None,
            max_size=self.max_message_bytes,
            ping_interval=None,  # the venue pings; the library pongs
            open_timeout=5,
            close_timeout=0.5,
            max_queue=4096,
        )

    def start(self) -> None:
        """Start reader/writer tasks and send the subscriptions (acked asynchronously)."""
        loop = asyncio.get_running_loop()
        for index, (route, ws) in enumerate(zip(self.routes, self._sockets, strict=True)):
            outbox: asyncio.Queue = asyncio.Queue(maxsize=64)
            self._outboxes.append(outbox)
            self._tasks.append(loop.create_task(self._reader(ws, route), name=f"reader-e{self.epoch}-{index}"))
            self._tasks.append(loop.create_task(self._writer(ws, outbox), name=f"writer-e{self.epoch}-{index}"))
            if route.streams:
                self.subscribe(index, route.streams)
            else:
                self._pending_acks[0] = ()
        if not any(route.streams for route in self.routes):
            self.inbox.put_control(ev.SubscriptionConfirmed(epoch=self.epoch, recv_ts=self.clock()))

    def subscribe(self, route_index: int, streams: tuple[str, ...], method: str = "SUBSCRIBE") -> int:
        request_id = self._next_id
        self._next_id += 1
        if method == "SUBSCRIBE":
            self._pending_acks[request_id] = streams
        message = orjson.dumps({"method": method, "params": list(streams), "id": request_id})
        try:
            self._outboxes[route_index].put_nowait(message)
        except asyncio.QueueFull:
            self.inbox.put_control(ev.WriteFailed(epoch=self.epoch, recv_ts=self.clock(), reason="outbox full"))
        return request_id

    async def _writer(self, ws, outbox: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        last_sent = -1e9
        while True:
            message = await outbox.get()
            wait = last_sent + self.min_send_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            last_sent = loop.time()
            try:
                await ws.send(message.decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the session is dead for writing: say so, stop writing
                self.inbox.put_control(
                    ev.WriteFailed(epoch=self.epoch, recv_ts=self.clock(), reason=f"{type(exc).__name__}: {exc}")
                )
                return

    async def _reader(self, ws, route: RouteSpec) -> None:
        epoch = self.epoch
        inbox = self.inbox
        put_market = inbox.put_market
        put_control = inbox.put_control
        clock = self.clock
        DepthDiff = ev.DepthDiff
        last_final = self._last_final
        spot = self.spot
        reason = "connection closed"
        on_frame = self.on_frame
        scales = self.scales
        sleep = asyncio.sleep
        since_yield = 0
        try:
            async for frame in ws:
                # A venue pushes every symbol's @100ms update at about the same instant: with
                # hundreds of symbols, one socket read holds hundreds of frames. Let the strategy
                # loop take them every few frames instead of after the whole burst (each
                # frame's queue delay would otherwise include decoding all the others).
                since_yield += 1
                if since_yield >= 16:
                    since_yield = 0
                    await sleep(0)
                if on_frame is not None:
                    on_frame(frame, clock())
                try:
                    event = decode_frame(frame, epoch, 0, scales)
                except FrameError as exc:
                    put_control(
                        ev.MalformedFrame(
                            epoch=epoch,
                            recv_ts=clock(),
                            reason=str(exc)[:300],
                            sample=str(frame[:200]),
                            event=exc.event,
                            symbol=exc.symbol,
                        )
                    )
                    continue
                now = clock()
                if event is None:
                    continue
                kind = type(event)
                if kind is DepthDiff:
                    event.recv_ts = now
                    symbol = event.symbol
                    last = last_final.get(symbol)
                    if last is not None:
                        expected_ok = (event.first_id == last + 1) if spot else (event.prev_final_id == last)
                        if not expected_ok and event.final_id > last:
                            got = event.first_id if spot else event.prev_final_id
                            put_control(
                                ev.GapDetected(
                                    epoch=epoch,
                                    recv_ts=now,
                                    symbol=symbol,
                                    expected=last + 1 if spot else last,
                                    got=got or 0,
                                )
                            )
                    if last is None or event.final_id > last:
                        last_final[symbol] = event.final_id
                    put_market(event, frame)
                elif kind is Ack:
                    streams = self._pending_acks.pop(event.request_id, None)
                    if event.error is not None:
                        put_control(
                            ev.SubscriptionFailed(
                                epoch=epoch, recv_ts=now, request_id=event.request_id, reason=event.error
                            )
                        )
                    elif streams is not None and not self._pending_acks:
                        put_control(
                            ev.SubscriptionConfirmed(
                                epoch=epoch, recv_ts=now, request_id=event.request_id, streams=streams
                            )
                        )
                elif kind is ServerShutdown:
                    put_control(ev.ServerShutdownNotice(epoch=epoch, recv_ts=now, reason="serverShutdown event"))
                else:
                    event.recv_ts = now
                    put_market(event, frame)
            close = ws.close_code
            reason = f"closed by venue (code {close}{': ' + ws.close_reason if ws.close_reason else ''})"
        except asyncio.CancelledError:
            raise
        except ConnectionClosed as exc:
            reason = f"connection lost: {exc}"
        except Exception as exc:  # noqa: BLE001 - whatever ended the reader, the session is reported lost
            reason = f"reader failed: {type(exc).__name__}: {exc}"
        if not self.closed:
            put_control(ev.Disconnected(epoch=epoch, recv_ts=clock(), reason=reason))

    def clear_gap_tracking(self, symbol: str) -> None:
        """After a book resync the stream continues; the reader's own check stays valid."""
        self._last_final.pop(symbol, None)

    async def close(self) -> None:
        """Cancel tasks and close sockets; idempotent and quick (close_timeout bounded)."""
        if self.closed:
            return
        self.closed = True
        for task in self._tasks:
            task.cancel()
        closers = [ws.close() for ws in self._sockets]
        if closers:
            await asyncio.gather(*closers, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

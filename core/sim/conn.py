"""Connection lifecycle: every websocket client of the simulator, from accept to close.

Theory of operation
-------------------
A `WsConn` is one client (market streams, ``/private`` user data or the WebSocket API): its
subscriptions, a send queue and a writer task. `Connections.open` registers an accepted socket
and starts its two tasks: the writer drains the queue with ``send_frame`` (awaiting only when
the socket buffer is full), the keepalive pings every ``ping_interval_s`` (not while a stall
fault silences the connection), closes it 1008 "Pong timeout" when no pong came for
``pong_timeout_s`` and 1000 at ``max_lifetime_s`` (Binance's 24 hours). `Connections.close` is
the one way out: it runs the close hooks (the subscription registry and the user-data hub
forget the connection), stops the writer and sends the close frame (or aborts the transport).
The instant faults (drop, expire, server_shutdown) act on every open connection here.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from epochbot.sim.clock import now_ms
from epochbot.sim.faults import FaultBoard, StallScopes

__all__ = ["Connections", "WsConn"]


class WsConn:
    """One websocket client: subscriptions, a bounded send queue and a writer task."""

    __slots__ = (
        "id",
        "ws",
        "request",
        "route",
        "combined",
        "subs",
        "queue",
        "wake",
        "writer",
        "keeper",
        "last_pong",
        "opened",
        "msg_times",
        "listen_keys",
        "keys_in_url",
        "micros",
        "closed",
        "held",
    )

    def __init__(self, cid: int, ws: web.WebSocketResponse, request: web.Request, route: str, combined: bool) -> None:
        self.id = cid
        self.ws = ws
        self.request = request
        self.route = route
        self.combined = combined
        self.subs: set[str] = set()
        self.queue: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.writer: asyncio.Task[None] | None = None
        self.keeper: asyncio.Task[None] | None = None
        self.last_pong = time.monotonic()
        self.opened = time.monotonic()
        self.msg_times: deque[float] = deque()
        # USD-M /private: listenKey -> (account id, the `events` asked for; None = every event)
        self.listen_keys: dict[str, tuple[str, frozenset[str] | None]] = {}
        self.keys_in_url = False  # /private opened with listenKeys in its URL (closed with them)
        self.micros = False  # spot `timeUnit=MICROSECOND` in the URL: time fields in microseconds
        self.closed = False
        self.held: tuple[str, bytes] | None = None  # an out_of_order frame waiting for its successor


class Connections:
    """The open websockets, their writer and keepalive tasks, and the one way to close them."""

    def __init__(
        self,
        *,
        stats: dict[str, Any],
        faults: FaultBoard,
        stalls: StallScopes,
        ping_interval_s: float,
        pong_timeout_s: float,
        max_lifetime_s: float,
    ) -> None:
        self._stats = stats
        self._faults = faults
        self._stalls = stalls
        self._ping_interval_s = ping_interval_s
        self._pong_timeout_s = pong_timeout_s
        self._max_lifetime_s = max_lifetime_s
        self._open: dict[int, WsConn] = {}
        self._next_id = 1
        self._close_hooks: list[Callable[[WsConn], None]] = []
        self._closing: set[asyncio.Task[None]] = set()

    def on_close(self, hook: Callable[[WsConn], None]) -> None:
        """Call ``hook(conn)`` when a connection closes, before its close frame is sent."""
        self._close_hooks.append(hook)

    def __len__(self) -> int:
        return len(self._open)

    def ids(self) -> set[int]:
        """The ids of the open connections."""
        return set(self._open)

    def open(self, ws: web.WebSocketResponse, request: web.Request, route: str, combined: bool) -> WsConn:
        """Register an accepted (prepared) websocket and start its writer and keepalive."""
        cid = self._next_id
        self._next_id += 1
        conn = WsConn(cid, ws, request, route, combined)
        self._open[cid] = conn
        self._stats["connections_total"] += 1
        loop = asyncio.get_running_loop()
        conn.writer = loop.create_task(self._writer(conn))
        conn.keeper = loop.create_task(self._keepalive(conn))
        return conn

    async def finish(self, conn: WsConn) -> None:
        """The connection's handler is done: stop its keepalive and close it."""
        if conn.keeper is not None:
            conn.keeper.cancel()
        await self.close(conn)

    @staticmethod
    def send_json(conn: WsConn, obj: Any) -> None:
        """Queue one JSON answer on the connection (after the frames already queued)."""
        conn.queue.append(orjson.dumps(obj))
        conn.wake.set()

    async def close(self, conn: WsConn, code: int = 1000, message: bytes = b"", abort: bool = False) -> None:
        """Close a connection once (later calls do nothing); ``abort`` cuts it with no close frame."""
        if conn.closed:
            return
        conn.closed = True
        self._open.pop(conn.id, None)
        for hook in self._close_hooks:
            hook(conn)
        conn.wake.set()
        if conn.writer is not None and conn.writer is not asyncio.current_task():
            conn.writer.cancel()
        if abort:
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
            return
        try:
            await asyncio.wait_for(conn.ws.close(code=code, message=message), 1.0)
        except Exception:  # noqa: BLE001 - a close that fails or hangs: the transport is cut instead
            transport = conn.request.transport
            if transport is not None:
                transport.abort()

    def close_soon(self, conn: WsConn, code: int) -> None:
        """Close from synchronous code (a slow consumer found while delivering)."""
        task = asyncio.get_running_loop().create_task(self.close(conn, code=code))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self, code: int) -> None:
        for task in list(self._closing):  # a serverShutdown grace still running: the server stops now
            if task is not asyncio.current_task():
                task.cancel()
        for conn in list(self._open.values()):
            await self.close(conn, code=code)

    def start_instant(self, kind: str, params: dict[str, Any]) -> None:
        """Run an instant fault (`run_instant`) as a task the connections keep until it is done."""
        task = asyncio.get_running_loop().create_task(self.run_instant(kind, params))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def run_instant(self, kind: str, params: dict[str, Any] | None = None) -> None:
        """Apply an instant fault to every open connection: drop, expire or server_shutdown.

        ``server_shutdown`` tells every open connection in its own shape (spot WebSocket Streams
        and WebSocket API since 2026-05-08, USD-M alike): raw streams the event, combined streams
        ``{"stream": "!serverShutdown", "data": ..}``, WebSocket API sessions ``{"event": ..}``.
        The connections stay usable for ``grace_s`` seconds (requests served, frames sent), then
        close 1000; connections opened meanwhile are not affected (they are on the next server).
        """
        conns = list(self._open.values())
        if kind == "drop":
            for c in conns:
                await self.close(c, abort=True)
        elif kind == "expire":
            for c in conns:
                self._stats["lifetime_closes"] += 1
                await self.close(c, code=1000)
        elif kind == "server_shutdown":
            at = now_ms()
            for c in conns:
                if not c.closed:
                    event = {"e": "serverShutdown", "E": at * 1000 if c.micros else at}
                    shape = (
                        {"event": event}
                        if c.route == "ws-api"
                        else {"stream": "!serverShutdown", "data": event}
                        if c.combined
                        else event
                    )
                    # Queued behind the frames already waiting, so the announcement never overtakes them.
                    c.queue.append(orjson.dumps(shape))
                    c.wake.set()
            grace_s = float((params or {}).get("grace_s", 0.0))
            if grace_s > 0:
                await asyncio.sleep(grace_s)
            for _ in range(100):  # the announcement must be out before the close (at most 1 s more)
                if all(c.closed or not c.queue for c in conns):
                    break
                await asyncio.sleep(0.01)
            for c in conns:
                await self.close(c, code=1000)

    async def _writer(self, conn: WsConn) -> None:
        ws = conn.ws
        q = conn.queue
        try:
            while not conn.closed:
                await conn.wake.wait()
                conn.wake.clear()
                while q:
                    await ws.send_frame(q.popleft(), WSMsgType.TEXT)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - a broken transport: the connection is finished, nothing else is
            pass

    async def _keepalive(self, conn: WsConn) -> None:
        step = min(self._ping_interval_s, self._pong_timeout_s, self._max_lifetime_s, 1.0)
        last_ping = time.monotonic()
        while not conn.closed:
            await asyncio.sleep(step)
            now = time.monotonic()
            if now - conn.opened >= self._max_lifetime_s:
                self._stats["lifetime_closes"] += 1
                await self.close(conn, code=1000)
                return
            if now - conn.last_pong > self._pong_timeout_s:
                self._stats["pong_timeouts"] += 1
                await self.close(conn, code=1008, message=b"Pong timeout")
                return
            stalled_here = self._stalls.silences(self._faults.active("stall"), conn.id)
            if now - last_ping >= self._ping_interval_s and not stalled_here:
                last_ping = now
                try:
                    await conn.ws.ping(b"")
                except Exception:  # noqa: BLE001 - the socket is gone: the reader's end closes it
                    return

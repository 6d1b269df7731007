"""One websocket client of the simulator (market streams, user data, the WebSocket API): its
subscriptions, a bounded send queue and a writer task. Shared by `epochbot.sim.server` and
`epochbot.sim.wsapi`, which both accept connections (kept apart so neither imports the other back).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from aiohttp import web

__all__ = ["WsConn"]


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
        "last_pong",
        "opened",
        "msg_times",
        "account_id",
        "listen_key",
        "closed",
        "held",
        "user_events",
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
        self.writer: asyncio.Task | None = None
        self.last_pong = time.monotonic()
        self.opened = time.monotonic()
        self.msg_times: deque[float] = deque()
        self.account_id: str | None = None
        self.listen_key: str | None = None
        self.closed = False
        self.held: bytes | None = None
        self.user_events: frozenset[str] | None = None  # USD-M /private: the `events` asked for

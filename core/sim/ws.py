"""Market-stream websockets: the stream URLs, the subscribe protocol and the /private route.

Routes: ``/ws/<streams>``, ``/ws`` (subscribe afterwards) and ``/stream?streams=..`` (combined
frames), on spot at the root and on USD-M under ``/public`` (depth, bookTicker), ``/market``
(trades, markPrice, klines, liquidations) and ``/private`` (user data: ``?listenKey=..``, with
``&events=A/B`` to filter, several pairs in stream mode, or none and ``SUBSCRIBE [<listenKey>]``).
USD-M's legacy route-less URLs were retired on 2026-04-23: they are answered with a refusal.

The subscribe protocol is Binance's: ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY``/``GET_PROPERTY`` ``combined``, with Binance's error codes and texts; request ids
as Binance takes them (`valid_request_id`), echoed unchanged. On ``/private`` a ``SUBSCRIBE``
parameter may be a live listenKey: its account's user data (``UserEvents``). A client
sending more than ``msg_rate_limit`` messages per second is closed 1008; a ``reject_subscribe``
fault refuses subscriptions.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from epochbot.sim.conn import Connections, WsConn
from epochbot.sim.faults import FaultBoard
from epochbot.sim.listen_keys import ListenKeys
from epochbot.sim.rest import Handler
from epochbot.sim.streams import StreamSpec, parse_stream, route_allows
from epochbot.sim.subscriptions import Subscriptions
from epochbot.sim.time_unit import wants_micros
from epochbot.sim.user_data import UserEvents

__all__ = ["MarketStreams", "valid_request_id", "validate_streams"]


def validate_streams(names: list[Any], route: str, market: str) -> tuple[list[tuple[str, StreamSpec]], str | None]:
    """The parsed streams, or the error Binance gives for the first invalid name."""
    out = []
    for name in names:
        if not isinstance(name, str):
            return [], "Invalid request: params must be strings"
        spec = parse_stream(name, market)
        if spec is None:
            return [], f"Invalid request: invalid stream {name}"
        if market == "usdm" and not route_allows(route, spec):
            return [], f"Invalid request: stream {name} is not served on /{route}"
        out.append((name, spec))
    return out, None


class MarketStreams:
    """The market-stream and /private websocket endpoints (see module docstring)."""

    def __init__(
        self,
        *,
        market: str,
        max_streams: int,
        msg_rate_limit: int,
        connections: Connections,
        subscriptions: Subscriptions,
        listen_keys: ListenKeys,
        user_events: UserEvents,
        faults: FaultBoard,
        stats: dict[str, Any],
    ) -> None:
        self._market = market
        self._max_streams = max_streams
        self._msg_rate_limit = msg_rate_limit
        self._connections = connections
        self._subs = subscriptions
        self._listen_keys = listen_keys
        self._user_events = user_events
        self._faults = faults
        self._stats = stats

    def add_routes(self, router: web.UrlDispatcher) -> None:
        # USD-M's legacy route-less URLs were retired on 2026-04-23: only /public, /market and
        # /private are served (the route-less handler answers them with a refusal).
        routes = ["public", "market", "private", ""] if self._market == "usdm" else [""]
        for route in routes:
            prefix = f"/{route}" if route else ""
            router.add_get(f"{prefix}/ws", self._handler(route, None, False))
            router.add_get(f"{prefix}/ws/{{streams:.+}}", self._handler(route, "path", False))
            router.add_get(f"{prefix}/stream", self._handler(route, "query", True))

    def _handler(self, route: str, source: str | None, combined: bool) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._accept(request, route, source, combined)

        return handler

    async def _accept(self, request: web.Request, route: str, source: str | None, combined: bool) -> web.StreamResponse:
        names: list[str] = []
        keys: list[tuple[str, str, frozenset[str] | None]] = []  # /private: (listenKey, account, events)
        valid: list[tuple[str, StreamSpec]] = []
        if self._market == "usdm" and route == "":
            return web.json_response(
                {
                    "code": -1,
                    "msg": "This websocket URL was retired on 2026-04-23; use /public, /market or /private.",
                },
                status=404,
            )
        if route == "private":
            # User data as /private/ws?listenKey=<key>&events=A/B, in stream mode several pairs
            # (/private/stream?listenKey=K1&events=A&listenKey=K2&events=B), or with no query at all
            # and SUBSCRIBE ["<listenKey>"] afterwards (Binance's official USD-M SDK). The path form
            # /private/ws/<listenKey> is retired.
            if source == "path":
                return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
            given = request.query.getall("listenKey", [])
            filters = request.query.getall("events", [])
            for n, key in enumerate(given):
                account = self._listen_keys.account_of(key)
                if account is None:
                    return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
                events = [e for e in (filters[n] if n < len(filters) else "").split("/") if e]
                keys.append((key, account, frozenset(events) if events else None))
        elif source == "path":
            raw = request.match_info["streams"]
            # A bare number is no stream: clients such as ccxt open `/ws/<n>` and
            # subscribe afterwards, and Binance accepts that connection.
            names = [s for s in raw.split("/") if s and not s.isdigit()]
        elif source == "query":
            names = [s for s in request.query.get("streams", "").split("/") if s]
        if names:
            if self._faults.take("reject_subscribe"):
                return web.json_response({"code": -1, "msg": "Subscription rejected (simulator fault)."}, status=400)
            valid, err = validate_streams(names, route, self._market)
            if err is not None or len(valid) > self._max_streams:
                return web.json_response({"code": -1, "msg": err or "Too many streams"}, status=400)
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20, compress=False)
        await ws.prepare(request)
        conn = self._connections.open(ws, request, route, combined)
        conn.keys_in_url = bool(keys)
        conn.micros = self._market == "spot" and wants_micros(request.query.get("timeUnit"))
        for key, account, wanted in keys:
            self._user_events.listen(conn, account, key, wanted)
        for name, spec in valid:
            self._subs.add(conn, name, spec)
        try:
            await self._read(conn)
        finally:
            await self._connections.finish(conn)
        return ws

    async def _read(self, conn: WsConn) -> None:
        ws = conn.ws
        limit = self._msg_rate_limit
        async for msg in ws:
            now = time.monotonic()
            times = conn.msg_times
            times.append(now)
            while times and now - times[0] > 1.0:
                times.popleft()
            if len(times) > limit:
                self._stats["rate_limit_disconnects"] += 1
                await self._connections.close(conn, code=1008, message=b"Too many requests")
                return
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                conn.last_pong = now
            elif msg.type == WSMsgType.TEXT:
                self._control(conn, msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
                return

    def _reply(self, conn: WsConn, obj: dict[str, Any]) -> None:
        self._connections.send_json(conn, obj)

    def _error(self, conn: WsConn, code: int, msg: str, rid: Any) -> None:
        self._reply(conn, {"error": {"code": code, "msg": msg}, "id": rid})

    def _control(self, conn: WsConn, text: str) -> None:
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(conn, 3, "Invalid JSON: expected value at line 1 column 1", None)
            return
        if not isinstance(req, dict):
            self._error(conn, 2, "Invalid request: request must be an object", None)
            return
        rid = req.get("id")
        if not valid_request_id(rid):
            # Binance's documented text for a refused id (still "unsigned", from before 2023-12-04).
            self._error(conn, 2, "Invalid request: request ID must be an unsigned integer", None)
            return
        method = req.get("method")
        if not isinstance(method, str):
            self._error(conn, 2, "Invalid request: missing field `method`", rid)
            return
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list):
                self._error(conn, 2, "Invalid request: params must be an array", rid)
                return
            # On /private a parameter may be a live listenKey: that account's user data.
            keys: dict[str, str] = {}
            if conn.route == "private":
                for p in params:
                    account = self._listen_keys.account_of(p) if isinstance(p, str) else None
                    if account is not None:
                        keys[p] = account
            valid, err = validate_streams([p for p in params if p not in keys], conn.route, self._market)
            if err is not None:
                self._error(conn, 2, err, rid)
                return
            if method == "SUBSCRIBE":
                if self._faults.take("reject_subscribe"):
                    self._error(conn, 2, "Invalid request: subscription rejected", rid)
                    return
                if len(conn.subs | set(params)) + len(conn.listen_keys) > self._max_streams:
                    self._error(conn, 2, "Invalid request: too many streams", rid)
                    return
                for name, spec in valid:
                    self._subs.add(conn, name, spec)
                for key, account in keys.items():
                    if key not in conn.listen_keys:
                        self._user_events.listen(conn, account, key, None)
            else:
                for name, _ in valid:
                    self._subs.remove(conn, name)
                for key in keys:
                    self._user_events.stop_listening(conn, key)
            self._reply(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(conn, {"result": sorted(conn.subs | set(conn.listen_keys)), "id": rid})
        elif method == "SET_PROPERTY":
            if (
                isinstance(params, list)
                and len(params) == 2
                and params[0] == "combined"
                and isinstance(params[1], bool)
            ):
                conn.combined = params[1]
                self._reply(conn, {"result": None, "id": rid})
            else:
                self._error(conn, 1, "Invalid value type: expected Boolean", rid)
        elif method == "GET_PROPERTY":
            if params == ["combined"]:
                self._reply(conn, {"result": conn.combined, "id": rid})
            else:
                self._error(conn, 0, "Unknown property", rid)
        else:
            self._error(
                conn,
                2,
                f"Invalid request: unknown variant `{method}`, expected one "
                "of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, "
                "`GET_PROPERTY`",
                rid,
            )


_INT64 = (-(2**63), 2**63 - 1)
_STRING_ID = re.compile(r"[A-Za-z0-9-]{0,36}")


def valid_request_id(rid: Any) -> bool:
    """Whether ``rid`` is an id Binance's WebSocket Streams accept (web-socket-streams.md "Live
    Subscribing/Unsubscribing", since 2023-12-04 "the same values as used for `id` in the
    WebSocket API"): a 64-bit signed integer, an alphanumeric string of at most 36 characters,
    or null. Strings may also hold ``-``: the uuid4 ids Binance's own SDKs send (with dashes)
    work against Binance, and the WebSocket API's document says "You can use UUIDs"."""
    if rid is None:
        return True
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return _INT64[0] <= rid <= _INT64[1]
    return isinstance(rid, str) and _STRING_ID.fullmatch(rid) is not None

"""The simulator's WebSocket API: spot ``/ws-api/v3`` and USD-M ``/ws-fapi/v1``.

Theory of operation
-------------------
One aiohttp websocket per client session. Each text frame is one request
``{"id": .., "method": .., "params": {..}}``; each answer is one frame
``{"id": .., "status": 200|4xx|5xx, "result"|"error": .., "rateLimits": [..]}`` (Binance's
"Response format"). Requests are handled in arrival order on the connection's reader task;
answers go through the same bounded send queue and writer task as the market streams, so the
``drop``/``expire``/``stall`` faults and the 24-hour lifetime apply to these sessions too.

Authentication (Binance "SIGNED request security" for the WebSocket API): a SIGNED request
carries ``apiKey``, ``timestamp`` (``recvWindow`` optional) and ``signature`` over every other
parameter sorted by name (``epochbot.sim.auth.verify_signature`` checks HMAC, RSA and Ed25519),
the raw ``k=v`` pairs as Binance's document says or percent-encoded as Binance's SDKs sign them.
``session.logon`` is accepted for Ed25519 keys only; afterwards ``apiKey``/``signature`` may be
omitted. Spot account events: ``userDataStream.subscribe`` (needs a logged-on session) or
``userDataStream.subscribe.signature`` (any key type); events arrive as
``{"subscriptionId": N, "event": {..}}``, one active subscription per account per session.

Rate limits: request weight shares the REST per-minute counter (Binance counts REST and
WebSocket API weight per IP together); order placement and cancellation cost no weight when
they succeed (spot, since 2026-04-02; USD-M ``order.place`` has weight 0), failures cost 1.
ORDERS counts per 10 s and per day (spot) or minute (USD-M), with REST (``order_limits.py``).
Every answer reports the counters in ``rateLimits`` unless the request (or the connection URL)
says ``returnRateLimits=false``. Read, account and listenKey requests are answered by
``wsapi_queries.py``; spot connections with ``timeUnit=MICROSECOND`` get microsecond times.

Faults: ``unknown_execution`` on ``order.place`` (status 503, a dropped connection, or no answer;
the order is placed or not by the seeded coin flip) and ``symbol_status`` (new orders refused).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import WSMsgType, web

from epochbot.sim import auth
from epochbot.sim.conn import Connections, WsConn
from epochbot.sim.exchange_info import ExchangeInfo
from epochbot.sim.faults import FaultBoard
from epochbot.sim.market import SymbolMarket
from epochbot.sim.matching import PaperVenue
from epochbot.sim.order_entry import OrderEntry
from epochbot.sim.order_limits import OrderCounter
from epochbot.sim.rest import UNKNOWN_ERROR_MSG
from epochbot.sim.time_unit import answer_in_micros, event_in_micros, wants_micros
from epochbot.sim.user_data import UserEvents
from epochbot.sim.weights import WeightLimiter
from epochbot.sim.wsapi_queries import WsApiQueries

__all__ = ["WsApiServer"]

SPOT_PATH = "/ws-api/v3"
USDM_PATH = "/ws-fapi/v1"
MAX_SUBSCRIPTIONS = 1000  # active at once per session
MAX_SUBSCRIPTION_ID = 65535  # over a session's lifetime

# method -> (spot weight, usdm weight); None = not offered on that market
_WEIGHTS: dict[str, tuple[int | None, int | None]] = {
    "ping": (1, 1),
    "time": (1, 1),
    "exchangeInfo": (20, 1),
    "session.logon": (2, 2),
    "session.status": (2, 2),
    "session.logout": (2, 2),
    "userDataStream.subscribe": (2, None),
    "userDataStream.subscribe.signature": (2, None),
    "userDataStream.unsubscribe": (2, None),
    "session.subscriptions": (2, None),
    "order.place": (1, 0),
    "order.cancel": (1, 1),
    "order.status": (4, 1),
    "openOrders.status": (6, 1),
    # read and listenKey requests (wsapi_queries.py); depth and tickers weigh by their parameters
    "depth": (5, 2),
    "ticker.price": (2, 1),
    "ticker.book": (2, 2),
    "account.status": (20, 5),
    "allOrders": (20, None),
    "myTrades": (20, None),
    "account.balance": (None, 5),
    "account.position": (None, 5),
    "v2/account.status": (None, 5),
    "v2/account.balance": (None, 5),
    "v2/account.position": (None, 5),
    # USD-M only: on spot they were removed on 2026-02-20 and are refused like an unknown method
    "userDataStream.start": (None, 1),
    "userDataStream.ping": (None, 1),
    "userDataStream.stop": (None, 1),
    # USD-M Algo Service (USD-M WebSocket API "Trade" pages; SDK 18.1)
    "algoOrder.place": (None, 0),
    "algoOrder.cancel": (None, 1),
}
_SIGNED = {
    "algoOrder.place",
    "algoOrder.cancel",
    "account.position",
    "v2/account.position",
    "order.place",
    "order.cancel",
    "order.status",
    "openOrders.status",
    "userDataStream.subscribe.signature",
    "session.logon",
    "account.status",
    "allOrders",
    "myTrades",
    "account.balance",
    "v2/account.status",
    "v2/account.balance",
}
_ORDER_METHODS = {"order.place"}


class _Session:
    """Per-connection WebSocket API state."""

    __slots__ = (
        "conn",
        "logon",
        "subs",
        "logon_subs",
        "next_sub",
        "return_rate_limits",
        "connected_ms",
        "authorized_ms",
    )

    def __init__(self, conn: WsConn, return_rate_limits: bool) -> None:
        self.conn = conn
        self.logon: auth.Credentials | None = None
        self.subs: dict[int, auth.Credentials] = {}
        self.logon_subs: set[int] = set()  # made by userDataStream.subscribe: end with session.logout
        self.next_sub = 0
        self.return_rate_limits = return_rate_limits
        self.connected_ms = int(time.time() * 1000)
        self.authorized_ms: int | None = None


class WsApiServer:
    """Serves the WebSocket API of one market (see module docstring)."""

    def __init__(
        self,
        *,
        market: str,
        weight_limit: int,
        accounts: dict[str, auth.Credentials],
        markets: dict[str, SymbolMarket],
        venue: PaperVenue,
        weights: WeightLimiter,
        connections: Connections,
        orders: OrderEntry,
        exchange_info: ExchangeInfo,
        user_events: UserEvents,
        faults: FaultBoard,
        rng: random.Random,
        order_counter: OrderCounter,
        queries: WsApiQueries,
    ) -> None:
        self.spot = market == "spot"
        self.path = SPOT_PATH if self.spot else USDM_PATH
        self._weight_limit = weight_limit
        self._accounts = accounts
        self._markets = markets
        self._venue = venue
        self._weights = weights
        self._connections = connections
        self._orders = orders
        self._exchange_info = exchange_info
        self._user_events = user_events
        self._faults = faults
        self._rng = rng
        self._queries = queries
        self.sessions: dict[int, _Session] = {}
        self._order_counter = order_counter  # the ORDERS windows, shared with REST
        self.stats = {"requests": 0, "orders_placed": 0, "unknown_execution": 0}
        self._held: set[asyncio.Task[None]] = set()  # requests served on their own (order_delay)
        user_events.add_sink(self.deliver)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(self.path, self.handler)

    # ------------------------------------------------------------------ connection
    async def handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20, compress=False)
        await ws.prepare(request)
        conn = self._connections.open(ws, request, "ws-api", False)
        session = _Session(conn, request.query.get("returnRateLimits", "true") != "false")
        conn.micros = self.spot and wants_micros(request.query.get("timeUnit"))
        self.sessions[conn.id] = session
        loop = asyncio.get_running_loop()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    conn.last_pong = time.monotonic()
                elif msg.type == WSMsgType.TEXT:
                    if self._faults.active("order_delay") is not None:  # held orders must not hold the rest
                        task = loop.create_task(self._handle(session, msg.data))
                        self._held.add(task)
                        task.add_done_callback(self._held.discard)
                    else:
                        await self._handle(session, msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.ERROR):
                    break
                if conn.closed:
                    break
        finally:
            self.sessions.pop(conn.id, None)
            await self._connections.finish(conn)
        return ws

    def _send(self, session: _Session, obj: dict[str, Any]) -> None:
        if session.conn.closed:
            return
        if session.conn.micros:  # spot `timeUnit=MICROSECOND`
            if "result" in obj:
                obj = {**obj, "result": answer_in_micros(obj["result"])}
            elif "event" in obj:
                obj = {**obj, "event": event_in_micros(obj["event"])}
        self._connections.send_json(session.conn, obj)

    # ------------------------------------------------------------------ user data
    def deliver(self, account_id: str, event: dict[str, Any]) -> None:
        """Push one account event to every session subscribed to that account."""
        for session in self.sessions.values():
            for sub_id, creds in session.subs.items():
                if creds.account_id == account_id:
                    self._send(session, {"subscriptionId": sub_id, "event": event})

    # ------------------------------------------------------------------ rate limits
    def _rate_limits(self) -> list[dict[str, Any]]:
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self._weight_limit,
                "count": self._weights.current(),
            },
            *self._order_counter.rate_limits(),
        ]

    def _charge(self, weight: int) -> None:
        # The same per-IP request-weight window as REST (core/sim/weights.py): 429, then 418.
        verdict = self._weights.check(weight)
        if verdict.status == 418:
            raise auth.SimApiError(
                -1003,
                "Way too much request weight used; IP banned. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                418,
            )
        if verdict.status == 429:
            raise auth.SimApiError(
                -1003,
                f"Too many requests; current limit of IP(127.0.0.1) is {self._weight_limit} "
                "requests per minute. Please use WebSocket Streams for live updates to avoid polling the API.",
                429,
            )

    def _count_order(self) -> None:
        self._order_counter.count()

    # ------------------------------------------------------------------ requests
    async def _handle(self, session: _Session, text: str) -> None:
        self.stats["requests"] += 1
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._send(
                session,
                {"id": None, "status": 400, "error": {"code": -1100, "msg": "Malformed request: not valid JSON."}},
            )
            return
        if not isinstance(req, dict):
            self._send(
                session,
                {"id": None, "status": 400, "error": {"code": -1100, "msg": "Malformed request: not a JSON object."}},
            )
            return
        rid = req.get("id")
        if not (
            rid is None
            or (isinstance(rid, int) and not isinstance(rid, bool))
            or (isinstance(rid, str) and len(rid) <= 36)
        ):
            self._send(session, {"id": None, "status": 400, "error": {"code": -1100, "msg": "Invalid request id."}})
            return
        method = req.get("method")
        params = req.get("params", {})
        if params is None:
            params = {}
        if not isinstance(method, str) or not isinstance(params, dict):
            self._send(
                session,
                {
                    "id": rid,
                    "status": 400,
                    "error": {"code": -1100, "msg": "Malformed request: method must be a string, params an object."},
                },
            )
            return
        return_limits = session.return_rate_limits
        if "returnRateLimits" in params:
            return_limits = params.get("returnRateLimits") not in (False, "false")
        weight = _WEIGHTS.get(method, (None, None))[0 if self.spot else 1]
        try:
            if weight is None:
                raise auth.SimApiError(-1020, "This operation is not supported.")
            if method == "openOrders.status" and "symbol" not in params:
                weight = 80 if self.spot else 40
            weight = self._queries.weight(method, params, weight)
            self._charge(weight)
            result = await self._dispatch(session, method, params, rid)
            if result is _NO_ANSWER:
                return
            if method in ("order.place", "order.cancel") and weight:
                self._weights.refund(weight)  # free when it succeeds
            answer: dict[str, Any] = {"id": rid, "status": 200, "result": result}
        except auth.SimApiError as e:
            status = e.http_status if e.http_status >= 500 or e.http_status in (401, 403, 418, 429) else 400
            answer = {"id": rid, "status": status, "error": e.to_json()}
        if return_limits:
            answer["rateLimits"] = self._rate_limits()
        self._send(session, answer)

    def _authenticate(
        self, session: _Session, method: str, params: dict[str, Any]
    ) -> tuple[auth.Credentials, dict[str, str]]:
        """Check a SIGNED request; returns the caller and its parameters as Binance's strings."""
        signature = params.get("signature")
        if session.logon is not None and "apiKey" not in params and signature is None and method != "session.logon":
            creds = session.logon
        else:
            creds = auth.verify_api_key(
                params.get("apiKey") if isinstance(params.get("apiKey"), str) else None, self._accounts
            )
            if not isinstance(signature, str) or not signature:
                raise auth.SimApiError(
                    -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
                )
            if not _signature_matches(creds, params, signature):
                raise auth.SimApiError(-1022, "Signature for this request is not valid.")
        timestamp = params.get("timestamp")
        if timestamp is None or isinstance(timestamp, bool) or not str(timestamp).isdigit():
            raise auth.SimApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        recv = params.get("recvWindow", auth.RECV_WINDOW_DEFAULT_MS)
        try:
            recv_ms = float(recv)
        except (TypeError, ValueError):
            raise auth.SimApiError(-1100, "Illegal characters found in parameter 'recvWindow'.") from None
        if recv_ms > auth.RECV_WINDOW_MAX_MS:
            raise auth.SimApiError(-1131, "recvWindow must be less than 60000")
        now = int(time.time() * 1000)
        ts = int(str(timestamp))
        if ts < now - recv_ms or ts > now + auth.FUTURE_TOLERANCE_MS:
            raise auth.SimApiError(-1021, "Timestamp for this request is outside of the recvWindow.")
        plain = {k: _text(v) for k, v in params.items() if k not in ("apiKey", "signature", "returnRateLimits")}
        return creds, plain

    async def _dispatch(self, session: _Session, method: str, params: dict[str, Any], rid: Any) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": int(time.time() * 1000)}
        if method == "exchangeInfo":
            return self._exchange_info.document(params)
        if method == "session.status":
            return self._session_status(session)
        if method == "session.logout":
            session.logon = None
            session.authorized_ms = None
            for logon_sub in sorted(session.logon_subs):
                self._terminate(session, logon_sub)
            return self._session_status(session)
        if method == "session.subscriptions":
            return [{"subscriptionId": sid} for sid in sorted(session.subs)]
        if method == "userDataStream.unsubscribe":
            sid = params.get("subscriptionId")
            if sid is None:
                for active in sorted(session.subs):
                    self._terminate(session, active)
                return {}
            # INT in the document; Binance's SDK sends every integer as a string ("0"), as the
            # simulator takes other integer parameters (orderId).
            if isinstance(sid, str) and sid.isdigit():
                sid = int(sid)
            if not isinstance(sid, int) or isinstance(sid, bool) or sid not in session.subs:
                raise auth.SimApiError(-2036, "User Data Stream subscription not active.")
            self._terminate(session, sid)
            return {}
        if method == "userDataStream.subscribe":
            if session.logon is None:
                raise auth.SimApiError(-1002, "You are not authorized to execute this request.", 401)
            result = self._subscribe(session, session.logon)
            session.logon_subs.add(result["subscriptionId"])
            return result
        if method in self._queries.unsigned:
            return await self._queries.answer_unsigned(method, params, session.logon)
        creds, plain = self._authenticate(session, method, params)
        if method in self._queries.signed:
            return self._queries.answer_signed(method, creds, plain)
        if method == "session.logon":
            if creds.key_type != "ed25519":
                raise auth.SimApiError(
                    -4056 if creds.key_type == "hmac" else -4057,
                    f"{'HMAC_SHA256' if creds.key_type == 'hmac' else 'RSA'} API key is not supported.",
                )
            session.logon = creds
            session.authorized_ms = int(time.time() * 1000)
            return self._session_status(session)
        if method == "userDataStream.subscribe.signature":
            return self._subscribe(session, creds)
        venue = self._venue
        now_ms = int(time.time() * 1000)
        if method == "openOrders.status":
            sym = plain.get("symbol")
            return venue.open_orders(creds.account_id, sym.upper() if sym else None)
        if method in ("account.position", "v2/account.position"):
            sym = plain.get("symbol")
            marks = {s: m.mark_price() for s, m in self._markets.items()}
            version = 3 if method.startswith("v2/") else 2
            return venue.position_risk(creds.account_id, sym.upper() if sym else None, marks, version=version)
        if method == "algoOrder.cancel":
            body = venue.cancel_algo(creds.account_id, plain, now_ms)
            self._user_events.pump()
            return body
        sym = plain.get("symbol", "").upper()
        if sym not in self._markets:
            raise auth.SimApiError(-1121, "Invalid symbol.")
        if method == "order.status":
            return venue.query_order(creds.account_id, plain)
        if method == "order.cancel":
            body = venue.cancel_order(creds.account_id, plain, now_ms)
            self._user_events.pump()
            return body
        # order.place, algoOrder.place
        algo = method == "algoOrder.place"
        orders = self._orders
        orders.admit(sym, plain.get("clientAlgoId" if algo else "newClientOrderId"))
        self._count_order()
        if await orders.hold(sym):
            now_ms = int(time.time() * 1000)
        fault = orders.gamble(creds.account_id, plain, sym, now_ms, algo=algo)
        if fault is not None:
            self.stats["unknown_execution"] += 1
            how = fault.params.get("how", "503")
            if how == "drop":
                await self._connections.close(session.conn, abort=True)
                return _NO_ANSWER
            if how == "timeout":
                return _NO_ANSWER
            raise auth.SimApiError(-1000, UNKNOWN_ERROR_MSG, 503)
        if algo:
            return orders.place_algo(creds.account_id, plain, sym, now_ms)
        body = orders.place(creds.account_id, plain, sym, now_ms)
        self.stats["orders_placed"] += 1
        return body

    def _subscribe(self, session: _Session, creds: auth.Credentials) -> dict[str, int]:
        if any(c.account_id == creds.account_id for c in session.subs.values()):
            raise auth.SimApiError(-2035, "User Data Stream subscription already active.")
        if session.next_sub > MAX_SUBSCRIPTION_ID:
            raise auth.SimApiError(-2042, "Maximum subscription ID reached for this connection.")
        if len(session.subs) >= MAX_SUBSCRIPTIONS:  # the code for this one is undocumented: sim choice
            raise auth.SimApiError(
                -1191,
                f"Too many subscriptions. Connection may create up to '{MAX_SUBSCRIPTIONS}' subscriptions at a time.",
            )
        sid = session.next_sub
        session.next_sub += 1
        session.subs[sid] = creds
        return {"subscriptionId": sid}

    def _terminate(self, session: _Session, sid: int) -> None:
        """End a subscription; its last event is ``eventStreamTerminated``."""
        session.subs.pop(sid, None)
        session.logon_subs.discard(sid)
        self._send(
            session, {"subscriptionId": sid, "event": {"e": "eventStreamTerminated", "E": int(time.time() * 1000)}}
        )

    def _session_status(self, session: _Session) -> dict[str, Any]:
        return {
            "apiKey": session.logon.api_key if session.logon else None,
            "authorizedSince": session.authorized_ms,
            "connectedSince": session.connected_ms,
            "returnRateLimits": session.return_rate_limits,
            "serverTime": int(time.time() * 1000),
            "userDataStream": bool(session.subs) if self.spot else None,
        }


_NO_ANSWER = object()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _payload(params: dict[str, Any]) -> str:
    return "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")


def _signature_matches(creds: auth.Credentials, params: dict[str, Any], signature: str) -> bool:
    """Whether ``signature`` signs the request, over either payload Binance accepts.

    web-socket-api.md "SIGNED request example" (2025-12-17): the sorted ``k=v`` pairs of the raw
    values, "no percent encoding here!". Binance's own SDKs sign ``urlencode(sorted(params))``
    instead (binance-common ``utils.py`` ``websocket_api_signature``), and work against
    Binance: both are accepted. They differ only when a value holds a character ``urlencode``
    escapes (``:`` ``/`` ``,`` ``"`` ``[`` space, non-ASCII)."""
    raw = _payload(params)
    if auth.verify_signature(creds, raw, signature):
        return True
    encoded = urlencode([(k, _text(v)) for k, v in sorted(params.items()) if k != "signature"])
    return encoded != raw and auth.verify_signature(creds, encoded, signature)

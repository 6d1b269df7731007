"""Loopback HTTP control and metrics endpoint (aiohttp), run inside the runtime's event loop.

Routes::

    GET  /healthz   200 while the process is alive (liveness)
    GET  /readyz    200 when every book is synced, confidence >= modes.normal_at, no fatal
                    error and the published snapshot is fresh; else 503 with the reasons
    GET  /status    epochbot.views.report.build_report(runtime.latest) as JSON (503 before the first one)
    GET  /metrics   Prometheus text format, computed from runtime.latest at scrape time
    POST /resync    {"symbol": "BTCUSDT"} one book | {} or no body: every book |
                    {"session": true}: replace the transport session (new epoch)
    POST /mode      {"mode": "reduce-only"}: operator mode floor ("normal" removes it)
    POST /pause     {"paused": true|false}: pause/resume the strategy
    POST /cancel-all {"confirm": true, "symbol"?: "BTCUSDT", "pause"?: true}: cancel every
                    working order (of one symbol); pauses the strategy unless "pause": false
    POST /flatten   {"confirm": true, "symbol": "BTCUSDT" | "all": true, "pause"?: true}: close
                    the position(s) with a reduce-only market order (after cancelling the
                    symbol's working orders); pauses the strategy unless "pause": false

Security model. The server binds 127.0.0.1 only. Reads are open to local processes; mutating
calls need ``Authorization: Bearer <control.token>``: with no token configured they are refused
(403), a missing or wrong token is 401 and is logged (peer, path, what was wrong; never the
token presented). Requests whose ``Host`` header is not a loopback name
are refused (403) so that a web page in a local browser cannot reach the endpoint through DNS
rebinding. Handlers never touch engine state: reads use the immutable snapshot, writes are
control events handed to ``runtime.submit`` (the strategy loop applies them).
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from epochbot.model import events as ev
from epochbot.model.modes import Mode, parse_mode
from epochbot.views.report import build_report

__all__ = ["ControlServer", "SnapshotCollector", "readiness"]

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
STALE_SNAPSHOT_S = 5.0  # a snapshot older than this means the strategy loop is not publishing


def _json(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS, default=str) + b"\n",
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _mutating(handler):
    """A route that changes something: the bearer token is checked first, then the body must be a
    JSON object (or empty); the handler gets that object."""

    @functools.wraps(handler)
    async def route(self, request: web.Request) -> web.Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        return await handler(self, body)

    return route


def _flatten_target(body: dict) -> web.Response | None:
    """Flatten names one symbol or ``"all": true``, never both, never neither."""
    every = body.get("all", False)
    if not isinstance(every, bool):
        return _json({"error": "'all' must be a boolean"}, 400)
    if every == ("symbol" in body and body["symbol"] is not None):
        return _json({"error": 'give either "symbol": SYMBOL or "all": true'}, 400)
    return None


def readiness(snapshot, normal_at: float, now_ns: int | None = None) -> list[str]:
    """Why the process is not ready to trade (empty list: ready)."""
    if snapshot is None:
        return ["no state published yet (starting)"]
    now_ns = time.time_ns() if now_ns is None else now_ns
    reasons: list[str] = []
    if snapshot.fatal:
        reasons.append(f"fatal: {snapshot.fatal}")
    age_s = (now_ns - snapshot.at_ns) / 1e9
    if age_s > STALE_SNAPSHOT_S:
        reasons.append(f"published state is {age_s:.1f} s old (strategy loop stalled?)")
    for book in snapshot.books:
        if book.state != "synced":
            detail = f" ({book.problem})" if book.problem else ""
            reasons.append(f"{book.symbol}: book {book.state}{detail}")
    if snapshot.confidence < normal_at:
        why = ", ".join(r.describe() for r in snapshot.reasons[:3])
        reasons.append(f"confidence {snapshot.confidence:.2f} < {normal_at:.2f}" + (f": {why}" if why else ""))
    return reasons


class SnapshotCollector:
    """Prometheus collector that reads ``get_snapshot()`` at scrape time (no shared state)."""

    def __init__(self, get_snapshot: Callable[[], Any], clock: Callable[[], int] = time.time_ns) -> None:
        self._get = get_snapshot
        self._clock = clock

    def describe(self):  # no static description: metrics depend on the configured symbols
        return []

    def collect(self):
        snap = self._get()
        available = GaugeMetricFamily("epochbot_snapshot_available", "1 once the strategy loop has published state")
        available.add_metric([], 0.0 if snap is None else 1.0)
        yield available
        if snap is None:
            return
        yield _gauge(
            "epochbot_snapshot_age_seconds", "Age of the latest published state", (self._clock() - snap.at_ns) / 1e9
        )
        yield _gauge("epochbot_epoch", "Current transport session epoch", snap.epoch)
        yield _gauge(
            "epochbot_session_open", "1 while the transport session is connected", 1.0 if snap.session_open else 0.0
        )
        yield _gauge("epochbot_confidence", "Confidence in the local picture of the market (0..1)", snap.confidence)
        yield _gauge(
            "epochbot_confidence_min", "Lowest confidence since the first resynchronisation", snap.confidence_min
        )
        yield _gauge("epochbot_fatal", "1 after fatal state corruption (trading stopped)", 1.0 if snap.fatal else 0.0)
        yield _gauge(
            "epochbot_paused", "1 while the strategy is paused by the operator", 1.0 if snap.mode.paused else 0.0
        )

        penalty = GaugeMetricFamily(
            "epochbot_confidence_penalty", "How much each factor takes off confidence", labels=["factor"]
        )
        for reason in snap.reasons:
            penalty.add_metric([reason.factor], reason.penalty)
        yield penalty

        mode = GaugeMetricFamily("epochbot_mode", "Effective trading mode (1 for the current one)", labels=["mode"])
        floor = GaugeMetricFamily(
            "epochbot_operator_mode_floor", "Operator mode floor (1 for the current one)", labels=["mode"]
        )
        for m in Mode:
            mode.add_metric([m.value], 1.0 if snap.mode.mode == m.value else 0.0)
            floor.add_metric([m.value], 1.0 if snap.mode.operator_floor == m.value else 0.0)
        yield mode
        yield floor

        synced = GaugeMetricFamily("epochbot_book_synced", "1 when the symbol's book is synced", labels=["symbol"])
        last_id = GaugeMetricFamily("epochbot_book_last_update_id", "Last applied update id", labels=["symbol"])
        silence = GaugeMetricFamily(
            "epochbot_book_silence_seconds", "Time since the last market data for the symbol", labels=["symbol"]
        )
        gaps = CounterMetricFamily(
            "epochbot_book_gaps", "Continuity breaks seen by the symbol's book", labels=["symbol"]
        )
        resyncs = CounterMetricFamily(
            "epochbot_book_resyncs", "Book resyncs of the symbol (recent history)", labels=["symbol"]
        )
        for book in snap.books:
            synced.add_metric([book.symbol], 1.0 if book.state == "synced" else 0.0)
            last_id.add_metric([book.symbol], float(book.last_update_id))
            silence.add_metric([book.symbol], book.silence_ms / 1000.0)
            gaps.add_metric([book.symbol], float(book.gaps))
            resyncs.add_metric([book.symbol], float(book.resyncs))
        yield synced
        yield last_id
        yield silence
        yield gaps
        yield resyncs

        lat = snap.latency
        yield _gauge(
            "epochbot_market_silence_seconds", "Time since the last useful market data", lat.silence_ms / 1000.0
        )
        for name, stats, help_ in (
            ("epochbot_queue_delay_seconds", lat.queue, "Queue delay (process - recv) over the rolling window"),
            (
                "epochbot_transport_latency_seconds",
                lat.transport,
                "Transport latency (recv - exchange, offset-corrected) over the rolling window",
            ),
        ):
            family = GaugeMetricFamily(name, help_, labels=["quantile"])
            family.add_metric(["0.5"], stats.p50 / 1000.0)
            family.add_metric(["0.99"], stats.p99 / 1000.0)
            family.add_metric(["1"], stats.max / 1000.0)
            yield family

        ttcr = dict(snap.ttcr_ms)
        yield CounterMetricFamily(
            "epochbot_time_to_correct_resync",
            "Completed resyncs (time-to-correct-resync samples)",
            value=float(ttcr.get("count", 0)),
        )
        ttcr_q = GaugeMetricFamily(
            "epochbot_time_to_correct_resync_seconds", "Time-to-correct-resync percentiles", labels=["quantile"]
        )
        ttcr_q.add_metric(["0.5"], float(ttcr.get("p50", 0.0)) / 1000.0)
        ttcr_q.add_metric(["0.99"], float(ttcr.get("p99", 0.0)) / 1000.0)
        ttcr_q.add_metric(["1"], float(ttcr.get("max", 0.0)) / 1000.0)
        yield ttcr_q
        last = next((e for e in reversed(snap.all_epochs or snap.epochs) if e.resync_ms is not None), None)
        yield _gauge(
            "epochbot_last_session_resync_seconds",
            "Resync time of the latest resynchronised epoch",
            (last.resync_ms or 0.0) / 1000.0 if last else 0.0,
        )

        for key, value in sorted(snap.counters.items()):
            yield CounterMetricFamily(f"epochbot_{key}", f"Engine counter {key}", value=float(value))
        yield CounterMetricFamily(
            "epochbot_book_resyncs_all",
            "Book resyncs, all symbols (recent history)",
            value=float(sum(b.resyncs for b in snap.books)),
        )
        yield from _trading_metrics(snap)


def _trading_metrics(snap):
    """PnL, positions, orders by outcome, fills and breakers (floats: Prometheus has no decimals;
    /status carries the exact decimal strings)."""
    t = snap.trading
    yield _gauge("epochbot_trading_enabled", "1 when a trader (strategy, orders, PnL) runs", 0.0 if t is None else 1.0)
    if t is None:
        return
    quote = t.pnl.quote_asset or "quote"
    pnl = GaugeMetricFamily(
        "epochbot_pnl", "PnL in the quote asset by kind (session/daily: realised net of fees)", labels=["kind", "asset"]
    )
    for kind in ("session", "daily", "realized", "unrealized", "fees", "funding", "net"):
        pnl.add_metric([kind, quote], float(getattr(t.pnl, kind)))
    yield pnl
    position = GaugeMetricFamily("epochbot_position", "Signed position in base units", labels=["symbol"])
    upnl = GaugeMetricFamily(
        "epochbot_position_unrealized_pnl", "Unrealised PnL of the position (quote asset)", labels=["symbol"]
    )
    for p in snap.positions:
        position.add_metric([p.symbol], float(p.qty))
        upnl.add_metric([p.symbol], float(p.unrealized_pnl))
    yield position
    yield upnl
    orders = CounterMetricFamily(
        "epochbot_orders",
        "Orders of this session by outcome (placed, FILLED, CANCELED, REJECTED, EXPIRED)",
        labels=["outcome"],
    )
    for outcome, count in sorted(t.orders_by_outcome.items()):
        orders.add_metric([outcome], float(count))
    yield orders
    yield _gauge("epochbot_orders_working", "Orders that may still execute", len(t.working_orders))
    yield CounterMetricFamily("epochbot_fills", "Fills of this session", value=float(t.fill_count))
    yield CounterMetricFamily(
        "epochbot_order_refusals", "Intents refused by the pre-trade gates", value=float(t.refusals)
    )
    tripped = GaugeMetricFamily("epochbot_breaker_tripped", "1 while the circuit breaker is tripped", labels=["name"])
    until = GaugeMetricFamily(
        "epochbot_breaker_until_timestamp_seconds",
        "When a tripped breaker reopens (0: not tripped or latched)",
        labels=["name"],
    )
    for b in t.breakers:
        tripped.add_metric([b.name], 1.0 if b.tripped else 0.0)
        until.add_metric([b.name], b.until_ns / 1e9)
    yield tripped
    yield until


def _gauge(name: str, help_: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_)
    family.add_metric([], float(value))
    return family


class ControlServer:
    """The control endpoint bound to 127.0.0.1.

    Args:
        runtime: anything with ``latest`` and a thread-safe ``submit(event)``.
        settings: `epochbot.app.config.Settings` (control port, token, mode floors).
        port: overrides ``settings.control.port`` (0: ephemeral, see ``.port`` after start).
        on_action: called with (action, details) for every accepted mutating call (logging).
    """

    def __init__(
        self,
        runtime,
        settings,
        *,
        port: int | None = None,
        on_action: Callable[[str, dict], None] | None = None,
        on_auth_failure: Callable[[dict], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self._on_auth_failure = on_auth_failure
        self.settings = settings
        self._requested_port = settings.control.port if port is None else port
        self._on_action = on_action
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        from epochbot.app.daemon.fleet import InstanceLabelled, instance_name

        self.registry = CollectorRegistry(auto_describe=False)
        self.instance = instance_name(settings)  # on every sample: one Prometheus scrapes a fleet
        self.registry.register(InstanceLabelled(SnapshotCollector(lambda: self.runtime.latest), self.instance))
        self.registry.register(
            InstanceLabelled(ProcessCollector(registry=None), self.instance)
        )  # a no-op where /proc is missing
        token = settings.control.token
        self._token = token.get_secret_value().encode() if token is not None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._loopback_host], client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/resync", self._resync)
        app.router.add_post("/mode", self._mode)
        app.router.add_post("/pause", self._pause)
        app.router.add_post("/cancel-all", self._cancel_all)
        app.router.add_post("/flatten", self._flatten)
        return app

    async def start(self) -> None:
        """Bind and serve. Raises OSError if the port is taken."""
        self._runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._requested_port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        addresses = self._runner.addresses  # (host, port) of every bound socket
        self.port = addresses[0][1] if addresses else self._requested_port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ middleware / auth

    @web.middleware
    async def _loopback_host(self, request: web.Request, handler):
        host = request.host or ""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name not in _LOOPBACK_HOSTS:
            return _json({"error": f"Host {host!r} refused: the control endpoint answers loopback names only"}, 403)
        return await handler(request)

    def _authorise(self, request: web.Request) -> web.Response | None:
        if self._token is None:
            return _json(
                {
                    "error": "mutating calls are disabled: no control token configured; set EPOCHBOT_CONTROL__TOKEN "
                    "(or [control] token in secrets_file) and restart"
                },
                403,
            )
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self._token):
            if self._on_auth_failure is not None:
                why = (
                    "no Authorization header"
                    if not header
                    else ("not a bearer token" if scheme.lower() != "bearer" else "wrong token")
                )
                self._on_auth_failure(
                    {"peer": request.remote or "?", "method": request.method, "path": request.path, "problem": why}
                )
            return _json(
                {"error": "missing or wrong bearer token"}, 401, headers={"WWW-Authenticate": 'Bearer realm="epochbot"'}
            )
        return None

    async def _body(self, request: web.Request) -> dict | web.Response:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _json({"error": "body must be a JSON object"}, 400)
        if not isinstance(data, dict):
            return _json({"error": "body must be a JSON object"}, 400)
        return data

    def _accepted(self, action: str, details: dict) -> web.Response:
        if self._on_action is not None:
            self._on_action(action, details)
        return _json({"accepted": True, "action": action, **details})

    # ------------------------------------------------------------------ read-only routes

    async def _healthz(self, request: web.Request) -> web.Response:
        return _json({"status": "alive"})

    async def _readyz(self, request: web.Request) -> web.Response:
        reasons = readiness(self.runtime.latest, self.settings.modes.normal_at)
        if reasons:
            return _json({"ready": False, "reasons": reasons}, 503)
        return _json({"ready": True})

    async def _status(self, request: web.Request) -> web.Response:
        snap = self.runtime.latest
        if snap is None:
            return _json({"error": "no state published yet (starting)"}, 503)
        return _json(build_report(snap))

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # ------------------------------------------------------------------ mutating routes

    def _known_symbols(self) -> tuple[str, ...]:
        snap = self.runtime.latest
        return snap.symbols if snap is not None else tuple(self.settings.symbols)

    @_mutating
    async def _resync(self, body: dict) -> web.Response:
        unknown = set(body) - {"symbol", "session"}
        if unknown:
            return _json(
                {"error": f"unknown field(s): {', '.join(sorted(unknown))}; expected 'symbol' or 'session'"}, 400
            )
        session = body.get("session", False)
        symbol = body.get("symbol")
        if not isinstance(session, bool) or (symbol is not None and not isinstance(symbol, str)):
            return _json({"error": "'session' must be a boolean and 'symbol' a string"}, 400)
        if session and symbol:
            return _json({"error": "give either 'symbol' or 'session', not both"}, 400)
        if session:
            self.runtime.submit(ev.OperatorForceResync(replace_session=True))
            return self._accepted("resync", {"session": True})
        if symbol is not None:
            symbol = symbol.strip().upper()
            known = self._known_symbols()
            if symbol not in known:
                return _json({"error": f"unknown symbol {symbol!r}", "symbols": list(known)}, 404)
        self.runtime.submit(ev.OperatorForceResync(symbol=symbol))
        return self._accepted("resync", {"symbol": symbol} if symbol else {"symbol": None, "books": "all"})

    @_mutating
    async def _mode(self, body: dict) -> web.Response:
        modes = [m.value for m in Mode]
        text = body.get("mode")
        if not isinstance(text, str):
            return _json({"error": 'body must be {"mode": MODE}', "modes": modes}, 400)
        try:
            mode = parse_mode(text)
        except ValueError as exc:
            return _json({"error": str(exc), "modes": modes}, 400)
        self.runtime.submit(ev.OperatorSetMode(mode=mode.value, source="control"))
        return self._accepted("mode", {"mode": mode.value})

    @_mutating
    async def _pause(self, body: dict) -> web.Response:
        paused = body.get("paused", True)
        if not isinstance(paused, bool):
            return _json({"error": "'paused' must be a boolean"}, 400)
        self.runtime.submit(ev.OperatorPause(paused=paused))
        return self._accepted("pause", {"paused": paused})

    # ------------------------------------------------------------------ trading actions

    def _confirmed(self, body: dict, allowed: set[str]) -> web.Response | None:
        unknown = set(body) - allowed
        if unknown:
            return _json(
                {"error": f"unknown field(s): {', '.join(sorted(unknown))}; expected {', '.join(sorted(allowed))}"}, 400
            )
        if body.get("confirm") is not True:
            return _json({"error": 'this action needs an explicit body with "confirm": true'}, 400)
        if not isinstance(body.get("pause", True), bool):
            return _json({"error": "'pause' must be a boolean"}, 400)
        return None

    def _symbol(self, body: dict) -> str | None | web.Response:
        symbol = body.get("symbol")
        if symbol is None:
            return None
        if not isinstance(symbol, str):
            return _json({"error": "'symbol' must be a string"}, 400)
        symbol = symbol.strip().upper()
        known = self._known_symbols()
        if symbol not in known:
            return _json({"error": f"unknown symbol {symbol!r}", "symbols": list(known)}, 404)
        return symbol

    def _trading_enabled(self) -> web.Response | None:
        snap = self.runtime.latest
        if snap is not None and getattr(snap, "trading", None) is None:
            return _json({"error": "trading is not configured in this daemon (no strategy)"}, 409)
        return None

    def _trading_action(
        self, body: dict, allowed: set[str], check: Callable[[dict], web.Response | None] | None = None
    ):
        """What every trading action checks, in this order: only ``allowed`` fields and
        ``"confirm": true`` (and a boolean ``pause``), the action's own rules (``check``), a known
        symbol (or none), trading configured. ``(symbol, pause)``, or the refusal to answer."""
        if (bad := self._confirmed(body, allowed)) is not None:
            return bad
        if check is not None and (bad := check(body)) is not None:
            return bad
        symbol = self._symbol(body)
        if isinstance(symbol, web.Response):
            return symbol
        if (off := self._trading_enabled()) is not None:
            return off
        return symbol, body.get("pause", True)

    @_mutating
    async def _cancel_all(self, body: dict) -> web.Response:
        checked = self._trading_action(body, {"confirm", "symbol", "pause"})
        if isinstance(checked, web.Response):
            return checked
        symbol, pause = checked
        snap = self.runtime.latest
        working = [
            o
            for o in (snap.trading.working_orders if snap is not None and snap.trading else ())
            if symbol in (None, o.symbol)
        ]
        self.runtime.submit(ev.OperatorCancelAll(symbol=symbol, pause=pause))
        return self._accepted("cancel-all", {"symbol": symbol, "pause": pause, "working_orders": len(working)})

    @_mutating
    async def _flatten(self, body: dict) -> web.Response:
        checked = self._trading_action(body, {"confirm", "symbol", "all", "pause"}, check=_flatten_target)
        if isinstance(checked, web.Response):
            return checked
        symbol, pause = checked
        every = body.get("all", False)
        snap = self.runtime.latest
        positions = {
            p.symbol: p.qty
            for p in (snap.positions if snap is not None else ())
            if symbol in (None, p.symbol) and p.qty not in ("0", "")
        }
        self.runtime.submit(ev.OperatorFlatten(symbol=symbol, pause=pause))
        return self._accepted("flatten", {"symbol": symbol, "all": every, "pause": pause, "positions": positions})

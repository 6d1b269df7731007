"""``epochbot serve``: the operator console in a browser, as a client of a running daemon.

textual-serve starts one console process per browser tab (``python -m epochbot.app.console.serve --console``);
each console renders from `RemoteSource`, which polls the daemon's loopback control endpoint
(``GET /status``, see app/daemon/control.py) and turns keys into ``POST /resync``, ``/mode`` and
``/pause`` with the bearer token. The token travels in the environment
(``EPOCHBOT_CONTROL__TOKEN``), never on a command line where ``ps`` would show it.

The browser console shares every widget with the terminal one; it only lacks what ``/status``
does not carry (the log, trades, per-level sizes beyond price/qty, latency histories, which are
accumulated here from successive polls).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shlex
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from epochbot.engine.confidence import Reason
from epochbot.engine.telemetry import EMPTY_STATS, LatencyStats
from epochbot.model.events import (
    OperatorCancelAll,
    OperatorFlatten,
    OperatorForceResync,
    OperatorPause,
    OperatorSetMode,
)
from epochbot.views.snapshot import (
    BookResyncView,
    BookSnapshot,
    BreakerView,
    EpochView,
    FillView,
    LatencyView,
    LevelView,
    ModeView,
    OrderView,
    PnLView,
    PositionView,
    RiskView,
    TradingView,
    WorldSnapshot,
)

__all__ = ["RemoteSource", "add_parser", "run", "snapshot_from_status"]

TOKEN_ENV = "EPOCHBOT_CONTROL__TOKEN"  # the same variable the daemon and `epochbot ctl` read
DEFAULT_CONTROL_URL = "http://127.0.0.1:8780"  # epochbot.app.config.ControlSettings.port default
_REASON = re.compile(
    r"^(?P<factor>\w+)=(?P<value>[-\d.e+inf]+) \(warn (?P<warn>[-\d.e+inf]+), critical (?P<critical>[-\d.e+inf]+)\)$"
)


def _ns(iso: str | None) -> int:
    if not iso:
        return 0
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000) * 1_000_000


def _reason(text: str) -> Reason:
    """Rebuild a Reason from ``Reason.describe()`` text; the penalty is estimated (weight 1)."""
    m = _REASON.match(text)
    if not m:
        return Reason(text, 0.0, 0.0, 0.0, 0.0)
    value, warn, critical = float(m["value"]), float(m["warn"]), float(m["critical"])
    severity = 1.0 if critical <= warn else min(1.0, max(0.0, (value - warn) / (critical - warn)))
    return Reason(m["factor"], value, warn, critical, round(severity, 4))


def _levels(rows: list) -> tuple[LevelView, ...]:
    try:
        qtys = [Decimal(q) for _p, q in rows]
    except (InvalidOperation, ValueError):
        return ()
    exponents = (q.as_tuple().exponent for q in qtys)
    exp = max((-e for e in exponents if isinstance(e, int)), default=0)  # NaN/Infinity have none
    scale = Decimal(10) ** max(0, exp)
    out, cum = [], Decimal(0)
    for (price, qty_s), qty in zip(rows, qtys, strict=True):
        cum += qty
        out.append(LevelView(price, qty_s, f"{cum:f}", int(qty * scale), int(cum * scale)))
    return tuple(out)


def _book(symbol: str, info: dict) -> BookSnapshot:
    bids, asks = _levels(info.get("bids") or []), _levels(info.get("asks") or [])
    spread = mid = None
    if bids and asks:
        b, a = Decimal(bids[0].price), Decimal(asks[0].price)
        spread, mid = f"{a - b:f}", f"{(a + b) / 2:f}"
    state = info.get("state", "synced" if info.get("synced") else "invalid")
    return BookSnapshot(
        symbol=symbol,
        state=state,
        last_update_id=int(info.get("last_update_id") or 0),
        bids=bids,
        asks=asks,
        best_bid=bids[0].price if bids else None,
        best_ask=asks[0].price if asks else None,
        spread=spread,
        mid=mid,
        gaps=int(info.get("gaps") or 0),
        resyncs=int(info.get("book_resyncs") or 0),
        problem="" if state == "synced" else "reported by the daemon",
        silence_ms=0.0,
    )


def _stats(d: dict) -> LatencyStats:
    if not d:
        return EMPTY_STATS
    return LatencyStats(
        float(d.get("p50", 0.0)), float(d.get("p50", 0.0)), float(d.get("p99", 0.0)), float(d.get("max", 0.0)), 0
    )


def _trading(data: dict) -> tuple[TradingView | None, tuple[PositionView, ...], tuple[OrderView, ...], RiskView]:
    """The ``trading`` section of /status back into views. Absent or disabled: None, and the
    risk view says so instead of showing an invented ``PnL 0`` / ``breaker ok``."""
    t = data.get("trading") or {}
    if not t.get("enabled"):
        return None, (), (), RiskView()  # with trading None: the pane says "trading off"
    pnl = t.get("pnl") or {}
    quote = str(t.get("quote_asset", ""))
    pnl_view = PnLView(
        quote, *(str(pnl.get(k, "0")) for k in ("session", "daily", "realized", "unrealized", "fees", "funding", "net"))
    )
    breakers = tuple(
        BreakerView(str(b.get("name")), bool(b.get("tripped")), b.get("cause") or "", _ns(b.get("until")))
        for b in t.get("breakers") or []
    )
    working = tuple(
        OrderView(
            o.get("client_order_id", ""),
            o.get("symbol", ""),
            o.get("side", ""),
            o.get("type", ""),
            o.get("price", ""),
            o.get("qty", ""),
            o.get("filled", ""),
            o.get("status", ""),
            _ns(o.get("updated_at")),
        )
        for o in t.get("working_orders") or []
    )
    fills = tuple(
        FillView(
            _ns(f.get("at")),
            f.get("client_order_id", ""),
            f.get("symbol", ""),
            f.get("side", ""),
            f.get("qty", ""),
            f.get("price", ""),
            f.get("fee", ""),
            "" if f.get("fee_asset") == quote else f.get("fee_asset", ""),
            bool(f.get("maker")),
            str(f.get("trade_id", "")),
        )
        for f in t.get("recent_fills") or []
    )
    positions = tuple(
        PositionView(
            p["symbol"],
            p.get("qty", "0"),
            p.get("entry_price", "0"),
            p.get("unrealized_pnl", "0"),
            p.get("realized_pnl", "0"),
        )
        for p in t.get("positions") or []
    )
    trading = TradingView(
        pnl=pnl_view,
        breakers=breakers,
        working_orders=working,
        fill_count=int(t.get("fill_count", 0)),
        recent_fills=fills,
        orders_by_outcome=dict(t.get("orders_by_outcome") or {}),
        refusals=int(t.get("refusals", 0)),
        refusal_reasons=dict(t.get("refusal_reasons") or {}),
    )
    symbol_breakers = {
        b.name: (
            f"tripped until {datetime.fromtimestamp(b.until_ns / 1e9, tz=UTC).strftime('%H:%M:%S')} UTC"
            if b.until_ns
            else "tripped"
        )
        if b.tripped
        else "ok"
        for b in breakers
        if b.name not in ("session-loss", "daily-loss")
    }
    latches = {b.name: str(b.tripped) for b in breakers if b.name in ("session-loss", "daily-loss")}
    risk = RiskView(session_pnl=pnl_view.session, daily_pnl=pnl_view.daily, breakers=symbol_breakers, limits=latches)
    return trading, positions, working, risk


def snapshot_from_status(data: dict, seq: int, at_ns: int, history: dict[str, deque] | None = None) -> WorldSnapshot:
    """A WorldSnapshot rebuilt from ``GET /status`` (epochbot.views.report.build_report's shape)."""
    history = history if history is not None else {k: deque(maxlen=120) for k in ("confidence", "transport", "queue")}
    modes = data.get("modes") or []
    last = modes[-1] if modes else {"mode": data.get("mode", "halted"), "at": None, "cause": "", "source": "daemon"}
    mode_history = tuple((m["mode"], _ns(m.get("at")), m.get("cause", ""), m.get("source", "")) for m in modes[-50:])
    operator = next((m["mode"] for m in reversed(modes) if m.get("source") == "operator"), "normal")
    epochs = tuple(
        EpochView(
            e["epoch"],
            e.get("cause", ""),
            _ns(e.get("opened_at")),
            _ns(e.get("closed_at")),
            e.get("close_cause") or "",
            e.get("resync_ms"),
            e.get("phases_ms") or {},
        )
        for e in data.get("epochs", [])
    )
    transport, queue_ = _stats(data.get("transport_latency_ms") or {}), _stats(data.get("queue_delay_ms") or {})
    confidence = float(data.get("confidence", 0.0))
    history["confidence"].append(confidence)
    history["transport"].append(transport.p50)
    history["queue"].append(queue_.p50)
    trading, positions, working, risk = _trading(data)
    return WorldSnapshot(
        seq=seq,
        at_ns=at_ns,
        venue=str(data.get("venue", "?")),
        epoch=int(data.get("epoch", 0)),
        session_open=True,
        confidence=confidence,
        reasons=tuple(_reason(r) for r in data.get("reasons", [])),
        confidence_history=tuple(history["confidence"]),
        mode=ModeView(
            data.get("mode", last["mode"]),
            last.get("source", ""),
            last.get("cause", ""),
            _ns(last.get("at")),
            operator,
            bool(data.get("paused", False)),
            mode_history,
        ),
        books=tuple(_book(s, info) for s, info in sorted((data.get("symbols") or {}).items())),
        epochs=epochs[-50:],
        book_resyncs=tuple(
            BookResyncView(r["symbol"], r.get("cause", ""), r.get("epoch", 0), _ns(r.get("at")), r.get("resync_ms"))
            for r in data.get("book_resyncs", [])
        ),
        latency=LatencyView(transport, queue_, 0.0, {}, tuple(history["transport"]), tuple(history["queue"]), ()),
        ttcr_ms=data.get("time_to_correct_resync_ms") or {},
        counters=data.get("counters") or {},
        fatal=data.get("fatal"),
        queue_delay_run=data.get("queue_delay_ms") or {},
        transport_latency_run=data.get("transport_latency_ms") or {},
        confidence_min=float(data.get("confidence_min", confidence)),
        all_epochs=epochs,
        orders=working,
        positions=positions,
        risk=risk,
        trading=trading,
    )


class RemoteSource:
    """SnapshotSource over a daemon's control endpoint. One thread (the app's core worker) does
    both the polling and the POSTs, so the UI thread never blocks on the network."""

    def __init__(self, url: str, token: str | None, *, interval_s: float = 0.5, timeout_s: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.error: str | None = None
        self._latest: WorldSnapshot | None = None
        self._outbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._seq = 0
        self._last_body: bytes | None = None
        self._history: dict[str, deque[float]] = {k: deque(maxlen=120) for k in ("confidence", "transport", "queue")}

    def serve(self) -> int:
        next_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                self._poll()
                next_poll = now + self.interval_s
            try:
                path, body = self._outbox.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                continue
            if path is not None:
                self._post(path, body)
        return 0

    def _poll(self) -> None:
        try:
            with urllib.request.urlopen(f"{self.url}/status", timeout=self.timeout_s) as resp:
                raw = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            self.error = f"status: {exc}"
            return
        self.error = None
        if raw == self._last_body:
            return
        self._last_body = raw
        self._seq += 1
        self._latest = snapshot_from_status(json.loads(raw), self._seq, time.time_ns(), self._history)

    def _post(self, path: str, body: dict) -> None:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s):
                self.error = None
        except (urllib.error.URLError, OSError) as exc:
            self.error = f"POST {path}: {exc}"

    def latest(self) -> WorldSnapshot | None:
        return self._latest

    def submit(self, event: Any) -> None:
        self._outbox.put(request_for(event))

    def request_stop(self, reason: str) -> None:
        # Closing a browser console never stops the daemon: only this client stops.
        self._stop.set()
        self._outbox.put((None, None))


def request_for(event: Any) -> tuple[str, dict]:
    """The control endpoint call (path, JSON body) for an operator control event."""
    if isinstance(event, OperatorForceResync):
        if event.replace_session:
            return "/resync", {"session": True}
        return "/resync", ({"symbol": event.symbol} if event.symbol else {})
    if isinstance(event, OperatorSetMode):
        return "/mode", {"mode": event.mode}
    if isinstance(event, OperatorPause):
        return "/pause", {"paused": event.paused}
    if isinstance(event, OperatorCancelAll):  # confirmed in the console's modal
        return "/cancel-all", {
            "confirm": True,
            "pause": event.pause,
            **({"symbol": event.symbol} if event.symbol else {}),
        }
    if isinstance(event, OperatorFlatten):
        return "/flatten", {
            "confirm": True,
            "pause": event.pause,
            **({"symbol": event.symbol} if event.symbol else {"all": True}),
        }
    raise TypeError(f"no control endpoint for {type(event).__name__}")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("serve", help="serve the operator console to a browser (client of a running daemon)")
    _arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8000, help="HTTP port for the browser (default 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--control-port",
        type=int,
        default=None,
        metavar="N",
        help="the daemon's control port on 127.0.0.1 (default 8780, or EPOCHBOT_CONTROL_URL)",
    )
    # Older name, kept working but not advertised: a full URL of the control endpoint.
    parser.add_argument("--control-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--theme", default="epochbot-dark")
    parser.add_argument("--console", action="store_true", help=argparse.SUPPRESS)  # one console (run by textual-serve)


def control_url(args: argparse.Namespace) -> str:
    if args.control_port is not None and args.control_url:
        raise SystemExit("serve: give --control-port or --control-url, not both")
    if args.control_port is not None:
        return f"http://127.0.0.1:{args.control_port}"
    return args.control_url or os.environ.get("EPOCHBOT_CONTROL_URL", DEFAULT_CONTROL_URL)


def run(args: argparse.Namespace) -> int:
    url = control_url(args)
    if args.console:
        _die_with_parent()
        return run_console(url, os.environ.get(TOKEN_ENV), theme=args.theme)
    from epochbot.app.console.serve_web import OfflineServer

    if not os.environ.get(TOKEN_ENV):
        print(
            f"serve: {TOKEN_ENV} is not set: the console will be read-only (the daemon refuses actions)",
            file=sys.stderr,
        )
    # ``exec``: textual-serve starts the command through /bin/sh; without exec the shell would be
    # the child it stops, and the console python beneath it could outlive `serve`.
    command = "exec " + " ".join(
        shlex.quote(p)
        for p in (
            sys.executable,
            "-m",
            "epochbot.app.console.serve",
            "--console",
            "--control-url",
            url,
            "--theme",
            args.theme,
        )
    )
    OfflineServer(command, host=args.host, port=args.port, title="epochbot").serve()
    return 0


def _die_with_parent() -> None:
    """Linux: the kernel kills the console when `serve` dies, however it dies (even SIGKILL).

    SIGKILL, not SIGTERM: the console catches SIGTERM for a graceful exit that has nobody left
    to talk to (its stdout is a pipe to the dead parent) and can linger; it holds no state."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before prctl: nobody to serve
            os._exit(0)
    except (OSError, AttributeError):
        pass


def run_console(url: str, token: str | None, *, theme: str = "epochbot-dark") -> int:
    from epochbot.app.console.tui import ConsoleApp

    app = ConsoleApp(RemoteSource(url, token), theme=theme, venue=f"remote {url}")
    app.run()
    return app.return_code or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="epochbot serve")
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""`epochbot --headless`: the core without a UI, for servers and service managers.

What it does, in order:

1. Installs SIGTERM/SIGINT handlers (first signal: graceful stop; second: forced stop).
2. Builds and starts the `epochbot.runtime.runtime.Runtime` (with venue ``sim`` and no URL override the
   embedded simulator is started first, in this process on a loopback port: fully offline; see
   `epochbot.app.embedded_sim`), streams its log records as JSON lines to stderr
   (`epochbot.app.daemon.logging_json`), starts the loopback control endpoint
   (`epochbot.app.daemon.control`) unless disabled, and emits a ``"status"`` line every
   ``status_interval_s``.
3. Runs until a signal, ``--duration`` elapsing, or the runtime stopping on its own (fatal
   corruption or a defect). On the way out: final status line, the report (``--report PATH``, written
   atomically, also after SIGTERM and after a fatal stop), then the exit code.

Exit codes: 0 clean stop, 1 runtime failure (including a stop that had to be forced),
3 fatal state corruption or a defect in our code (trading stopped; do not restart blindly), 78 bad configuration,
2 usage. This module never imports Textual (a test checks ``sys.modules``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson

from epochbot.app.config import ConfigError, Settings, secret_values, to_runtime_config
from epochbot.app.daemon.control import ControlServer
from epochbot.app.daemon.logging_json import JsonLogWriter, LogFanout
from epochbot.app.daemon.summary import session_summary, status_line

__all__ = [
    "EXIT_FATAL",
    "EXIT_OK",
    "EXIT_RUNTIME",
    "HeadlessRunner",
    "check_report_path",
    "run_headless",
    "status_fields",
]

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_FATAL = 3
EXIT_CONFIG = 78
STOP_TIMEOUT_S = 15.0  # a graceful stop that takes longer than this is forced (exit 1)

RuntimeFactory = Callable[[Settings], Any]


async def default_runtime(settings: Settings, stack: AsyncExitStack):
    """The product's runtime: on the embedded simulator for venue ``sim`` (stopped by ``stack``)."""
    from epochbot.app.embedded_sim import start_runtime

    runtime, _ = await start_runtime(to_runtime_config(settings), stack)
    return runtime


def check_report_path(path: Path | None) -> None:
    """Fail before running (not after an hour) when the report cannot be written."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"report: {path} is a directory")
    if not parent.is_dir():
        raise ConfigError(f"report: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"report: directory {parent} is not writable")


def status_fields(snap) -> dict[str, Any]:
    """The periodic status line's fields from a WorldSnapshot."""
    ttcr = dict(snap.ttcr_ms)
    return {
        "mode": snap.mode.mode,
        "operator_floor": snap.mode.operator_floor,
        "paused": snap.mode.paused,
        "confidence": snap.confidence,
        "reasons": [r.describe() for r in snap.reasons],
        "session_open": snap.session_open,
        "symbols": {
            b.symbol: {"state": b.state, "last_update_id": b.last_update_id, "gaps": b.gaps, "resyncs": b.resyncs}
            for b in snap.books
        },
        "queue_delay_p99_ms": round(snap.latency.queue.p99, 3),
        "transport_latency_p99_ms": round(snap.latency.transport.p99, 3),
        "silence_ms": round(snap.latency.silence_ms, 3),
        "ttcr_count": int(ttcr.get("count", 0)),
        "ttcr_p99_ms": ttcr.get("p99", 0.0),
        "counters": dict(snap.counters),
        "fatal": snap.fatal,
        "trading": _trading_status(snap),
        "summary": status_line(snap),
    }


def _trading_status(snap) -> dict[str, Any] | None:
    t = snap.trading
    if t is None:
        return None
    return {
        "quote_asset": t.pnl.quote_asset,
        "pnl_net": t.pnl.net,
        "pnl_session": t.pnl.session,
        "pnl_daily": t.pnl.daily,
        "realized": t.pnl.realized,
        "unrealized": t.pnl.unrealized,
        "fees": t.pnl.fees,
        "positions": {p.symbol: p.qty for p in snap.positions},
        "working_orders": len(t.working_orders),
        "fill_count": t.fill_count,
        "breakers_tripped": {b.name: b.cause for b in t.tripped},
    }


class HeadlessRunner:
    """One headless run. Use `run_headless` unless you need to inject a runtime (tests)."""

    def __init__(
        self, settings: Settings, log: JsonLogWriter | LogFanout, runtime_factory: RuntimeFactory | None = None
    ) -> None:
        self.settings = settings
        self.log = log
        self.factory = runtime_factory  # None: the product's runtime (default_runtime)
        self.runtime = None
        self.control: ControlServer | None = None
        self.stop_reason: str | None = None
        self._run_task: asyncio.Task | None = None
        self._forced = False
        self._stop_watchdog: asyncio.TimerHandle | None = None
        self._ran_s = 0.0

    def _epoch(self) -> int | None:
        snap = getattr(self.runtime, "latest", None)
        return snap.epoch if snap is not None else None

    # ------------------------------------------------------------------ stopping

    def request_stop(self, reason: str) -> None:
        loop = asyncio.get_running_loop()
        if self.stop_reason is not None:
            if reason.startswith("signal") and self._run_task is not None and not self._run_task.done():
                self.log.emit("warn", "second signal: forcing stop", epoch=self._epoch(), reason=reason)
                self._forced = True
                self._run_task.cancel()
            return
        self.stop_reason = reason
        self.log.emit("info", "stop requested", epoch=self._epoch(), reason=reason)
        if self.runtime is not None:
            self.runtime.request_stop(reason)
            self._stop_watchdog = loop.call_later(STOP_TIMEOUT_S, self._force_stop)

    def _force_stop(self) -> None:
        if self._run_task is not None and not self._run_task.done():
            self.log.emit("error", f"runtime did not stop within {STOP_TIMEOUT_S:g} s: forcing", epoch=self._epoch())
            self._forced = True
            self._run_task.cancel()

    # ------------------------------------------------------------------ main

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / not POSIX
                pass
        try:
            async with AsyncExitStack() as stack:
                return await self._run(stack)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _run(self, stack: AsyncExitStack) -> int:
        settings = self.settings
        self.log.emit(
            "info",
            "starting",
            venue=settings.venue,
            market=settings.effective_market,
            symbols=list(settings.symbols),
            pid=os.getpid(),
            duration_s=settings.duration,
            report=str(settings.report) if settings.report else None,
        )
        if self.factory is None:
            try:
                self.runtime = runtime = await default_runtime(settings, stack)
            except Exception as exc:  # noqa: BLE001 - the simulator could not start (its port taken): say why, exit 1
                self._runtime_failed(exc)
                self.log.emit("error", "exit", epoch=None, exit_code=EXIT_RUNTIME, reason="runtime failed")
                return EXIT_RUNTIME
        else:
            self.runtime = runtime = self.factory(settings)
        runtime.add_log_listener(self.log.write_record)
        loop = asyncio.get_running_loop()
        # Start the runtime first: the engine's clock for the startup resync is already running,
        # so anything done before run() (binding the control port) would count against it.
        self._run_task = loop.create_task(runtime.run(), name="epochbot-runtime")
        if self.stop_reason is not None:  # a signal arrived while we were starting
            runtime.request_stop(self.stop_reason)

        if settings.control_enabled(headless=True):
            control = self.control = ControlServer(
                runtime, settings, on_action=self._on_control_action, on_auth_failure=self._on_auth_failure
            )
            try:
                await control.start()
            except OSError as exc:
                self.log.emit(
                    "error",
                    "control endpoint: cannot listen",
                    host="127.0.0.1",
                    port=settings.control.port,
                    error=str(exc),
                )
                self.stop_reason = self.stop_reason or "control endpoint failed"
                runtime.request_stop(self.stop_reason)
                await self._await_runtime_bounded()
                return EXIT_RUNTIME
            stack.push_async_callback(control.stop)
            self.log.emit(
                "info",
                "control endpoint listening",
                url=control.url,
                mutating_calls="enabled" if settings.control.token else "disabled (no control.token)",
            )

        status_task = loop.create_task(self._status_loop(), name="epochbot-status")
        duration_timer = (
            loop.call_later(settings.duration, self.request_stop, "duration elapsed") if settings.duration else None
        )
        started = time.monotonic()
        try:
            code = await self._await_runtime()
        finally:
            status_task.cancel()
            if duration_timer is not None:
                duration_timer.cancel()
            if self._stop_watchdog is not None:
                self._stop_watchdog.cancel()
        self._emit_status(final=True)
        self._ran_s = time.monotonic() - started
        if settings.report is not None and not self._write_report(settings.report, code, time.monotonic() - started):
            code = code or EXIT_RUNTIME
        level = "info" if code == EXIT_OK else ("critical" if code == EXIT_FATAL else "error")
        reason = self.stop_reason or _fatal(runtime)
        self.log.emit(
            level,
            session_summary(getattr(runtime, "latest", None), self._ran_s, code, reason),
            epoch=self._epoch(),
            session_summary=True,
        )
        self.log.emit(level, "exit", epoch=self._epoch(), exit_code=code, reason=self.stop_reason or _fatal(runtime))
        return code

    async def _await_runtime_bounded(self) -> None:
        assert self._run_task is not None
        try:
            await asyncio.wait_for(self._run_task, STOP_TIMEOUT_S)
        except BaseException:  # noqa: BLE001 - we are already failing; the cause was logged
            pass

    async def _await_runtime(self) -> int:
        assert self._run_task is not None
        try:
            code = await self._run_task
        except asyncio.CancelledError:
            if self._forced:
                return EXIT_RUNTIME
            raise
        except Exception as exc:  # noqa: BLE001 - the runtime crashed: say what and where, exit 1
            self._runtime_failed(exc)
            return EXIT_RUNTIME
        if code in (EXIT_OK, EXIT_RUNTIME, EXIT_FATAL):
            return code
        self.log.emit("error", "runtime returned an unexpected exit code", exit_code=code)
        return EXIT_RUNTIME

    def _runtime_failed(self, exc: BaseException) -> None:
        self.log.emit(
            "critical",
            "runtime failed",
            epoch=self._epoch(),
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
        )

    # ------------------------------------------------------------------ status / report

    async def _status_loop(self) -> None:
        interval = self.settings.status_interval_s
        while True:
            await asyncio.sleep(interval)
            self._emit_status()

    def _emit_status(self, final: bool = False) -> None:
        snap = getattr(self.runtime, "latest", None)
        if snap is None:
            self.log.emit("info", "status", epoch=None, state="starting", final=final)
            return
        level = "error" if snap.fatal else "info"
        self.log.emit(level, "status", epoch=snap.epoch, ts_ns=None, final=final, **status_fields(snap))

    def _write_report(self, path: Path, code: int, ran_s: float) -> bool:
        from epochbot.views.report import build_report

        snap = getattr(self.runtime, "latest", None)
        report: dict[str, Any] = (
            build_report(snap)
            if snap is not None
            else {"venue": self.settings.venue, "epochs": [], "symbols": {}, "fatal": None}
        )
        report["exit_code"] = code
        report["stop_reason"] = self.stop_reason or _fatal(self.runtime)
        report["run_s"] = round(ran_s, 3)
        data = orjson.dumps(report, option=orjson.OPT_NON_STR_KEYS, default=str) + b"\n"
        for secret in secret_values(self.settings):
            data = data.replace(secret.encode(), b"********")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            self.log.emit("error", "report not written", path=str(path), error=str(exc))
            try:
                tmp.unlink()
            except OSError:
                pass
            return False
        self.log.emit("info", "report written", epoch=self._epoch(), path=str(path), bytes=len(data))
        return True

    def _on_control_action(self, action: str, details: dict) -> None:
        self.log.emit("warn", f"control: {action}", epoch=self._epoch(), **details)

    def _on_auth_failure(self, details: dict) -> None:
        # Never the presented token: only who, what and which kind of failure.
        self.log.emit("warn", "control: authentication failed", epoch=self._epoch(), **details)


def _fatal(runtime) -> str | None:
    snap = getattr(runtime, "latest", None)
    return f"fatal: {snap.fatal}" if snap is not None and snap.fatal else None


def run_headless(settings: Settings, *, runtime_factory: RuntimeFactory | None = None, stream=None) -> int:
    """Run headless until stopped; returns the process exit code."""
    try:
        check_report_path(settings.report)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    secrets = secret_values(settings)
    stderr_log = JsonLogWriter(
        stream if stream is not None else sys.stderr,
        level=settings.log_level,
        secrets=secrets,
        fmt=getattr(settings, "log_format", "json"),
    )
    log: JsonLogWriter | LogFanout = stderr_log
    log_file = getattr(settings, "log_file", None)
    if log_file is not None:
        try:
            fh = open(log_file, "ab")
        except OSError as exc:
            print(f"config error: log_file: cannot open {log_file}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_CONFIG
        log = LogFanout(stderr_log, JsonLogWriter(fh, level=settings.log_level, secrets=secrets))
    try:
        return asyncio.run(HeadlessRunner(settings, log, runtime_factory).run())
    except KeyboardInterrupt:  # SIGINT before the handlers were installed
        return EXIT_RUNTIME
    finally:
        log.close()

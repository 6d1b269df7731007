"""Shared pieces for the application-layer tests.

`world` builds real `WorldSnapshot`s by driving a real `Engine` with a fake clock (no mocks of
the core); `FakeRuntime` has the public surface of `epochbot.runtime.runtime.Runtime` that the app layer uses
(latest, submit, request_stop, run, listeners) so the control endpoint and the headless runner
can be tested without sockets to a venue.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from epochbot.engine.engine import Engine, EngineConfig, LogRecord
from epochbot.model import events as ev
from epochbot.views.snapshot import SnapshotBuilder

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TOKEN = "test-token-0123456789abcdef"


class FakeClock:
    def __init__(self, start_ns: int) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += int(ms * 1_000_000)


def build_world(*, synced: tuple[str, ...] = SYMBOLS, symbols: tuple[str, ...] = SYMBOLS, hold_ms: float = 2500.0):
    """A WorldSnapshot of an engine after startup with ``synced`` books synced, taken now."""
    import time

    clock = FakeClock(time.time_ns() - int((hold_ms + 100) * 1_000_000))
    engine = Engine(EngineConfig(symbols=symbols), clock)
    commands = list(engine.start())
    epoch = engine.epoch
    clock.advance_ms(5)
    engine.handle(ev.SessionOpened(epoch=epoch, url="ws://127.0.0.1:1/stream"))
    for symbol in symbols:
        engine.handle(ev.SymbolSpec(symbol=symbol, tick_size="0.10", step_size="0.001"))
    clock.advance_ms(1)
    commands += list(engine.handle(ev.SubscriptionConfirmed(epoch=epoch, request_id=1, streams=("x",))))
    requests = {c.symbol: c for c in commands if isinstance(c, ev.FetchSnapshot)}
    for symbol in synced:
        clock.advance_ms(3)
        engine.handle(
            ev.SnapshotReady(
                epoch=epoch,
                symbol=symbol,
                request_id=requests[symbol].request_id,
                last_update_id=1000,
                bids=[["100.00", "1.000"], ["99.90", "2.000"]],
                asks=[["100.10", "1.500"]],
            )
        )
        # the first live diff after the snapshot proves the bridge: the book is resynchronised
        engine.handle(
            ev.DepthDiff(epoch, symbol, 1001, 1001, 1000, [["99.80", "1.000"]], [], clock.now // 1_000_000, clock.now)
        )
    # Let confidence be evaluated over the recovery hold so the mode follows it.
    # Trades keep the market "alive" (no silence) without touching the books, and so does the
    # diff stream (liveness judges it): repeats of the last diff, which the books ignore.
    for i in range(int(hold_ms // 50) + 2):
        clock.advance_ms(50)
        for symbol in symbols:
            engine.handle(
                ev.AggTrade(
                    epoch,
                    symbol,
                    i,
                    "100.00",
                    "0.001",
                    False,
                    clock.now // 1_000_000,
                    clock.now // 1_000_000,
                    clock.now,
                )
            )
            engine.handle(
                ev.DepthDiff(
                    epoch, symbol, 1001, 1001, 1000, [["99.80", "1.000"]], [], clock.now // 1_000_000, clock.now
                )
            )
        engine.handle(ev.TimerTick())
    return SnapshotBuilder("sim").build(engine), engine


class FakeRuntime:
    """The app-facing surface of epochbot.runtime.runtime.Runtime, recording what it is asked to do."""

    def __init__(
        self, latest=None, *, exit_code: int = 0, fail: Exception | None = None, stop_when_run: bool = False
    ) -> None:
        self.latest = latest
        self.submitted: list = []
        self.stop_reasons: list[str] = []
        self.exit_code = exit_code
        self.fail = fail
        self.stop_when_run = stop_when_run
        self.log_listeners: list = []
        self.snapshot_listeners: list = []
        self.ran = False
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.submitted_event = threading.Event()

    def submit(self, event) -> None:
        self.submitted.append(event)
        self.submitted_event.set()

    def request_stop(self, reason: str) -> None:
        self.stop_reasons.append(reason)
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    def add_log_listener(self, cb) -> None:
        self.log_listeners.append(cb)

    def add_snapshot_listener(self, cb) -> None:
        self.snapshot_listeners.append(cb)

    def log(self, level: str, msg: str, **fields) -> None:
        import time

        record = LogRecord(time.time_ns(), level, msg, self.latest.epoch if self.latest else 0, fields)
        for cb in self.log_listeners:
            cb(record)

    async def run(self) -> int:
        self.ran = True
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self.stop_reasons:
            self._stop.set()
        self.log("info", "fake runtime running", recv_ts=1, process_ts=2, queue_delay_ms=0.5)
        if self.fail is not None:
            raise self.fail
        if self.stop_when_run:
            return self.exit_code
        await self._stop.wait()
        return self.exit_code


@pytest.fixture
def world():
    snap, _ = build_world()
    return snap


def run_cli(
    *args: str, env: dict | None = None, timeout: float = 30.0, cwd: str | os.PathLike | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m epochbot.app.cli ARGS` with a clean EPOCHBOT_* environment."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("EPOCHBOT_")}
    base["PYTHONPATH"] = str(REPO)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=base,
        cwd=cwd or REPO,
    )


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.upper().startswith("EPOCHBOT_"):
            monkeypatch.delenv(key)
    return monkeypatch

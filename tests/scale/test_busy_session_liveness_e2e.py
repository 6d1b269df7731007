"""End to end, the way a busy market-wide watcher breaks liveness: the live Runtime against a real
simulator (a separate process, over loopback) with 80 symbols' @100ms diff streams on one
connection.

1. The venue hiccups: four times, its websocket pushes come 150 ms late for under a second
   (the simulator's ``latency`` fault: a venue busy pushing hundreds of symbols) while its REST
   book keeps moving. Every stream falls silent past its learned threshold, and a probe finds the
   venue a few ids ahead: a diff still in flight, not a dead stream.
2. Our own loop is held 150 ms out of every 400 (a slow strategy step, a gen-2 collection, a CPU
   taken by another process): gaps, and frames received but not yet processed.

Neither may replace the session (one epoch, no "stream stalled"). Then, under the same load, a
real ``stall`` of one symbol on the open connection must still be caught (one replacement, for
that symbol) and every book resynchronised on the new session. Bounded waits; about 30 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

from epochbot.engine.engine import EngineConfig
from epochbot.runtime.runtime import Runtime, RuntimeConfig, VenueEndpoints

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = tuple(f"L{i:03d}USDT" for i in range(80))
STALLED = "L017USDT"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EPOCHBOT_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _post(url: str, body: dict) -> int:
    req = Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urlopen(req, timeout=5) as resp:
        return resp.status


@pytest.fixture
def sim(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "epochbot.app.cli",
            "sim",
            "--port",
            "0",
            "--market",
            "usdm",
            "--symbols",
            ",".join(SYMBOLS),
            "--seed",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "sim.err", "wb"),
        env=_env(),
        cwd=REPO,
        text=True,
    )
    line, deadline = "", time.monotonic() + 20
    while "ready" not in line:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"simulator did not start: {line!r}")
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline()
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    yield fields["rest"], fields["ws"]
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def stable(rt: Runtime) -> bool:
    e = rt.engine
    return (
        bool(e.symbols)
        and e.session_open
        and e.subscribed
        and all(s.book.synced and not s.book.awaiting_bridge and not s.snapshot_request for s in e.symbols.values())
    )


async def block_the_loop_now_and_then(stop: asyncio.Event, blocked: list[float]) -> None:
    """150 ms of blocking work every 400 ms, on the runtime's own loop (time.sleep: the loop is
    held exactly as by CPU work, without burning a shared core)."""
    while not stop.is_set():
        await asyncio.sleep(0.25)
        t0 = time.monotonic()
        time.sleep(0.15)
        blocked.append(time.monotonic() - t0)


async def test_a_busy_eighty_symbol_session_is_kept_while_a_real_stall_on_one_symbol_is_still_caught(sim):
    rest, ws = sim
    venue = VenueEndpoints("external-sim", "usdm", rest, ws)
    # 50-level snapshots (weight 2): the caught stall replaces the session and all 80 books
    # resync. (A latency spell alone no longer costs a resync: the simulator delays frames in
    # order, as TCP does.)
    rt = Runtime(
        RuntimeConfig(
            venue=venue,
            symbols=SYMBOLS,
            engine=EngineConfig(snapshot_limit=50, replace_healthy_ms=1000),
            history_lookback_min=0,
            watched_streams="depth",
        )
    )
    task = asyncio.get_running_loop().create_task(rt.run())
    stop, blocked = asyncio.Event(), []
    load = None
    try:
        await wait_for(lambda: stable(rt) or task.done(), 30, "every book synced at start")
        assert not task.done()
        e = rt.engine
        await asyncio.sleep(2)  # let every stream learn its inter-arrival (the 200 ms floor applies)

        for _ in range(4):  # 1. the venue's pushes come late now and then
            assert _post(f"{rest}/_sim/fault", {"kind": "latency", "ms": 150, "duration_s": 0.8}) == 200
            await asyncio.sleep(1.6)
        hiccup_epochs = [(r.epoch, r.cause) for r in e.epochs]
        suspected, moved = e.liveness.counters["suspected"], e.liveness.counters["moved"]

        # 2. Busy: six seconds of a loop blocked 150 ms out of every 400.
        load = asyncio.get_running_loop().create_task(block_the_loop_now_and_then(stop, blocked))
        await asyncio.sleep(6)
        busy_epochs = [(r.epoch, r.cause) for r in e.epochs]

        # Still busy: a real stall of one symbol on the open connection.
        assert _post(f"{rest}/_sim/fault", {"kind": "stall", "symbol": STALLED, "duration_s": 20}) == 200
        armed = time.monotonic()
        await wait_for(lambda: e.epoch >= 2, 5, "the stalled stream caught")
        caught_s = time.monotonic() - armed
        # The load ends (80 snapshots, at most 8 in flight, installed on a loop held 40 % of the
        # time would take half a minute): every book resynchronised, and the new session kept.
        stop.set()
        await asyncio.wait_for(load, 2)
        await wait_for(lambda: stable(rt), 20, "every book resynchronised on the new session")
        await asyncio.sleep(2)
    finally:
        stop.set()
        if load is not None:
            await asyncio.wait_for(load, 2)
        rt.request_stop("test over")
        await asyncio.wait_for(task, 10)

    # The faults did what they say: streams were suspected and probes found the venue ahead;
    # the loop was held.
    assert suspected > 0 and moved > 0, (suspected, moved)
    assert len(blocked) >= 10 and min(blocked) >= 0.14
    # ... and none of it replaced the session.
    assert hiccup_epochs == [(1, "startup")], hiccup_epochs
    assert busy_epochs == [(1, "startup")], busy_epochs
    # The real stall: exactly one replacement, for that symbol, then kept.
    causes = [r.cause for r in e.epochs if r.epoch > 1]
    assert len(causes) == 1 and "stream stalled" in causes[0] and STALLED in causes[0], causes
    assert caught_s < 3
    assert e.fatal is None


async def hold_the_loop(stop: asyncio.Event, held: list[float], hold_s: float, free_s: float) -> None:
    while not stop.is_set():
        await asyncio.sleep(free_s)
        t0 = time.monotonic()
        time.sleep(hold_s)
        held.append(time.monotonic() - t0)


async def test_frames_waiting_in_our_socket_while_our_loop_is_saturated_are_not_a_lagging_venue(sim):
    """Our loop is held 600 ms out of every 620: the venue's frames wait in our socket, so their
    receive time minus event time (what "transport latency" measures) is hundreds of ms. With a
    replacement threshold of 200 ms a venue that lagged that much would cost a new session; we
    are the slow side here, and a new connection would only add snapshots to the load."""
    rest, ws = sim
    venue = VenueEndpoints("external-sim", "usdm", rest, ws)
    symbols = SYMBOLS[:20]
    rt = Runtime(
        RuntimeConfig(
            venue=venue,
            symbols=symbols,
            history_lookback_min=0,
            watched_streams="depth",
            engine=EngineConfig(snapshot_limit=100, transport_latency_replace_ms=200, latency_replace_cooldown_ms=1000),
        )
    )
    task = asyncio.get_running_loop().create_task(rt.run())
    stop, held = asyncio.Event(), []
    load = None
    try:
        await wait_for(lambda: stable(rt) or task.done(), 30, "every book synced at start")
        assert not task.done()
        e = rt.engine
        load = asyncio.get_running_loop().create_task(hold_the_loop(stop, held, 0.6, 0.02))
        await asyncio.sleep(12)
        lagging = e.telemetry.transport.stats(time.time_ns() // 1_000_000_000)
        busy, saturated = e.lag.busy(), e.lag.saturated()
    finally:
        stop.set()
        if load is not None:
            await asyncio.wait_for(load, 2)
        rt.request_stop("test over")
        await asyncio.wait_for(task, 10)

    # The measurement did read our backlog as latency, and the loop was saturated ...
    assert len(held) >= 10 and lagging.count >= 20 and lagging.p50 >= 200, lagging
    assert saturated and busy >= 0.9, busy
    # ... and the session was kept, the operator told why.
    causes = [r.cause for r in e.epochs if r.epoch > 1]
    assert not any("latency" in c for c in causes), causes
    assert any("our own backlog" in r.msg for r in e.log)

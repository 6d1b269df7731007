"""Integration: the live Runtime against its embedded simulator over loopback.

Every wait is event-driven (poll engine state / ``runtime.latest`` every 10 ms, bounded by a
deadline); nothing sleeps a fixed time for correctness. Each test is bounded well under 10 s.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from decimal import Decimal

import pytest

from epochbot.engine.engine import EngineConfig
from epochbot.model import events as ev
from epochbot.runtime.config import VENUES, RuntimeConfig
from epochbot.runtime.runtime import Runtime
from tests.helpers import simulated, wait_for

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def all_synced(rt: Runtime) -> bool:
    e = rt.engine
    return (
        bool(e.symbols)
        and e.session_open
        and e.subscribed
        and all(s.book.synced and not s.book.awaiting_bridge and not s.snapshot_request for s in e.symbols.values())
    )


class Running:
    """A `Runtime` for ``config`` on the embedded simulator, running and synced: ``(rt, sim)``.
    ``prepare`` is called with the simulator before the runtime is built."""

    def __init__(self, config: RuntimeConfig, prepare=None) -> None:
        self.config = config
        self.prepare = prepare
        self.rt: Runtime | None = None
        self.task: asyncio.Task | None = None
        self._sim = simulated(config)

    async def __aenter__(self):
        sim, config = await self._sim.__aenter__()
        if self.prepare is not None:
            self.prepare(sim)
        self.rt = rt = Runtime(config)
        self.task = asyncio.get_running_loop().create_task(rt.run())
        await wait_for(lambda: all_synced(rt) or self.task.done(), 5.0, "all books synced at start")
        assert not self.task.done(), self.task
        return rt, sim

    async def __aexit__(self, *exc) -> None:
        try:
            if not self.task.done():
                self.rt.request_stop("test over")
            try:
                await asyncio.wait_for(self.task, 5.0)
            except TimeoutError:
                self.task.cancel()
                raise
        finally:
            await self._sim.__aexit__(*exc)


def make(market: str = "usdm", **engine_kw) -> RuntimeConfig:
    venue = replace(VENUES["sim"], market=market)
    return RuntimeConfig(venue=venue, symbols=SYMBOLS, engine=EngineConfig(**engine_kw), sim_rate=50.0)


def synced_record(rt: Runtime, epoch: int):
    for r in rt.engine.epochs:
        if r.epoch == epoch and r.synced_ns:
            return r
    return None


async def test_starts_and_syncs_all_books():
    async with Running(make()) as (rt, sim):
        await wait_for(
            lambda: (
                rt.latest is not None and rt.latest.epoch == 1 and all(b.state == "synced" for b in rt.latest.books)
            ),
            3.0,
            "a published snapshot with synced books",
        )
        assert rt.engine.epoch == 1
        assert rt.engine.epochs[0].synced_ns > 0
        assert {b.symbol for b in rt.latest.books} == set(SYMBOLS)


async def test_gap_resyncs_the_book_and_keeps_the_session():
    async with Running(make()) as (rt, sim):
        epoch = rt.engine.epoch
        t0 = time.time_ns()
        sim.inject("gap", symbol="BTCUSDT")
        await wait_for(
            lambda: any(r.symbol == "BTCUSDT" and r.detected_ns >= t0 and r.synced_ns for r in rt.engine.book_resyncs),
            3.0,
            "BTCUSDT book resync",
        )
        await wait_for(lambda: all_synced(rt), 3.0, "books synced again")
        assert rt.engine.epoch == epoch
        assert rt.engine.counters["gaps"] >= 1
        r = next(r for r in rt.engine.book_resyncs if r.detected_ns >= t0)
        assert r.epoch == epoch and r.resync_ms is not None


async def test_drop_opens_a_new_epoch_and_resyncs():
    async with Running(make()) as (rt, sim):
        epoch = rt.engine.epoch
        sim.inject("drop")
        await wait_for(
            lambda: rt.engine.epoch > epoch and synced_record(rt, rt.engine.epoch) is not None and all_synced(rt),
            3.0,
            "a new resynchronized epoch",
        )
        rec = synced_record(rt, epoch + 1)
        assert rec is not None and "disconnected" in rec.cause
        assert rec.resync_ms is not None and rec.resync_ms < 2000


@pytest.mark.parametrize("market", ["spot", "usdm"])
async def test_server_shutdown_on_combined_streams_replaces_the_session(market):
    # Both markets announce it; combined streams wrap it as {"stream": "!serverShutdown", "data": ..}.
    async with Running(make(market)) as (rt, sim):
        epoch = rt.engine.epoch
        sim.inject("server_shutdown")
        await wait_for(
            lambda: rt.engine.epoch > epoch and synced_record(rt, rt.engine.epoch) is not None and all_synced(rt),
            3.0,
            "a new resynchronized epoch",
        )
        closed = next(r for r in rt.engine.epochs if r.epoch == epoch)
        assert "serverShutdown" in (closed.close_cause or "")


async def test_stale_epoch_events_are_discarded_and_counted():
    async with Running(make()) as (rt, sim):
        engine = rt.engine
        epoch = engine.epoch
        before = engine.counters["discarded_stale_epoch"]
        rt.submit(ev.OperatorForceResync(replace_session=True))
        await wait_for(lambda: engine.epoch > epoch and all_synced(rt), 3.0, "the operator's new epoch")
        # A straggler of the old session reaching the loop now must be void.
        book = engine.book("BTCUSDT")
        last = book.last_update_id
        old = engine.counters["discarded_stale_epoch"]
        gaps = engine.counters["gaps"]
        straggler = ev.DepthDiff(
            epoch=epoch,
            recv_ts=time.time_ns(),
            symbol="BTCUSDT",
            exchange_ts=0,
            first_id=last + 1,
            final_id=last + 1,
            prev_final_id=last,
            bids=[["1", "1"]],
            asks=[],
        )
        rt.inbox.put_market(straggler)
        rt.inbox.put_control(ev.GapDetected(epoch=epoch, recv_ts=time.time_ns(), symbol="BTCUSDT", expected=1, got=2))
        await wait_for(lambda: engine.counters["discarded_stale_epoch"] >= old + 2, 2.0, "stragglers counted")
        assert engine.counters["discarded_stale_epoch"] >= before + 2
        assert all_synced(rt)
        assert engine.counters["gaps"] == gaps  # the stale GapDetected did not invalidate anything
        assert 10**book.codec.price_decimals not in book.bids  # the stale diff's level was not applied


async def test_a_latency_spell_makes_frames_late_but_no_book_resyncs():
    # The simulator's latency delays frames without reordering them (real TCP never reorders),
    # so the books ride through the spell: late frames, no gap, no resync, the same session.
    async with Running(make()) as (rt, sim):
        engine = rt.engine
        epoch, gaps, resyncs = engine.epoch, engine.counters["gaps"], len(engine.book_resyncs)
        sim.inject("latency", ms=150, duration_s=1.0)  # under the liveness floor: no silence verdict
        await wait_for(lambda: sim.faults.active("latency") is not None, 1.0, "the spell armed")
        await wait_for(lambda: sim.faults.active("latency") is None, 3.0, "the spell over")
        after = {s: sim.market(s).update_id for s in SYMBOLS}
        await wait_for(
            lambda: all(engine.book(s).last_update_id >= after[s] for s in SYMBOLS), 3.0, "the backlog applied"
        )
        assert engine.telemetry.transport.run_stats().max >= 120  # frames did arrive late
        assert (engine.epoch, engine.counters["gaps"], len(engine.book_resyncs)) == (epoch, gaps, resyncs)
        assert all_synced(rt)


async def test_stall_is_detected_as_silence_and_the_session_replaced():
    async with Running(make(silence_replace_ms=300.0)) as (rt, sim):
        engine = rt.engine
        epoch = engine.epoch
        sim.inject("stall", duration_s=0.5)
        await wait_for(lambda: engine.epoch > epoch, 3.0, "silence detection")
        rec = next(r for r in engine.epochs if r.epoch == epoch + 1)
        assert "stalled" in rec.cause or "silent" in rec.cause
        await wait_for(lambda: not sim.faults.active("stall") and all_synced(rt), 5.0, "resynced after the stall")


async def test_operator_force_resync_replaces_the_session():
    async with Running(make()) as (rt, sim):
        epoch = rt.engine.epoch
        rt.submit(ev.OperatorForceResync(replace_session=True))
        await wait_for(
            lambda: rt.engine.epoch == epoch + 1 and synced_record(rt, epoch + 1) is not None, 3.0, "new epoch"
        )
        assert synced_record(rt, epoch + 1).cause.startswith("operator")


async def test_request_stop_makes_run_return_zero():
    async with simulated(make()) as (_, config):
        rt = Runtime(config)
        task = asyncio.get_running_loop().create_task(rt.run())
        await wait_for(lambda: all_synced(rt), 5.0, "sync")
        rt.request_stop("test")
        code = await asyncio.wait_for(task, 5.0)
    assert code == 0 and rt.exit_code == 0


@pytest.mark.parametrize("market", ["usdm", "spot"])
async def test_book_equals_simulator_depth_after_pausing_the_market(market):
    async with Running(make(market)) as (rt, sim):
        # Make sure the market moved after the snapshot, so diffs were applied on top of it.
        start = {s: rt.engine.book(s).last_update_id for s in SYMBOLS}
        await wait_for(
            lambda: all(rt.engine.book(s).last_update_id > start[s] + 5 for s in SYMBOLS), 3.0, "diffs applied"
        )
        sim.pause_market()
        try:
            await wait_for(
                lambda: all(rt.engine.book(s).last_update_id == sim.market(s).update_id for s in SYMBOLS),
                1.0,
                "same update id as the simulator",
            )
            for s in SYMBOLS:
                book = rt.engine.book(s)
                bids, asks = book.top_strings(100)
                body = sim.depth_snapshot(s, 100)
                as_dec = lambda side: [(Decimal(p), Decimal(q)) for p, q in side]  # noqa: E731
                assert as_dec(bids) == as_dec(body["bids"]), s
                assert as_dec(asks) == as_dec(body["asks"]), s
                assert book.last_update_id == body["lastUpdateId"]
        finally:
            sim.resume_market()

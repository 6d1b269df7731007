"""The shutdown drain, on the real runtime and simulator: a clean stop cancels working orders only
when configured to; a fatal stop cancels them whatever the configuration says (halted: no orders
at all), and either way storage, journal and the final snapshot are closed in order."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from epochbot.engine.engine import FATAL_EXIT_CODE
from epochbot.model import events as ev
from epochbot.runtime.config import VENUES, JournalConfig, RuntimeConfig, TradingConfig
from epochbot.runtime.runtime import Runtime
from tests.helpers import simulated, wait_for

SYMBOL = "BTCUSDT"
ACCOUNT = "acct-1"  # the simulator's default account
QUOTER = {"half_spread_ticks": 30, "half_spread_bps": 0.0, "refresh_ms": 60_000}  # quotes that rest


def config(tmp_path) -> RuntimeConfig:
    trading = TradingConfig(
        strategy="quoter", params=QUOTER, storage_path=str(tmp_path / "db.sqlite3"), cancel_on_shutdown=False
    )
    return RuntimeConfig(
        venue=replace(VENUES["sim"], market="usdm"),
        symbols=(SYMBOL,),
        sim_rate=50.0,
        trading=trading,
        history_lookback_min=0,
        journal=JournalConfig(str(tmp_path / "journal")),
    )


async def run_until_quoting(rt: Runtime, sim, stop) -> int:
    task = asyncio.get_running_loop().create_task(rt.run())
    await wait_for(
        lambda: task.done() or len(sim.venue.open_orders(ACCOUNT, SYMBOL)) >= 2, 20, "the quotes resting at the venue"
    )
    assert not task.done(), task
    stop()
    return await asyncio.wait_for(task, 20)


async def test_a_clean_stop_keeps_the_orders_when_so_configured(tmp_path):
    async with simulated(config(tmp_path)) as (sim, cfg):
        rt = Runtime(cfg)
        code = await run_until_quoting(rt, sim, lambda: rt.request_stop("test over"))
        left = sim.venue.open_orders(ACCOUNT, SYMBOL)

    assert code == 0 and len(left) >= 2
    assert not any(r.msg == "shutdown: working orders settled" for r in rt.engine.log)
    assert rt.latest is not None and rt.latest.trading is not None  # the final snapshot was published


async def test_a_fatal_stop_cancels_every_working_order_even_when_configured_to_keep_them(tmp_path):
    async with simulated(config(tmp_path)) as (sim, cfg):
        rt = Runtime(cfg)
        original = rt.engine.handle

        def broken(event):
            if type(event) is ev.OperatorSetMode:
                raise AttributeError("a bug in the operator path")
            return original(event)

        rt.engine.handle = broken  # the loop takes its handler when it starts
        code = await run_until_quoting(rt, sim, lambda: rt.submit(ev.OperatorSetMode(mode="reduce-only")))
        left = sim.venue.open_orders(ACCOUNT, SYMBOL)
        final = {o["clientOrderId"]: o["status"] for o in sim.venue.all_orders(ACCOUNT, SYMBOL, 1000)}

    assert code == FATAL_EXIT_CODE and left == []
    settled = next(r for r in rt.engine.log if r.msg == "shutdown: working orders settled")
    assert settled.fields["still_working"] == [] and settled.fields["cancelled"] >= 2
    assert "CANCELED" in final.values()
    assert rt.latest.fatal.startswith("defect handling OperatorSetMode") and rt.latest.mode.mode == "halted"
    assert rt.journal is not None and rt.journal.dropped == 0

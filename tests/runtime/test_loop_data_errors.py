"""The live strategy loop against the embedded simulator: a data error raised by a handler is
counted and repaired by the event's route and the loop goes on; anything else a handler raises
is a defect, and a defect - like an invariant violation - stops the process with exit 3."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from epochbot.book.book import BookState, IllegalTransition
from epochbot.engine.engine import FATAL_EXIT_CODE
from epochbot.model import events as ev
from epochbot.model.numeric import DecimalFormatError
from epochbot.runtime.config import VENUES, RuntimeConfig
from epochbot.runtime.data_errors import handle_failure
from epochbot.runtime.runtime import Runtime
from tests.helpers import simulated, wait_for

SYMBOL = "BTCUSDT"
CONFIG = RuntimeConfig(
    venue=replace(VENUES["sim"], market="usdm"), symbols=(SYMBOL,), sim_rate=50.0, history_lookback_min=0
)


def synced(rt: Runtime) -> bool:
    return SYMBOL in rt.engine.symbols and rt.engine.symbols[SYMBOL].book.state is BookState.SYNCED


async def test_a_depth_event_whose_handler_raises_a_data_error_is_counted_its_book_resynced_and_the_loop_goes_on():
    async with simulated(CONFIG) as (_, config):
        rt = Runtime(config)
        original = rt.engine.handle
        poisoned: list = []

        def handle(event):
            if any(event is bad for bad in poisoned):
                raise DecimalFormatError("'1e5' is not a plain decimal")
            return original(event)

        rt.engine.handle = handle  # the loop takes its handler when it starts
        task = asyncio.get_running_loop().create_task(rt.run())
        try:
            await wait_for(lambda: task.done() or synced(rt), 10, "a synced book")
            resyncs = rt.engine.counters["book_resyncs"]
            diff = ev.DepthDiff(rt.engine.epoch, SYMBOL, 1, 2, 0, [], [], 1, time.time_ns())
            poisoned.append(diff)
            rt.inbox.put_market(diff)
            await wait_for(
                lambda: task.done() or rt.engine.counters["book_resyncs"] > resyncs, 5, "the data error's resync"
            )
            assert rt.engine.counters["handler_data_errors"] == 1
            await wait_for(lambda: task.done() or synced(rt), 10, "the book synced again")
            assert not task.done() and rt.engine.fatal is None
        finally:
            rt.request_stop("test over")
            code = await asyncio.wait_for(task, 10)
    assert code == 0


async def test_an_event_that_passed_validation_yet_breaks_its_handler_is_a_defect_that_exits_3():
    async with simulated(CONFIG) as (_, config):
        rt = Runtime(config)
        task = asyncio.get_running_loop().create_task(rt.run())
        await wait_for(lambda: task.done() or synced(rt), 10, "a synced book")
        # Built directly, as a decoder bug would let it through: the handler raises a TypeError.
        rt.inbox.put_market(ev.AggTrade(rt.engine.epoch, SYMBOL, 1, "100.0", "1", True, "x", "x", time.time_ns()))
        code = await asyncio.wait_for(task, 10)

    assert code == FATAL_EXIT_CODE
    assert rt.engine.fatal.startswith("defect handling AggTrade")
    assert rt.latest.mode.mode == "halted"
    assert rt.engine.counters.get("handler_data_errors", 0) == 0
    defect = next(r for r in rt.engine.log if r.msg == "defect: trading stopped")
    assert "Traceback" in defect.fields["traceback"] and defect.fields["event"] == "AggTrade"


async def test_an_invariant_violation_in_a_handler_stops_the_process_with_exit_3():
    async with simulated(CONFIG) as (_, config):
        rt = Runtime(config)
        original = rt.engine.handle

        def broken(event):
            if type(event) is ev.OperatorPause:
                raise IllegalTransition("BTCUSDT: synced --snapshot--> empty")
            return original(event)

        rt.engine.handle = broken  # the loop takes its handler when it starts
        task = asyncio.get_running_loop().create_task(rt.run())
        await wait_for(lambda: task.done() or SYMBOL in rt.engine.symbols, 10, "the engine running")
        rt.submit(ev.OperatorPause(paused=True))
        code = await asyncio.wait_for(task, 10)

    assert code == FATAL_EXIT_CODE
    assert "invariant violated" in (rt.engine.fatal or "")


def test_handle_failure_counts_a_data_error_and_resyncs_a_depth_events_book():
    from tests.core.test_hostile_input import trading_engine

    engine = trading_engine()
    diff = ev.DepthDiff(engine.epoch, SYMBOL, 200, 201, 199, [["x", "1"]], [], 1, 2)
    engine.symbols[SYMBOL].book.state = BookState.SYNCED

    commands = handle_failure(engine, diff, DecimalFormatError("bad level"))

    assert engine.counters["handler_data_errors"] == 1
    assert [type(c) for c in commands] == [ev.FetchSnapshot]
    assert engine.symbols[SYMBOL].book.state is BookState.INVALID

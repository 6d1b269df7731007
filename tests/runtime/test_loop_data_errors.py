"""The strategy loop turns what a handler raises on a bad event into a counted data error
repaired by the event's route; an invariant violation stays fatal (exit 3)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from epochbot.book.book import BookState, IllegalTransition
from epochbot.engine.engine import FATAL_EXIT_CODE
from epochbot.model import events as ev
from epochbot.runtime.data_errors import handle_failure
from epochbot.runtime.runtime import VENUES, Runtime, RuntimeConfig
from tests.helpers import wait_for

SYMBOL = "BTCUSDT"


def runtime() -> Runtime:
    config = RuntimeConfig(
        venue=replace(VENUES["sim"], market="usdm"), symbols=(SYMBOL,), sim_rate=50.0, history_lookback_min=0
    )
    return Runtime(config)


async def test_an_event_whose_handler_raises_is_counted_its_book_resynced_and_the_loop_goes_on():
    rt = runtime()
    task = asyncio.get_running_loop().create_task(rt.run())
    try:
        await wait_for(
            lambda: (
                task.done()
                or (SYMBOL in rt.engine.symbols and rt.engine.symbols[SYMBOL].book.state is BookState.SYNCED)
            ),
            10,
            "a synced book",
        )
        resyncs = rt.engine.counters["book_resyncs"]
        # Past validation (built directly, as a decoder bug would), yet unusable: the handler raises.
        rt.inbox.put_market(ev.MarkPrice(rt.engine.epoch, SYMBOL, "100.0", "", "0.0001", "x", 1, time.time_ns()))
        rt.inbox.put_market(ev.AggTrade(rt.engine.epoch, SYMBOL, 1, "100.0", "1", True, "x", "x", time.time_ns()))
        await wait_for(
            lambda: task.done() or rt.engine.counters.get("handler_data_errors", 0) >= 2,
            5,
            "both counted as data errors",
        )
        assert rt.engine.counters["book_resyncs"] == resyncs  # not depth: nothing to resync
        # A depth event whose handler raises (its timestamp is text): its book is resynced.
        rt.inbox.put_market(ev.DepthDiff(rt.engine.epoch, SYMBOL, 1, 2, 0, [], [], "x", time.time_ns()))
        await wait_for(
            lambda: task.done() or rt.engine.counters["book_resyncs"] > resyncs, 5, "the depth data error's resync"
        )
        assert rt.engine.counters["handler_data_errors"] == 3
        await wait_for(
            lambda: task.done() or rt.engine.symbols[SYMBOL].book.state is BookState.SYNCED, 10, "the book synced again"
        )
        assert not task.done()
    finally:
        rt.request_stop("test over")
        code = await asyncio.wait_for(task, 10)
    assert code == 0


async def test_an_invariant_violation_in_a_handler_stops_the_process_with_exit_3():
    rt = runtime()
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

    commands = handle_failure(engine, diff, ValueError("bad level"))

    assert engine.counters["handler_data_errors"] == 1
    assert [type(c) for c in commands] == [ev.FetchSnapshot]
    assert engine.symbols[SYMBOL].book.state is BookState.INVALID

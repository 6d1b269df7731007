"""The venue's clock offset: measured once before signing (applied and journaled), then in a loop."""

from __future__ import annotations

import asyncio

from epochbot.model import events as ev
from epochbot.runtime.clock import ServerClock
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.recorder import InputRecorder
from epochbot.venues.binance.rest import RestError
from tests.runtime.fakes import SYMBOL, VENUE, Clock, LogSpy, engine, venue_rest


def server_clock(offset):
    eng = engine()
    inbox = Inbox(10)
    log = LogSpy()
    rest, fake = venue_rest(log=log)
    fake.offset = offset
    recorder = InputRecorder(None, engine=eng, inbox=inbox, venue=VENUE, symbols=(SYMBOL,))
    part = ServerClock(rest=rest, engine=eng, inbox=inbox, recorder=recorder, clock=Clock(), log=log, interval_s=0.01)
    return part, eng, inbox, log


async def test_the_first_measurement_is_applied_to_the_engine_before_the_loop_runs():
    part, eng, inbox, _ = server_clock((-250.0, 3.0))

    await part.measure()

    assert eng.telemetry.clock_offset_ns == -250_000_000 and not inbox.control


async def test_an_unavailable_server_time_is_logged_and_signing_uses_the_local_clock():
    part, eng, _, log = server_clock(RestError(0, "timeout"))

    await part.measure()

    assert eng.telemetry.clock_offset_ns == 0
    assert log.find("server time unavailable: signing with the local clock") is not None


async def test_later_measurements_go_to_the_loop_as_control_events():
    part, _, inbox, _ = server_clock((12.5, 2.0))
    task = asyncio.ensure_future(part.run())
    try:
        while len(inbox.control) < 2:
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert all(type(e) is ev.ClockOffsetMeasured and e.offset_ms == 12.5 for e in inbox.control)

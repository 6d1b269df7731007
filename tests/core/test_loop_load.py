"""The loop's busy share (time not spent waiting in select) and the timer tick that carries it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from epochbot.model import events as ev
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.loop_load import LoopLoad, timer_tick

MS = 1_000_000


class FakeSelector:
    def __init__(self, clock: list[int]) -> None:
        self.clock = clock
        self.waits: list[int] = []

    def select(self, timeout=None):
        self.clock[0] += self.waits.pop(0) if self.waits else 0
        return []


def test_time_waiting_in_select_is_idle_and_polls_between_callbacks_are_not():
    clock = [1_000 * MS]
    selector = FakeSelector(clock)
    load = LoopLoad(clock=lambda: clock[0])
    assert load.install(SimpleNamespace(_selector=selector))

    clock[0] += 30 * MS  # work
    selector.waits.append(70 * MS)
    selector.select(0.1)  # idle wait for I/O
    first = load.busy()
    clock[0] += 90 * MS  # work
    selector.waits.append(10 * MS)
    selector.select(0)  # a poll while callbacks were ready: still working
    second = load.busy()

    assert abs(first - 0.3) < 1e-9 and second == 1.0


def test_a_loop_without_a_selector_reports_no_figure():
    load = LoopLoad()

    assert load.install(SimpleNamespace()) is False and load.busy() == -1.0


def test_a_real_loop_that_sleeps_is_idle_and_one_that_spins_is_busy():
    async def main():
        load = LoopLoad()
        assert load.install(asyncio.get_running_loop())
        load.busy()
        await asyncio.sleep(0.05)
        idle = load.busy()
        for _ in range(2000):
            await asyncio.sleep(0)
        return idle, load.busy()

    idle, busy = asyncio.run(main())

    assert idle < 0.5 < busy


def test_the_timer_tick_carries_the_age_of_the_oldest_queued_market_event():
    inbox = Inbox()
    load = LoopLoad()
    empty = timer_tick(5_000 * MS, inbox, load)
    for recv_ms, uid in ((4_700, 1), (4_900, 2)):
        inbox.put_market(ev.DepthDiff(1, "BTCUSDT", uid, uid, uid - 1, (), (), recv_ms - 5, recv_ms * MS))

    queued = timer_tick(5_000 * MS, inbox, load)

    assert empty.market_backlog_ns == 0 and queued.market_backlog_ns == 300 * MS
    assert queued.loop_busy == -1.0  # not installed: not known

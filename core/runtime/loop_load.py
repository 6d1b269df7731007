"""How busy the runtime's asyncio loop is: the share of wall time it did not wait for I/O.

A frame's receive time is stamped by the reader when the loop gets to it. While the loop has
time to spare (it waits in ``select`` for the next frame), a frame is read as soon as it lands
and "exchange time -> receive time" is the venue and the network. When the loop is saturated
(our own work, or the machine's other processes taking the CPU) frames wait in the socket before
the reader sees them, and that wait is *ours*, though it shows as transport latency. The engine
uses this figure to tell the two apart (core/engine/lag.py). Measured by timing the selector's
``select`` calls (the only place an asyncio loop idles); a loop without a selector (another
implementation) reports nothing (-1).
"""

from __future__ import annotations

import time

from epochbot.model.events import TimerTick

__all__ = ["LoopLoad", "market_backlog_ns", "timer_tick"]


class LoopLoad:
    def __init__(self, clock=time.perf_counter_ns) -> None:
        self.clock = clock
        self.idle_ns = 0
        self.installed = False
        self._mark_wall = 0
        self._mark_idle = 0

    def install(self, loop) -> bool:
        selector = getattr(loop, "_selector", None)
        select = getattr(selector, "select", None)
        if selector is None or select is None or getattr(select, "_loop_load", False):
            return False
        clock = self.clock

        def timed_select(timeout=None):
            if timeout is not None and timeout <= 0:  # a poll between ready callbacks: not idle
                return select(timeout)
            t0 = clock()
            try:
                return select(timeout)
            finally:
                self.idle_ns += clock() - t0

        timed_select._loop_load = True  # type: ignore[attr-defined]  # marks our wrapper (see above)
        try:
            selector.select = timed_select
        except AttributeError:  # a selector that does not take the attribute
            return False
        self.installed = True
        self._mark_wall = clock()
        self._mark_idle = self.idle_ns
        return True

    def busy(self) -> float:
        """Share of wall time not spent waiting since the previous call, in [0, 1] (-1: unknown)."""
        if not self.installed:
            return -1.0
        now = self.clock()
        wall = now - self._mark_wall
        idle = self.idle_ns - self._mark_idle
        self._mark_wall, self._mark_idle = now, self.idle_ns
        if wall <= 0:
            return -1.0
        return min(1.0, max(0.0, 1.0 - idle / wall))


def timer_tick(now: int, inbox, load: LoopLoad):
    """The runtime's timer tick, carrying what the engine needs to tell our backlog from the
    venue's: the age of the oldest market event still queued behind it (0: none) and how busy
    the loop was since the previous tick."""
    return TimerTick(recv_ts=now, market_backlog_ns=market_backlog_ns(now, inbox), loop_busy=load.busy())


def market_backlog_ns(now: int, inbox) -> int:
    """Age of the oldest market event still waiting in ``inbox`` (0: none)."""
    market = inbox.market
    return max(0, now - market[0].recv_ts) if market else 0

"""The venue's clock: the offset between our clock and the venue's server time.

`ServerClock.measure` takes one measurement before anything is signed and applies it to the
engine directly (journaled, as replay applies it): the start-up reconciliation signs with the
runtime's clock plus this offset, and Binance refuses a timestamp 1 s ahead of its clock or
older than recvWindow. `ServerClock.run` measures again every ``interval_s`` and hands each
measurement to the loop as a control event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from epochbot.engine.engine import Engine
from epochbot.model import events as ev
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.publish import RuntimeLog
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.venue_rest import VenueRest
from epochbot.venues.binance.rest import RestError

__all__ = ["ServerClock"]


class ServerClock:
    def __init__(
        self,
        *,
        rest: VenueRest,
        engine: Engine,
        inbox: Inbox,
        recorder: InputRecorder,
        clock: Callable[[], int],
        log: RuntimeLog,
        interval_s: float,
    ) -> None:
        self.rest = rest
        self.engine = engine
        self.inbox = inbox
        self.recorder = recorder
        self.clock = clock
        self.log = log
        self.interval_s = interval_s

    async def measure(self) -> None:
        """One measurement, applied to the engine now (before the loop runs)."""
        try:
            offset, rtt = await self.rest.client.server_time_offset(self.clock)
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self.log("warn", "server time unavailable: signing with the local clock", error=str(exc))
            return
        event = ev.ClockOffsetMeasured(recv_ts=self.clock(), offset_ms=offset, rtt_ms=rtt)
        self.engine.handle(event)
        self.recorder.event(event)

    async def run(self) -> None:
        while True:
            try:
                offset, rtt = await self.rest.client.server_time_offset(self.clock)
                self.inbox.put_control(ev.ClockOffsetMeasured(recv_ts=self.clock(), offset_ms=offset, rtt_ms=rtt))
            except (RestError, ValueError, KeyError, TypeError) as exc:
                self.log("warn", "server time unavailable", error=str(exc))
            await asyncio.sleep(self.interval_s)

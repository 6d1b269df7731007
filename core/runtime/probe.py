"""The liveness probe: the venue's ``lastUpdateId`` now, asked when the engine's liveness check
(`epochbot.engine.liveness`) suspects a silent stream (``ProbeVenue``); the answer comes back as
``ProbeResult``, with how far the loop's market backlog had got (our lag is not the venue's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from epochbot.model import events as ev
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.loop_load import market_backlog_ns
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.venue_rest import VenueRest
from epochbot.venues.binance.rest import RestError

__all__ = ["VenueProbe"]


class VenueProbe:
    def __init__(self, *, rest: VenueRest, inbox: Inbox, tasks: TaskSupervisor, clock: Callable[[], int]) -> None:
        self.rest = rest
        self.inbox = inbox
        self.tasks = tasks
        self.clock = clock

    def probe(self, command: ev.ProbeVenue) -> None:
        self.tasks.spawn(self.ask(command), f"probe-{command.symbol}")

    async def ask(self, command: ev.ProbeVenue) -> None:
        """The venue's lastUpdateId now, from the smallest depth (weight 2 on USD-M, 5 on spot).
        Not journaled as a snapshot: it changes no book."""
        if command.delay_ms > 0:
            await asyncio.sleep(command.delay_ms / 1000)
        started = self.clock()
        try:
            last_id, _, _, _ = await self.rest.client.depth(command.symbol, command.limit)
        except RestError as exc:
            self.inbox.put_control(
                ev.ProbeResult(
                    epoch=command.epoch,
                    recv_ts=self.clock(),
                    symbol=command.symbol,
                    request_id=command.request_id,
                    ok=False,
                    reason=str(exc),
                )
            )
            return
        now = self.clock()
        self.inbox.put_control(
            ev.ProbeResult(
                epoch=command.epoch,
                recv_ts=now,
                symbol=command.symbol,
                request_id=command.request_id,
                last_update_id=last_id,
                fetch_ms=(now - started) / 1e6,
                market_backlog_ns=market_backlog_ns(now, self.inbox),
            )
        )

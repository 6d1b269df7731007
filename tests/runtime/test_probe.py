"""The liveness probe: the venue's update id now, or why it could not be asked."""

from __future__ import annotations

from epochbot.model import events as ev
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.probe import VenueProbe
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.venues.binance.rest import RestError
from tests.runtime.fakes import SYMBOL, Clock, drain, venue_rest


async def test_a_probe_answers_with_the_venues_update_id_and_the_loops_backlog():
    rest, fake = venue_rest()
    fake.depth_answers = [(977, [], [], 0)]
    inbox = Inbox(10)
    probe = VenueProbe(rest=rest, inbox=inbox, tasks=TaskSupervisor(lambda n, e: None), clock=Clock())

    await probe.ask(ev.ProbeVenue(epoch=3, symbol=SYMBOL, request_id=9, limit=5))

    (result,) = drain(inbox)
    assert type(result) is ev.ProbeResult and result.ok
    assert (result.epoch, result.request_id, result.last_update_id) == (3, 9, 977)
    assert fake.depth_calls == [(SYMBOL, 5)] and result.market_backlog_ns >= 0


async def test_a_failed_probe_says_why():
    rest, fake = venue_rest()
    fake.depth_answers = [RestError(0, "timeout after 5s")]
    inbox = Inbox(10)
    probe = VenueProbe(rest=rest, inbox=inbox, tasks=TaskSupervisor(lambda n, e: None), clock=Clock())

    await probe.ask(ev.ProbeVenue(epoch=3, symbol=SYMBOL, request_id=9))

    (result,) = drain(inbox)
    assert not result.ok and "timeout" in result.reason

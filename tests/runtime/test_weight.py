"""The weight scheduler and the snapshot fetcher, driven alone with a fake REST client."""

from __future__ import annotations

import asyncio

from epochbot.model import events as ev
from epochbot.runtime.budget import BudgetConfig, WeightBudget
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.streams import StreamPlan
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.weight import SnapshotFetcher, WeightScheduler
from epochbot.venues.binance.rest import RestError
from tests.helpers import wait_for
from tests.runtime.fakes import SYMBOL, Clock, LogSpy, config, engine, venue_rest


class Parts:
    def __init__(self, *, max_in_flight: int = 8, limit: int = 2400, traded=None) -> None:
        self.clock = Clock()
        self.engine = engine(self.clock, symbols=("BTCUSDT", "ETHUSDT"))
        self.inbox = Inbox(1000)
        self.log = LogSpy()
        self.rest, self.fake = venue_rest(log=self.log)
        budget = WeightBudget(BudgetConfig(limit=limit, headroom=0.0, max_in_flight=max_in_flight))
        self.scheduler = WeightScheduler(
            budget, inbox=self.inbox, rest=self.rest, clock=self.clock, clock_offset_ns=lambda: 0
        )
        self.failures: list = []
        self.tasks = TaskSupervisor(lambda name, exc: self.failures.append((name, exc)))
        plan = StreamPlan(config(symbols=("BTCUSDT", "ETHUSDT"), traded_symbols=traded))
        self.fetcher = SnapshotFetcher(
            scheduler=self.scheduler,
            rest=self.rest,
            engine=self.engine,
            inbox=self.inbox,
            tasks=self.tasks,
            plan=plan,
            clock=self.clock,
            log=self.log,
        )

    async def __aenter__(self):
        self.running = self.tasks.spawn(self.scheduler.run(), "weight-budget")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.tasks.cancel_all()


async def test_a_snapshot_request_is_fetched_and_answered_on_the_bulk_lane_with_its_epoch():
    async with Parts() as p:
        p.fake.depth_answers = [(42, [["100.0", "1"]], [["101.0", "1"]], 7)]

        p.fetcher.fetch(ev.FetchSnapshot(epoch=p.engine.epoch, symbol=SYMBOL, request_id=5, limit=1000))
        await wait_for(lambda: p.inbox.bulk, 5, "the answer")

    (ready,) = p.inbox.bulk
    assert type(ready) is ev.SnapshotReady and (ready.symbol, ready.request_id, ready.last_update_id) == (
        SYMBOL,
        5,
        42,
    )
    assert ready.epoch == p.engine.epoch and p.fake.depth_calls == [(SYMBOL, 1000)] and p.failures == []


async def test_a_refused_snapshot_comes_back_as_a_failure_with_retry_after_and_is_logged():
    async with Parts() as p:
        p.fake.depth_answers = [RestError(429, "too many requests", retry_after_ms=1000)]

        p.fetcher.fetch(ev.FetchSnapshot(epoch=p.engine.epoch, symbol=SYMBOL, request_id=1))
        await wait_for(lambda: any(type(e) is ev.SnapshotFailed for e in p.inbox.control), 5, "the failure")

    failed = next(e for e in p.inbox.control if type(e) is ev.SnapshotFailed)
    assert failed.retry_after_ms == 1000 and failed.request_id == 1
    assert p.log.find("venue refused a request for weight")["status"] == 429
    assert p.scheduler.budget.stats["throttled"] == 1


async def test_a_grant_for_an_epoch_that_is_gone_is_never_sent():
    async with Parts() as p:
        stale = ev.FetchSnapshot(epoch=p.engine.epoch + 7, symbol=SYMBOL, request_id=1)

        p.fetcher.fetch(stale)
        await wait_for(lambda: p.scheduler.budget.stats["granted"] == 1, 5, "the grant")
        await asyncio.sleep(0.01)

    assert p.fake.depth_calls == [] and not p.inbox.bulk and p.scheduler.budget.in_flight == 0


async def test_traded_books_are_snapshotted_first_and_the_engine_is_told_which_wait():
    async with Parts(max_in_flight=1, traded=("ETHUSDT",)) as p:
        gate = asyncio.Event()
        answered = p.fake.depth

        async def slow(symbol, limit=1000, on_body=None):
            await gate.wait()
            return await answered(symbol, limit)

        p.fake.depth = slow
        p.fetcher.fetch(ev.FetchSnapshot(epoch=p.engine.epoch, symbol="BTCUSDT", request_id=1))
        p.fetcher.fetch(ev.FetchSnapshot(epoch=p.engine.epoch, symbol="ETHUSDT", request_id=2))
        await wait_for(lambda: p.fake.depth_calls or p.scheduler.budget.in_flight, 5, "the first request out")
        waiting = [e for e in p.inbox.control if type(e) is ev.SnapshotBudget]
        gate.set()
        await wait_for(lambda: len(p.inbox.bulk) == 2, 5, "both answers")

    assert [e.symbol for e in p.inbox.bulk] == ["ETHUSDT", "BTCUSDT"]
    assert waiting and waiting[-1].waiting == ("BTCUSDT",)


async def test_a_new_session_cancels_every_queued_and_in_flight_snapshot():
    async with Parts(max_in_flight=1) as p:
        gate = asyncio.Event()

        async def never(symbol, limit=1000, on_body=None):
            await gate.wait()

        p.fake.depth = never
        p.fetcher.fetch(ev.FetchSnapshot(epoch=p.engine.epoch, symbol="BTCUSDT", request_id=1))
        p.fetcher.fetch(ev.FetchSnapshot(epoch=p.engine.epoch, symbol="ETHUSDT", request_id=2))
        await wait_for(lambda: p.scheduler.budget.in_flight == 1, 5, "one in flight, one queued")

        p.fetcher.cancel_all()
        await wait_for(lambda: p.scheduler.budget.in_flight == 0, 5, "the fetch cancelled")

    assert p.scheduler.budget.waiting == 0 and not p.inbox.bulk and p.failures == []


async def test_an_awaited_acquisition_waits_for_its_weight_and_reports_its_answer():
    async with Parts(limit=10) as p:
        grant = await asyncio.wait_for(p.scheduler.acquire(("klines", 1), 10), 5)
        second = asyncio.ensure_future(p.scheduler.acquire(("klines", 2), 10))
        await asyncio.sleep(0.01)
        assert not second.done()  # the minute's weight is spent

        p.scheduler.answered(grant, 200)
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)

    assert p.scheduler.budget.waiting == 0

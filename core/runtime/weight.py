"""The REST request-weight scheduler and the snapshot fetches it lets out.

`WeightScheduler` runs the sans-I/O planner (`epochbot.runtime.budget.WeightBudget`): requests are
submitted with a key, a weight, a priority and a handler; ``run`` grants what the venue's
per-minute weight allows and calls each granted request's handler, then sleeps until the planner
may allow more (or is woken by a submission or an answer). It tells the engine which books wait
for weight (``SnapshotBudget``: the engine says so in its confidence reasons). Requests outside
the snapshot queue (kline backfill) ``acquire`` their weight and wait for it.

`SnapshotFetcher` executes ``FetchSnapshot``: the request is queued in the scheduler (traded and
invalid books first, at most ``snapshot_concurrency`` in flight), then one task per granted
request fetches the depth. The answer (or failure, with Binance's ``Retry-After``) comes back as a
control event tagged with the epoch it was requested for, on the inbox's bulk lane.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from epochbot.engine.engine import Engine
from epochbot.model import events as ev
from epochbot.runtime.budget import Grant, WeightBudget, depth_weight
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.publish import RuntimeLog
from epochbot.runtime.streams import StreamPlan
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.venue_rest import VenueRest
from epochbot.venues.binance.rest import RestError

__all__ = ["OnGrant", "SnapshotFetcher", "WeightScheduler"]

OnGrant = Callable[[Grant, int], None]  # (the grant, now): called by the scheduler when it may go out


class WeightScheduler:
    def __init__(
        self,
        budget: WeightBudget,
        *,
        inbox: Inbox,
        rest: VenueRest,
        clock: Callable[[], int],
        clock_offset_ns: Callable[[], int],
    ) -> None:
        self.budget = budget
        self.inbox = inbox
        self.rest = rest
        self.clock = clock
        self.clock_offset_ns = clock_offset_ns
        self._wake = asyncio.Event()
        self._reported: tuple[str, ...] = ()

    def submit(self, key, weight: int, on_grant: OnGrant, *, priority: tuple = (), not_before_ns: int = 0) -> None:
        self.budget.submit(key, weight, on_grant, priority=priority, not_before_ns=not_before_ns, now_ns=self.clock())
        self._wake.set()

    def cancel(self, key) -> None:
        self.budget.cancel(key)

    def cancel_depth(self) -> None:
        """Forget every queued snapshot request (the session they were for is gone)."""
        for key in [k for k in self.budget.waiting_keys() if k[0] == "depth"]:
            self.budget.cancel(key)
        self.report()

    def release(self, grant: Grant, now_ns: int) -> None:
        """A granted request that was never sent."""
        self.budget.done(grant, status=0, now_ns=now_ns)

    def answered(self, grant: Grant, status: int, retry_after_ms: int = 0) -> None:
        rest = self.rest.opened
        self.budget.done(
            grant,
            status=status,
            used_weight=rest.used_weight if rest is not None else None,
            retry_after_ms=retry_after_ms,
            now_ns=self.clock(),
        )
        self._wake.set()

    async def acquire(self, key, weight: int) -> Grant:
        """Wait until the planner grants ``weight`` (report the answer with `answered`)."""
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()

        def granted(grant: Grant, now_ns: int) -> None:
            if future.done():
                self.release(grant, now_ns)
            else:
                future.set_result(grant)

        self.submit(key, weight, granted, priority=(0, 0))
        try:
            return await future
        except asyncio.CancelledError:
            self.budget.cancel(key)
            raise

    def report(self) -> None:
        """Tell the engine which books wait for weight (when that changed)."""
        budget = self.budget
        waiting = tuple(k[1] for k in budget.waiting_keys() if k[0] == "depth")
        if waiting == self._reported:
            return
        self._reported = waiting
        now = self.clock()
        self.inbox.put_control(
            ev.SnapshotBudget(recv_ts=now, waiting=waiting, used=budget.used(now), cap=budget.config.cap)
        )

    async def run(self) -> None:
        """Grant what the planner allows, then sleep until it may allow more (or is woken)."""
        budget, wake, clock = self.budget, self._wake, self.clock
        while True:
            wake.clear()
            now = clock()
            budget.offset_ns = self.clock_offset_ns()
            for grant in budget.poll(now):
                on_grant: OnGrant = grant.payload[1]
                on_grant(grant, now)
            self.report()
            nxt = budget.next_wakeup_ns(clock())
            timeout = None if nxt is None else max(0.001, (nxt - clock()) / 1e9)
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                pass


class SnapshotFetcher:
    def __init__(
        self,
        *,
        scheduler: WeightScheduler,
        rest: VenueRest,
        engine: Engine,
        inbox: Inbox,
        tasks: TaskSupervisor,
        plan: StreamPlan,
        clock: Callable[[], int],
        log: RuntimeLog,
    ) -> None:
        self.scheduler = scheduler
        self.rest = rest
        self.engine = engine
        self.inbox = inbox
        self.tasks = tasks
        self.plan = plan
        self.clock = clock
        self.log = log
        self._in_flight: dict[str, asyncio.Task] = {}

    def fetch(self, command: ev.FetchSnapshot) -> None:
        """Queue the request in the scheduler; it is sent when the weight allows."""
        previous = self._in_flight.pop(command.symbol, None)
        if previous is not None and not previous.done():
            previous.cancel()
        symbol = command.symbol
        state = self.engine.symbols.get(symbol)
        invalid_in_session = state is not None and state.resync is not None
        priority = (0 if self.plan.is_traded(symbol) else 1, 0 if invalid_in_session else 1)
        rest = self.rest.opened
        limit = rest.depth_limit(command.limit) if rest is not None else command.limit
        weight = depth_weight(self.plan.config.venue.market, limit)
        not_before = self.clock() + int(command.delay_ms * 1_000_000)
        self.scheduler.submit(
            ("depth", symbol), weight, partial(self._granted, command), priority=priority, not_before_ns=not_before
        )

    def cancel_all(self) -> None:
        """Every fetch in flight and every queued request (a new session resnapshots everything)."""
        for task in self._in_flight.values():
            task.cancel()
        self._in_flight.clear()
        self.scheduler.cancel_depth()

    def _granted(self, command: ev.FetchSnapshot, grant: Grant, now_ns: int) -> None:
        if command.epoch != self.engine.epoch:
            self.scheduler.release(grant, now_ns)  # never sent
            return
        self._in_flight[command.symbol] = self.tasks.spawn(self._snapshot(command, grant), f"snapshot-{command.symbol}")

    async def _snapshot(self, command: ev.FetchSnapshot, grant: Grant) -> None:
        rest = self.rest.client
        started = self.clock()
        status = 0
        retry_after = 0
        try:
            last_id, bids, asks, exch_ts = await rest.depth(command.symbol, command.limit)
            status = 200
        except RestError as exc:
            status, retry_after = exc.status, exc.retry_after_ms
            if exc.status in (429, 418):
                self.log(
                    "error",
                    "venue refused a request for weight",
                    status=exc.status,
                    symbol=command.symbol,
                    retry_after_ms=exc.retry_after_ms,
                    used_weight=rest.used_weight,
                )
            self.inbox.put_control(
                ev.SnapshotFailed(
                    epoch=command.epoch,
                    recv_ts=self.clock(),
                    symbol=command.symbol,
                    request_id=command.request_id,
                    reason=str(exc),
                    retry_after_ms=exc.retry_after_ms,
                )
            )
            return
        finally:
            self.scheduler.answered(grant, status, retry_after)
        now = self.clock()
        self.inbox.put_bulk(
            ev.SnapshotReady(
                epoch=command.epoch,
                recv_ts=now,
                symbol=command.symbol,
                request_id=command.request_id,
                last_update_id=last_id,
                bids=bids,
                asks=asks,
                exchange_ts=exch_ts,
                fetch_ms=(now - started) / 1e6,
            )
        )

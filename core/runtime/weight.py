"""The REST request-weight planner and the snapshot fetches it lets out.

``FetchSnapshot`` is queued in `epochbot.runtime.budget.WeightBudget`, which lets it go out when the venue's
per-minute weight allows (traded and invalid books first, at most ``snapshot_concurrency`` at a
time); then one task per request. The answer (or failure, with Binance's ``Retry-After``) comes
back as a control event tagged with the epoch it was requested for, on the inbox's bulk lane.
Other requests (kline backfill) take their weight from the same planner with ``acquire_weight``.

A mixin of `epochbot.runtime.runtime.Runtime` (the state it reads and writes is the runtime's; see its
theory of operation).
"""

from __future__ import annotations

import asyncio

from epochbot.model import events as ev
from epochbot.runtime.budget import Grant, depth_weight
from epochbot.venues.binance.rest import RestError

__all__ = ["RestScheduler"]


class RestScheduler:
    """Part of `epochbot.runtime.runtime.Runtime` (a mixin: no state of its own)."""

    def _fetch_snapshot(self, command: ev.FetchSnapshot) -> None:
        """Queue the request in the weight planner; `_budget_loop` sends it when it may."""
        previous = self._snapshot_tasks.pop(command.symbol, None)
        if previous is not None and not previous.done():
            previous.cancel()
        now = self.clock()
        symbol = command.symbol
        state = self.engine.symbols.get(symbol)
        invalid_in_session = state is not None and state.resync is not None
        priority = (0 if self._is_traded(symbol) else 1, 0 if invalid_in_session else 1)
        weight = depth_weight(
            self.config.venue.market, self.rest.depth_limit(command.limit) if self.rest else command.limit
        )
        not_before = now + int(command.delay_ms * 1_000_000)
        self.budget.submit(("depth", symbol), weight, command, priority=priority, not_before_ns=not_before, now_ns=now)
        self._budget_wake.set()

    def _is_traded(self, symbol: str) -> bool:
        traded = self.config.traded_symbols
        if traded is not None:
            return symbol in traded
        return self.config.trading is not None

    def _cancel_queued_snapshots(self) -> None:
        for key in [k for k in self.budget.waiting_keys() if k[0] == "depth"]:
            self.budget.cancel(key)
        self._report_budget()

    def _report_budget(self) -> None:
        """Tell the engine which books wait for weight (it says so in confidence reasons)."""
        waiting = tuple(k[1] for k in self.budget.waiting_keys() if k[0] == "depth")
        if waiting == self._budget_reported:
            return
        self._budget_reported = waiting
        now = self.clock()
        self.inbox.put_control(
            ev.SnapshotBudget(recv_ts=now, waiting=waiting, used=self.budget.used(now), cap=self.budget.config.cap)
        )

    async def _budget_loop(self) -> None:
        """Grant what the planner allows, then sleep until it may allow more (or is woken)."""
        budget, wake = self.budget, self._budget_wake
        while True:
            wake.clear()
            now = self.clock()
            budget.offset_ns = self.engine.telemetry.clock_offset_ns
            for grant in budget.poll(now):
                command = grant.payload[1]
                if isinstance(command, ev.FetchSnapshot):
                    if command.epoch != self.engine.epoch:
                        budget.done(grant, status=0, now_ns=now)  # never sent
                        continue
                    self._snapshot_tasks[command.symbol] = self._spawn(
                        self._snapshot(command, grant), f"snapshot-{command.symbol}"
                    )
                else:  # an awaited acquisition (kline backfill)
                    if not command.done():
                        command.set_result(grant)
                    else:
                        budget.done(grant, status=0, now_ns=now)
            self._report_budget()
            nxt = budget.next_wakeup_ns(self.clock())
            timeout = None if nxt is None else max(0.001, (nxt - self.clock()) / 1e9)
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                pass

    async def acquire_weight(self, key, weight: int) -> Grant:
        """Wait until the planner grants ``weight`` (for requests outside the snapshot queue);
        report the answer with ``self.budget.done``."""
        future = asyncio.get_running_loop().create_future()
        self.budget.submit(key, weight, future, priority=(0, 0), now_ns=self.clock())
        self._budget_wake.set()
        try:
            return await future
        except asyncio.CancelledError:
            self.budget.cancel(key)
            raise

    def _weight_answered(self, grant: Grant, status: int, retry_after_ms: int = 0) -> None:
        rest = self.rest
        self.budget.done(
            grant,
            status=status,
            used_weight=rest.used_weight if rest is not None else None,
            retry_after_ms=retry_after_ms,
            now_ns=self.clock(),
        )
        self._budget_wake.set()

    async def _snapshot(self, command: ev.FetchSnapshot, grant: Grant) -> None:
        started = self.clock()
        status = 0
        retry_after = 0
        try:
            last_id, bids, asks, exch_ts = await self.rest.depth(command.symbol, command.limit)
            status = 200
        except RestError as exc:
            status, retry_after = exc.status, exc.retry_after_ms
            if exc.status in (429, 418):
                self._runtime_log(
                    "error",
                    "venue refused a request for weight",
                    status=exc.status,
                    symbol=command.symbol,
                    retry_after_ms=exc.retry_after_ms,
                    used_weight=self.rest.used_weight,
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
            self._weight_answered(grant, status, retry_after)
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

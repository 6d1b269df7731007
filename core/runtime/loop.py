"""The strategy loop: one consumer takes events from the `Inbox` control-first, hands each to
``Engine.handle``, executes the returned commands, and at most ``snapshot_hz`` times a second
publishes an immutable `WorldSnapshot` (``self.latest``) and the engine's log records. The timer,
the server-time offset and the heap freeze after the first sync run beside it.

A mixin of `epochbot.runtime.runtime.Runtime` (the state it reads and writes is the runtime's; see its
theory of operation).
"""

from __future__ import annotations

import asyncio
import gc
import logging

from epochbot.model import events as ev
from epochbot.runtime.data_errors import handle_failure
from epochbot.runtime.loop_load import LoopLoad, timer_tick
from epochbot.venues.binance.rest import RestError

log = logging.getLogger("epochbot.runtime")

__all__ = ["ConsumeLoop"]


class ConsumeLoop:
    """Part of `epochbot.runtime.runtime.Runtime` (a mixin: no state of its own)."""

    async def _consume(self) -> int:
        engine = self.engine
        inbox = self.inbox
        wakeup = self._wakeup
        handle = engine.handle
        publish_every = int(1e9 / self.config.snapshot_hz)
        next_publish = self.clock() + publish_every
        processed = 0
        journal = self.journal
        while True:
            event = inbox.next()
            if event is None:
                wakeup.clear()
                if not len(inbox):
                    await wakeup.wait()
                continue
            try:
                if journal is not None and type(event) is ev.SnapshotReady:
                    commands = self._handle_timed(event)  # journals it with its measured rebuild time
                else:
                    commands = handle(event)
                    if journal is not None:  # the single consumption point: recorded as consumed
                        self._journal_consumed(event)
            except Exception as exc:  # a data error is counted and repaired; an invariant violation exits 3
                if journal is not None and type(event) is not ev.SnapshotReady:
                    self._journal_consumed(event)  # replay meets the same failure and the same repair
                commands = handle_failure(engine, event, exc)
            if commands:
                code = self._execute(commands)
                if code is not None:
                    self._drain_logs()
                    self._publish(exact=True)
                    return code
            if engine.pending_log:
                self._drain_logs()
            if self.writer is not None and event.kind != "market":
                self._persist()
            processed += 1
            if processed & 255 == 0:
                await asyncio.sleep(0)  # let readers and timers run during a burst
            if event.kind == "control" or processed & 63 == 0:
                now = self.clock()
                if now >= next_publish:
                    self._publish()
                    # Publishing must not eat the loop (hundreds of symbols): at most ~5 % of it.
                    next_publish = now + max(publish_every, 20 * (self.clock() - now))

    def _publish(self, exact: bool = False) -> None:
        journal = self.journal
        if journal is not None:  # rows the journal could not write: that run is not exact
            if journal.dropped != self.engine.counters.get("journal_dropped", 0):
                self._runtime_log(
                    "error",
                    "journal lost rows: this run will not replay exactly",
                    dropped=journal.dropped,
                    error=journal.last_error,
                )
            self.engine.counters["journal_dropped"] = journal.dropped
        snapshot = self.builder.build(self.engine, self.engine.trader, exact=exact)
        self.latest = snapshot
        for callback in self._snapshot_listeners:
            try:
                callback(snapshot)
            except Exception:  # a broken reader must not take the core down
                log.exception("snapshot listener failed")

    def _drain_logs(self) -> None:
        records = self.engine.drain_log()
        for callback in self._log_listeners:
            for record in records:
                try:
                    callback(record)
                except Exception:
                    log.exception("log listener failed")

    def _runtime_log(self, level: str, msg: str, **fields) -> None:
        self.engine.log_event(level, msg, source="runtime", **fields)

    async def _freeze_heap_when_synced(self) -> None:
        """Move everything alive after the first sync (modules, aiohttp, the simulator, the
        books) to the permanent generation. Without it, a full (gen-2) collection of that heap
        runs every ~100 young collections, and since parsing a 1000-level snapshot is what
        allocates the most, it lands inside a resync: 20-60 ms (bench/resync.py --trace)."""
        engine = self.engine
        while not (engine.symbols and all(s.book.synced for s in engine.symbols.values())):
            await asyncio.sleep(0.05)
        gc.collect()
        gc.freeze()
        self._runtime_log("debug", "heap frozen after first sync", frozen=gc.get_freeze_count())

    async def _timer(self) -> None:
        interval = self.config.tick_ms / 1000
        put = self.inbox.put_control
        load = LoopLoad()
        load.install(asyncio.get_running_loop())  # issue 14: our backlog is not the venue's lag
        while True:
            await asyncio.sleep(interval)
            put(timer_tick(self.clock(), self.inbox, load))

    async def _measure_clock_offset(self) -> None:
        """One server-time measurement, applied (and journaled, as replay applies it) before
        anything is signed: the start-up reconciliation signs with the runtime's clock plus this
        offset, and Binance refuses a timestamp 1 s ahead of its clock or older than recvWindow."""
        try:
            offset, rtt = await self.rest.server_time_offset(self.clock)
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self._runtime_log("warn", "server time unavailable: signing with the local clock", error=str(exc))
            return
        event = ev.ClockOffsetMeasured(recv_ts=self.clock(), offset_ms=offset, rtt_ms=rtt)
        self.engine.handle(event)
        if self.journal is not None:
            self.journal.event(event)

    async def _clock_offset_loop(self) -> None:
        while True:
            try:
                offset, rtt = await self.rest.server_time_offset(self.clock)
                self.inbox.put_control(ev.ClockOffsetMeasured(recv_ts=self.clock(), offset_ms=offset, rtt_ms=rtt))
            except (RestError, ValueError, KeyError, TypeError) as exc:
                self._runtime_log("warn", "server time unavailable", error=str(exc))
            await asyncio.sleep(self.config.clock_offset_interval_s)

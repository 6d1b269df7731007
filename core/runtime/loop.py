"""The strategy loop: one consumer takes events from the `Inbox` control-first, hands each to
``Engine.handle``, executes the returned commands (`epochbot.runtime.commands.CommandRouter`),
queues durable records after every non-market event, and at most ``snapshot_hz`` times a second
publishes an immutable `WorldSnapshot` (`epochbot.runtime.publish.Publisher`).

A handler that raises is routed by `epochbot.runtime.data_errors.handle_failure`: a data error is
repaired and the loop goes on; a defect stops trading (the commands it returns end the loop with
exit code 3), and its report - traceback and state - is journaled as a ``defect`` row after the
event that caused it. The same applies to events handed to the engine outside the loop
(`consume_outside_loop`, the shutdown drain), so a replay meets the same failures.

`Timer` (the engine's tick) and `freeze_heap_when_synced` run beside the loop.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

from epochbot.engine.engine import Engine
from epochbot.model import events as ev
from epochbot.runtime.commands import CommandRouter
from epochbot.runtime.data_errors import defect_report, handle_failure, is_data_error
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.loop_load import LoopLoad, timer_tick
from epochbot.runtime.publish import Publisher, RuntimeLog
from epochbot.runtime.recorder import InputRecorder

__all__ = ["ConsumeLoop", "Timer", "freeze_heap_when_synced"]


class ConsumeLoop:
    def __init__(
        self,
        *,
        engine: Engine,
        inbox: Inbox,
        router: CommandRouter,
        publisher: Publisher,
        recorder: InputRecorder,
        durable: DurableSink,
        clock: Callable[[], int],
        snapshot_hz: float,
    ) -> None:
        self.engine = engine
        self.inbox = inbox
        self.router = router
        self.publisher = publisher
        self.recorder = recorder
        self.durable = durable
        self.clock = clock
        self.snapshot_hz = snapshot_hz
        self.wakeup = asyncio.Event()
        inbox.wake = self.wakeup.set

    async def run(self) -> int:
        """Consume until a ``Stop``; its exit code."""
        engine = self.engine
        inbox = self.inbox
        wakeup = self.wakeup
        handle = engine.handle
        execute = self.router.execute
        publisher = self.publisher
        clock = self.clock
        publish_every = int(1e9 / self.snapshot_hz)
        next_publish = clock() + publish_every
        processed = 0
        recorder = self.recorder
        journal = recorder.journal
        consumed = recorder.consumed
        persist = self.durable.persist if self.durable.enabled else None
        SnapshotReady = ev.SnapshotReady
        while True:
            event = inbox.next()
            if event is None:
                wakeup.clear()
                if not len(inbox):
                    await wakeup.wait()
                continue
            try:
                if journal is not None and type(event) is SnapshotReady:
                    commands = recorder.handle_timed(event)  # journals it with its measured rebuild time
                else:
                    commands = handle(event)
                    if journal is not None:  # the single consumption point: recorded as consumed
                        consumed(event)
            except Exception as exc:  # noqa: BLE001 - routed: a data error is repaired, a defect is fatal
                commands = self.failed(event, exc, journaled=journal is not None and type(event) is SnapshotReady)
            if commands:
                code = execute(commands)
                if code is not None:
                    publisher.drain_logs()
                    publisher.publish(exact=True)
                    return code
            if engine.pending_log:
                publisher.drain_logs()
            if persist is not None and event.kind != "market":
                persist()
            processed += 1
            if processed & 255 == 0:
                await asyncio.sleep(0)  # let readers and timers run during a burst
            if event.kind == "control" or processed & 63 == 0:
                now = clock()
                if now >= next_publish:
                    publisher.publish()
                    # Publishing must not eat the loop (hundreds of symbols): at most ~5 % of it.
                    next_publish = now + max(publish_every, 20 * (clock() - now))

    def failed(self, event, exc: Exception, *, journaled: bool = False) -> list:
        """A handler raised ``exc`` on ``event``: journal the event as consumed (unless it is
        already), route the failure, and journal a defect's report after it."""
        recorder = self.recorder
        if not journaled:
            recorder.consumed(event)  # replay meets the same failure and the same repair
        commands = handle_failure(self.engine, event, exc)
        if not is_data_error(exc) and recorder.journal is not None:
            recorder.row({"k": "defect", "p": self.clock(), **defect_report(self.engine, event, exc)})
        return commands

    def consume_outside_loop(self, event) -> None:
        """One event handed to the engine outside the loop (the shutdown path), journaled and
        its failure routed exactly as the loop does, so a replay ends in the same state. Its
        commands are not executed (the loop has ended)."""
        try:
            self.engine.handle(event)
        except Exception as exc:  # noqa: BLE001 - routed as in the loop
            self.failed(event, exc)
            return
        self.recorder.consumed(event)


class Timer:
    """The engine's tick every ``tick_ms``, with the loop's own load measured (issue 14: our
    backlog is not the venue's lag)."""

    def __init__(self, inbox: Inbox, clock: Callable[[], int], tick_ms: float) -> None:
        self.inbox = inbox
        self.clock = clock
        self.tick_ms = tick_ms

    async def run(self) -> None:
        interval = self.tick_ms / 1000
        put = self.inbox.put_control
        load = LoopLoad()
        load.install(asyncio.get_running_loop())
        while True:
            await asyncio.sleep(interval)
            put(timer_tick(self.clock(), self.inbox, load))


async def freeze_heap_when_synced(engine: Engine, log: RuntimeLog) -> None:
    """Move everything alive after the first sync (modules, aiohttp, the books) to the permanent
    generation. Without it, a full (gen-2) collection of that heap runs every ~100 young
    collections, and since parsing a 1000-level snapshot is what allocates the most, it lands
    inside a resync: 20-60 ms (bench/resync.py --trace)."""
    while not (engine.symbols and all(s.book.synced for s in engine.symbols.values())):
        await asyncio.sleep(0.05)
    gc.collect()
    gc.freeze()
    log("debug", "heap frozen after first sync", frozen=gc.get_freeze_count())

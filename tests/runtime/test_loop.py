"""The strategy loop driven alone: events in, commands routed, a data error repaired and the loop
going on, a defect ending it with exit 3 and a journaled report right after its event."""

from __future__ import annotations

import asyncio
import json

from epochbot.engine.engine import FATAL_EXIT_CODE
from epochbot.model import events as ev
from epochbot.model.numeric import DecimalFormatError
from epochbot.runtime.commands import CommandRouter
from epochbot.runtime.config import JournalConfig
from epochbot.runtime.durable import DurableSink
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.loop import ConsumeLoop
from epochbot.runtime.publish import Publisher
from epochbot.runtime.recorder import InputRecorder
from epochbot.views.snapshot import SnapshotBuilder
from tests.core.test_hostile_input import SYM, trading_engine
from tests.helpers import wait_for
from tests.runtime.fakes import VENUE, LogSpy


class Loop:
    """A ConsumeLoop over a started trading engine; ``poison`` maps events to what handling them raises."""

    def __init__(self, journal: JournalConfig | None = None) -> None:
        self.engine = engine = trading_engine()
        self.inbox = Inbox(100)
        self.routed: list = []
        self.poison: dict[int, Exception] = {}
        original = engine.handle

        def handle(event):
            exc = self.poison.pop(id(event), None)
            if exc is not None:
                raise exc
            return original(event)

        engine.handle = handle
        self.recorder = InputRecorder(journal, engine=engine, inbox=self.inbox, venue=VENUE, symbols=(SYM,))
        self.recorder.open()
        self.publisher = Publisher(engine, SnapshotBuilder("test"), self.recorder)
        table = {kind: self.routed.append for kind in (ev.FetchSnapshot, ev.CloseConnection, ev.PlaceOrder)}
        self.router = CommandRouter(table, log=LogSpy())
        self.loop = ConsumeLoop(
            engine=engine,
            inbox=self.inbox,
            router=self.router,
            publisher=self.publisher,
            recorder=self.recorder,
            durable=DurableSink(engine, LogSpy()),
            clock=engine.clock,
            snapshot_hz=20.0,
        )

    def put(self, event, raises: Exception | None = None):
        if raises is not None:
            self.poison[id(event)] = raises
        if event.kind == "market":
            self.inbox.put_market(event, '{"poisoned":true}')
        else:
            self.inbox.put_control(event)
        return event


async def test_a_data_error_is_repaired_by_its_route_and_the_loop_goes_on_until_stopped():
    t = Loop()
    running = asyncio.ensure_future(t.loop.run())
    t.put(ev.DepthDiff(t.engine.epoch, SYM, 200, 201, 100, [], [], 1, 2), raises=DecimalFormatError("'1e5'"))
    await wait_for(lambda: t.engine.counters.get("handler_data_errors"), 5, "the data error handled")
    t.put(ev.ShutdownRequested(reason="test over"))  # control goes first: only now

    code = await asyncio.wait_for(running, 5)

    assert code == 0 and t.engine.fatal is None
    assert t.engine.counters["handler_data_errors"] == 1
    assert [type(c) for c in t.routed] == [ev.FetchSnapshot, ev.CloseConnection]  # the resync, then the stop's close
    assert t.publisher.latest is not None and t.publisher.latest.fatal is None


async def test_a_defect_ends_the_loop_with_exit_3_and_its_report_follows_its_event_in_the_journal(tmp_path):
    t = Loop(JournalConfig(str(tmp_path)))
    t.put(ev.OperatorPause(paused=True), raises=AttributeError("'NoneType' object has no attribute 'pause'"))
    t.put(ev.ShutdownRequested(reason="never reached"))

    code = await asyncio.wait_for(t.loop.run(), 5)
    t.recorder.journal.close()

    assert code == FATAL_EXIT_CODE and t.router.exit_code == FATAL_EXIT_CODE
    assert t.publisher.latest.fatal.startswith("defect handling OperatorPause: AttributeError")
    assert t.publisher.latest.mode.mode == "halted"
    assert list(t.inbox.control) and type(t.inbox.control[0]) is ev.ShutdownRequested  # nothing after the defect
    rows = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()[1:]]
    assert [r.get("t", r["k"]) for r in rows] == ["OperatorPause", "defect"]
    assert "AttributeError" in rows[1]["traceback"] and rows[1]["mode"] == "halted"


async def test_a_defect_on_a_market_event_is_fatal_too():
    t = Loop()
    t.put(ev.MarkPrice(t.engine.epoch, SYM, "1", "1", "0", 0, 1, 2), raises=KeyError("BTCUSDT"))

    code = await asyncio.wait_for(t.loop.run(), 5)

    assert code == FATAL_EXIT_CODE and t.engine.fatal.startswith("defect handling MarkPrice: KeyError")


async def test_outside_the_loop_a_defect_is_routed_and_journaled_the_same_way(tmp_path):
    t = Loop(JournalConfig(str(tmp_path)))
    event = ev.OperatorPause(paused=True)
    t.poison[id(event)] = KeyError("x")

    t.loop.consume_outside_loop(event)
    t.recorder.journal.close()

    assert t.engine.fatal.startswith("defect handling OperatorPause")
    rows = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()[1:]]
    assert [r.get("t", r["k"]) for r in rows] == ["OperatorPause", "defect"]

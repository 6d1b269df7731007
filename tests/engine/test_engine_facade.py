"""The Engine facade: its dispatch covers every event, and what it hands its parts stays current."""

from __future__ import annotations

import inspect

from epochbot.engine.engine import Engine, EngineConfig
from epochbot.engine.session import SessionState
from epochbot.model import events as ev
from tests.core._support import FakeClock
from tests.engine.test_trader_bridge import RecordingTrader

SYM = "BTCUSDT"


def engine_and_clock() -> tuple[Engine, FakeClock]:
    clock = FakeClock()
    return Engine(EngineConfig(symbols=(SYM,)), clock), clock


def test_every_control_event_has_a_handler():
    engine, _ = engine_and_clock()
    control_events = {cls for _, cls in inspect.getmembers(ev, inspect.isclass) if issubclass(cls, ev.ControlEvent)} - {
        ev.ControlEvent
    }

    assert control_events == set(engine.control_handlers)


def test_the_session_lifecycle_is_read_from_the_machine():
    engine, clock = engine_and_clock()
    engine.start()
    dialing = (engine.session_state, engine.session_open, engine.subscribed)

    engine.handle(ev.SessionOpened(epoch=1, url="wss://x"))
    engine.handle(ev.SubscriptionConfirmed(epoch=1))

    assert dialing == (SessionState.DIALING, False, False)
    assert (engine.session_state, engine.session_open, engine.subscribed, engine.epoch) == (
        SessionState.SUBSCRIBED,
        True,
        True,
        1,
    )


def test_a_clock_replaced_after_construction_stamps_the_log_and_times_the_rebuild():
    engine, clock = engine_and_clock()

    engine.clock = lambda: 42  # the runtime pins the clock for start()
    engine.start()

    assert engine.log[-1].ts_ns == 42
    assert engine.epochs[-1].requested_ns == 42


def test_a_trader_attached_after_construction_is_the_one_the_operator_reaches():
    engine, _ = engine_and_clock()
    trader = RecordingTrader()

    engine.trader = trader
    engine.handle(ev.OperatorPause(paused=True))

    assert engine.trader is trader
    assert engine.paused and trader.calls == [("pause", True)]


def test_market_data_after_a_stop_is_discarded_whatever_its_epoch():
    engine, _ = engine_and_clock()
    engine.start()
    engine.handle(ev.ShutdownRequested(reason="test"))

    commands = engine.handle(ev.DepthDiff(1, SYM, 1, 2, 0, [], [], 0, 0))

    assert commands == ()
    assert engine.counters["discarded_stale_epoch"] == 1


def test_a_pause_still_holds_after_a_stop():
    engine, _ = engine_and_clock()
    engine.handle(ev.ShutdownRequested(reason="test"))

    engine.handle(ev.OperatorPause(paused=True))

    assert engine.stopped and engine.paused


def test_the_runtime_writes_its_own_lines_and_its_fatal_stops_through_the_public_surface():
    engine, clock = engine_and_clock()
    engine.start()

    engine.log_event("warn", "runtime line", source="runtime")
    commands = engine.go_fatal(clock(), "invariant violated")

    assert [(r.msg, r.fields.get("source")) for r in engine.log][-2:] == [
        ("runtime line", "runtime"),
        ("fatal state corruption: trading stopped", None),
    ]
    assert [type(c) for c in commands] == [ev.CloseConnection, ev.Stop]
    assert commands[1].exit_code == 3 and engine.fatal == "invariant violated" and engine.stopped

"""Every route of a handler's failure: a data error is repaired by the event's route (a market
event resyncs its book, a trading event reconciles its order); a defect on any kind of event -
market, control, timer, operator, trading - stops trading at once (mode halted, exit 3) and says
why with the traceback and the state."""

from __future__ import annotations

import pytest

from epochbot.book.book import BookState, IllegalTransition
from epochbot.engine.engine import FATAL_EXIT_CODE
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.numeric import DecimalFormatError
from epochbot.model.trade_checks import TradeCheckError
from epochbot.runtime.data_errors import defect_report, handle_failure
from tests.core.test_hostile_input import SYM, trader_engine_with_order, trading_engine


def raised(exc: Exception) -> Exception:
    """``exc`` with a traceback, as a handler leaves it."""
    try:
        raise exc
    except Exception as caught:  # noqa: BLE001 - the point is to keep it
        return caught


def test_a_data_error_on_a_market_event_invalidates_its_book_and_asks_for_a_snapshot():
    engine = trading_engine()
    diff = ev.DepthDiff(engine.epoch, SYM, 200, 201, 199, [["100.001", "1"]], [], 1, 2)

    commands = handle_failure(engine, diff, raised(DecimalFormatError("'100.001' has more than 2 decimals")))

    assert [type(c) for c in commands] == [ev.FetchSnapshot]
    assert engine.symbols[SYM].book.state is BookState.INVALID
    assert engine.counters["handler_data_errors"] == 1 and engine.fatal is None


def test_a_data_error_on_a_trading_event_reconciles_its_order_from_the_venue():
    engine, coid = trader_engine_with_order()
    update = tev.OrderUpdate(ts_ns=engine.trader.now_ns, client_order_id=coid, status="NEW")

    commands = handle_failure(engine, update, raised(TradeCheckError("order update with a bad status")))

    assert [type(c) for c in commands] == [tev.QueryOrder]
    assert engine.trader.orders.orders[coid].state.value == "UNKNOWN"
    assert engine.counters["handler_data_errors"] == 1 and engine.fatal is None


def test_a_data_error_on_a_control_event_is_only_counted():
    engine = trading_engine()

    commands = handle_failure(engine, ev.SnapshotReady(epoch=engine.epoch, symbol=SYM), raised(DecimalFormatError("x")))

    assert commands == [] and engine.counters["handler_data_errors"] == 1 and engine.fatal is None


DEFECTS = [
    ("market", lambda e: ev.AggTrade(e.epoch, SYM, 1, "100.0", "1", True, 1, 1, 2), AttributeError("no 'levels'")),
    ("control", lambda e: ev.SnapshotReady(epoch=e.epoch, symbol=SYM), KeyError("BTCUSDT")),
    ("timer", lambda e: ev.TimerTick(), TypeError("unsupported operand")),
    ("operator", lambda e: ev.OperatorPause(paused=True), AttributeError("'NoneType' has no attribute 'pause'")),
    ("trading", lambda e: tev.OrderUpdate(ts_ns=1, client_order_id="eb1-0", status="NEW"), ZeroDivisionError("x")),
]


@pytest.mark.parametrize("kind, build, exc", DEFECTS, ids=[d[0] for d in DEFECTS])
def test_a_defect_on_any_kind_of_event_stops_trading_with_exit_3(kind, build, exc):
    engine, coid = trader_engine_with_order()
    event = build(engine)

    commands = handle_failure(engine, event, raised(exc))

    assert [type(c) for c in commands] == [ev.CloseConnection, ev.Stop]
    assert commands[-1].exit_code == FATAL_EXIT_CODE
    assert engine.fatal.startswith(f"defect handling {type(event).__name__}: {type(exc).__name__}")
    assert engine.stopped and engine.mode.value == "halted"
    assert engine.counters.get("handler_data_errors", 0) == 0
    record = next(r for r in engine.log if r.msg == "defect: trading stopped")
    assert record.level == "critical" and record.fields["event"] == type(event).__name__
    assert "Traceback" in record.fields["traceback"] and type(exc).__name__ in record.fields["traceback"]
    assert record.fields["working_orders"] == [coid] and record.fields["state_hash"]


def test_an_invariant_violation_is_fatal_and_says_so():
    engine = trading_engine()

    commands = handle_failure(engine, ev.OperatorPause(paused=True), raised(IllegalTransition("synced --x--> empty")))

    assert commands[-1].exit_code == FATAL_EXIT_CODE and engine.fatal.startswith("invariant violated handling")


def test_a_second_defect_after_the_stop_keeps_the_first_cause():
    engine = trading_engine()
    handle_failure(engine, ev.TimerTick(), raised(KeyError("first")))
    first = engine.fatal

    commands = handle_failure(engine, ev.OperatorPause(paused=True), raised(KeyError("second")))

    assert engine.fatal == first and commands[-1].exit_code == FATAL_EXIT_CODE
    assert any(r.msg == "another defect after the fatal stop" for r in engine.log)


def test_a_strategy_that_breaks_again_while_halting_still_leaves_trading_stopped():
    engine, _ = trader_engine_with_order()

    def broken(mode):
        raise AttributeError("on_mode_change is broken too")

    engine.trader.strategy.on_mode_change = broken

    commands = handle_failure(engine, ev.TimerTick(), raised(AttributeError("on_timer is broken")))

    assert commands[-1].exit_code == FATAL_EXIT_CODE and engine.stopped
    assert engine.fatal.startswith("defect handling TimerTick") and engine.mode.value == "halted"


def test_the_defect_report_carries_the_state_the_handler_left():
    engine, coid = trader_engine_with_order()

    report = defect_report(engine, ev.TimerTick(), raised(KeyError("x")))

    assert report["event"] == "TimerTick" and report["event_kind"] == "control"
    assert report["books"] == {SYM: "synced"} and report["working_orders"] == [coid]
    assert report["positions"] == {SYM: 0} and report["state_hash"] == engine.state_hash()

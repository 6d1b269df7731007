"""Every key and palette command reaches the core as the right control event (via a fake
SnapshotSource: no runtime, no network)."""

from __future__ import annotations

import dataclasses
import os
import signal

import pytest
from textual.widgets import Input, OptionList

from epochbot.model.events import OperatorForceResync, OperatorPause, OperatorSetMode
from epochbot.widgets.event_log import EventLog
from epochbot.widgets.mode_picker import ModePicker
from tests.tui.conftest import make_app
from tests.tui.fixtures import degraded_snapshot, normal_snapshot

SIZE = (80, 24)  # narrow layout renders fastest; the look is pinned by the snapshot tests


def only_event(source):
    assert len(source.events) == 1, source.events
    return source.events[0]


async def test_r_requests_a_resync_of_every_book():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
    event = only_event(source)
    assert isinstance(event, OperatorForceResync) and event.symbol is None and not event.replace_session


async def test_shift_r_resyncs_only_the_selected_symbols_book():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.press("R")
    event = only_event(source)
    assert isinstance(event, OperatorForceResync) and event.symbol == "ETHUSDT" and not event.replace_session


async def test_e_replaces_the_session_for_a_new_epoch():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
    event = only_event(source)
    assert isinstance(event, OperatorForceResync) and event.replace_session


async def test_h_halts_at_once_without_confirmation():
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("h")
    event = only_event(source)
    assert isinstance(event, OperatorSetMode) and event.mode == "halted" and event.source == "operator"


async def test_p_toggles_pause_from_the_snapshots_flag():
    app, source = make_app(normal_snapshot())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        snap = normal_snapshot(seq=9)
        source.snapshot = dataclasses.replace(snap, mode=dataclasses.replace(snap.mode, paused=True))
        app.poll_snapshot()
        await pilot.press("p")
    assert [e.paused for e in source.events] == [True, False]
    assert all(isinstance(e, OperatorPause) for e in source.events)


async def test_m_makes_the_mode_stricter_without_confirmation():
    app, source = make_app(normal_snapshot())  # effective mode: normal
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        assert isinstance(app.screen, ModePicker)
        await pilot.press("down", "down", "enter")  # normal -> cancel-makers
        await pilot.pause()
        assert not isinstance(app.screen, ModePicker)
    event = only_event(source)
    assert isinstance(event, OperatorSetMode) and event.mode == "cancel-makers"


async def test_m_relaxing_the_mode_requires_confirmation():
    app, source = make_app(degraded_snapshot())  # effective mode: cancel-makers
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m")
        picker = app.screen
        assert isinstance(picker, ModePicker)
        assert picker.query_one(OptionList).highlighted == 2
        await pilot.press("up", "up", "enter")  # -> normal: less strict
        await pilot.pause()
        assert picker.has_class("-confirming") and source.events == []
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, ModePicker)
    event = only_event(source)
    assert isinstance(event, OperatorSetMode) and event.mode == "normal"


async def test_m_relaxing_can_be_cancelled():
    app, source = make_app(degraded_snapshot())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("m", "up", "enter")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ModePicker)
    assert source.events == []


async def test_n_cycles_through_the_symbols_and_wraps():
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = [app.symbol]
        for _ in range(2):
            await pilot.press("n")
            seen.append(app.symbol)
        assert app.query_one("#book").border_title == "Order book BTCUSDT"
    assert seen == ["BTCUSDT", "ETHUSDT", "BTCUSDT"]


async def test_t_toggles_between_dark_and_light_themes():
    app, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "epochbot-dark"
        await pilot.press("t")
        assert app.theme == "epochbot-light"
        await pilot.press("t")
        assert app.theme == "epochbot-dark"


async def test_l_cycles_the_log_level_filter_and_hides_lower_levels():
    app, _ = make_app(degraded_snapshot())
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(EventLog)
        await pilot.pause()
        info_lines = log.records_shown  # the default hides debug (order lifecycle) lines
        levels, shown = [], {}
        for _ in range(4):
            await pilot.press("l")
            await pilot.pause()
            levels.append(log.level_filter)
            shown[log.level_filter] = log.records_shown
    assert levels == ["warn", "error", "all", "info"]
    assert info_lines == 6 and shown == {"warn": 3, "error": 1, "all": 7, "info": 6}


async def test_c_shows_only_the_current_epochs_log_lines():
    app, _ = make_app(degraded_snapshot())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await pilot.pause()
        assert app.query_one(EventLog).current_epoch_only
        assert app.query_one(EventLog).records_shown == 3


async def test_event_log_appends_only_records_it_has_not_shown():
    app, source = make_app(normal_snapshot())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        log = app.query_one(EventLog)
        before = log.records_shown
        snap = normal_snapshot(seq=5)
        source.snapshot = dataclasses.replace(snap, log=snap.log[1:] + degraded_snapshot().log[-2:])  # window moved
        app.poll_snapshot()
        await pilot.pause()
        assert log.records_shown == before + 2


async def test_keys_can_be_remapped_from_settings():
    app, source = make_app(keys={"force_resync": "x", "halt": "ctrl+h"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await pilot.press("x")
    event = only_event(source)
    assert isinstance(event, OperatorForceResync)


async def test_q_stops_the_core_and_exits_with_its_code():
    app, source = make_app()
    source.exit_code = 3
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause(0.2)
    assert source.stop_reasons[0] == "operator quit"
    assert app.return_code == 3


async def test_sigterm_takes_the_same_graceful_quit_path():
    app, source = make_app(install_signal_handlers=True)
    async with app.run_test(size=SIZE) as pilot:
        os.kill(os.getpid(), signal.SIGTERM)
        await pilot.pause(0.3)
    assert source.stop_reasons[0] == "SIGTERM"
    assert app.return_code == 0


async def test_snapshots_are_pushed_down_only_when_seq_changes():
    app, source = make_app(normal_snapshot(seq=1))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = app.snapshot
        source.snapshot = normal_snapshot(seq=1)  # equal seq: a new object must not be pushed
        app.poll_snapshot()
        assert app.snapshot is first
        source.snapshot = degraded_snapshot(seq=2)
        app.poll_snapshot()
        assert app.snapshot is source.snapshot


PALETTE = [
    ("Resync all books", lambda e: isinstance(e, OperatorForceResync) and e.symbol is None and not e.replace_session),
    ("Resync selected book", lambda e: isinstance(e, OperatorForceResync) and e.symbol == "BTCUSDT"),
    ("New epoch", lambda e: isinstance(e, OperatorForceResync) and e.replace_session),
    ("Halt trading", lambda e: isinstance(e, OperatorSetMode) and e.mode == "halted"),
    ("Pause / resume strategy", lambda e: isinstance(e, OperatorPause) and e.paused),
]


@pytest.mark.parametrize("title,check", PALETTE, ids=[t for t, _ in PALETTE])
async def test_palette_commands_send_the_same_events_as_the_keys(title, check):
    app, source = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        app.screen.query_one(Input).value = title
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.1)
    assert check(only_event(source))


async def test_palette_offers_every_console_action():
    from epochbot.app.console.tui import ACTIONS

    app, _ = make_app()
    async with app.run_test(size=SIZE):
        titles = {c.title for c in app.get_system_commands(app.screen)}
    # Each with its key, so the palette teaches the shortcut.
    shown_key = {"question_mark": "?"}
    assert {f"{title}  [{shown_key.get(key, key)}]" for _a, key, _l, title, _h in ACTIONS} <= titles

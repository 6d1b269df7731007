"""The console's look, pinned with pytest-textual-snapshot at fixed terminal sizes.

Every pane appears in a normal and a degraded state (books synced / one invalid, confidence 1.0
/ 0.35 with reasons, mode normal / cancel-makers, trades, epochs with causes, orders and
positions / empty-state). Times come from the fixtures' own nanoseconds, so nothing depends on
the wall clock. Regenerate with ``pytest tests/tui --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from tests.tui.conftest import make_app
from tests.tui.fixtures import degraded_snapshot, normal_snapshot

WIDE = (120, 40)
NARROW = (80, 24)


async def settle(pilot) -> None:
    await pilot.pause(0.1)


def test_wide_console_in_normal_state(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=WIDE, run_before=settle)


def test_wide_console_in_degraded_state_greys_out_the_invalid_book(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=WIDE, run_before=settle)


def test_wide_console_degraded_in_the_light_theme(snap_compare):
    app, _ = make_app(degraded_snapshot(), theme="epochbot-light")
    assert snap_compare(app, terminal_size=WIDE, run_before=settle)


def test_wide_console_showing_the_second_symbols_synced_book(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=WIDE, press=["n"], run_before=settle)


def test_narrow_console_in_normal_state_shows_the_log(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=NARROW, run_before=settle)


def test_narrow_console_in_degraded_state(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, run_before=settle)


def test_narrow_console_switched_to_the_epochs_view(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["v"], run_before=settle)


def test_narrow_console_switched_to_the_latency_view(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["v", "v"], run_before=settle)


def test_mode_picker_asks_before_relaxing(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["m", "up", "up", "enter"], run_before=settle)


def test_large_terminal_reflows_the_grid(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=(180, 50), run_before=settle)

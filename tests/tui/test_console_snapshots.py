"""The console's look, pinned with pytest-textual-snapshot at the three terminal sizes operators
use: 80x24 (narrow 2x2 grid, one switchable pane), 120x36 (wide) and 200x50 (every pane).

Every pane appears in a normal and a degraded state: books synced / one waiting after a failed
snapshot (HTTP 503); confidence 1.0 / 0.35 with reasons / 0.00 at startup; mode normal /
cancel-makers / halted; breakers ok / all tripped (the strategy line says BLOCKED); working
orders only (the fixtures also carry CANCELED and REJECTED ones); PnL in USDT; price chart with
our fills / no price yet; fills / none; epochs and book resyncs; the log. Times come from the
fixtures' own nanoseconds, so nothing depends on the wall clock. Regenerate with
``pytest tests/tui --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from tests.tui.conftest import make_app
from tests.tui.fixtures import degraded_snapshot, normal_snapshot, startup_snapshot

NARROW = (80, 24)
WIDE = (120, 36)
XWIDE = (200, 50)


async def settle(pilot) -> None:
    await pilot.pause(0.1)


# ---- 80x24 ----------------------------------------------------------------------------------


def test_console_at_80x24_in_normal_state_shows_the_log(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=NARROW, run_before=settle)


def test_console_at_80x24_in_degraded_state(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, run_before=settle)


def test_console_at_80x24_switched_to_the_price_chart(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["g"], run_before=settle)


def test_console_at_80x24_switched_to_the_epochs_view(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["v", "v", "v"], run_before=settle)


def test_console_at_80x24_switched_to_the_latency_view(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["v", "v", "v", "v"], run_before=settle)


def test_console_at_80x24_at_startup_before_anything_was_measured(snap_compare):
    app, _ = make_app(startup_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["v", "v", "v"], run_before=settle)


def test_mode_picker_asks_before_relaxing(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=NARROW, press=["m", "up", "up", "enter"], run_before=settle)


# ---- 120x36 ---------------------------------------------------------------------------------


def test_console_at_120x36_in_normal_state(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=WIDE, run_before=settle)


def test_console_at_120x36_in_degraded_state(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=WIDE, run_before=settle)


def test_console_at_120x36_degraded_in_the_light_theme(snap_compare):
    app, _ = make_app(degraded_snapshot(), theme="epochbot-light")
    assert snap_compare(app, terminal_size=WIDE, run_before=settle)


def test_console_at_120x36_showing_our_fills(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=WIDE, press=["f"], run_before=settle)


def test_console_at_120x36_showing_the_second_symbols_synced_book(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=WIDE, press=["n"], run_before=settle)


def test_help_screen_lists_every_key(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=WIDE, press=["question_mark"], run_before=settle)


# ---- 200x50 ---------------------------------------------------------------------------------


def test_console_at_200x50_in_normal_state(snap_compare):
    app, _ = make_app(normal_snapshot())
    assert snap_compare(app, terminal_size=XWIDE, run_before=settle)


def test_console_at_200x50_in_degraded_state(snap_compare):
    app, _ = make_app(degraded_snapshot())
    assert snap_compare(app, terminal_size=XWIDE, run_before=settle)

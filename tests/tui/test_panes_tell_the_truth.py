"""Pilot tests: what each pane says is the current truth, at any size (issue 13, item 2).

Fed with hand-built snapshots through a fake source (no runtime); each test changes one thing
and reads the widget or the screen text back.
"""

from __future__ import annotations

import dataclasses

from rich.console import Console

from epochbot.views.snapshot import LogView
from epochbot.widgets.confidence import ConfidencePane
from epochbot.widgets.epoch_history import EpochHistory
from epochbot.widgets.event_log import EventLog
from epochbot.widgets.mode_risk import strategy_state, working_orders
from tests.tui.conftest import make_app
from tests.tui.fixtures import T0, S, degraded_snapshot, normal_snapshot, startup_snapshot

WIDE = (120, 36)
NARROW = (80, 24)
XWIDE = (200, 50)


def screen_text(app, width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


def with_log(snap, n: int, start_s: int = 61):
    lines = tuple(LogView(T0 + (start_s + i) * S, "warn", snap.epoch, f"event number {i}", "x=1") for i in range(n))
    return dataclasses.replace(snap, seq=snap.seq + n, at_ns=T0 + (start_s + n) * S, log=snap.log + lines)


async def push(app, source, pilot, snap) -> None:
    source.snapshot = snap
    app.poll_snapshot()
    await pilot.pause(0.05)


# ---- the log ---------------------------------------------------------------------------------


async def test_the_log_follows_the_newest_line_as_lines_arrive():
    app, source = make_app(normal_snapshot())
    async with app.run_test(size=WIDE) as pilot:
        for n in (10, 30, 60):
            await push(app, source, pilot, with_log(normal_snapshot(seq=1), n))
        await pilot.pause(0.2)
        text = screen_text(app, WIDE[0])
    assert "event number 59" in text and "event number 0 " not in text


async def test_scrolling_back_stops_following_and_end_follows_again():
    app, source = make_app(normal_snapshot())
    async with app.run_test(size=WIDE) as pilot:
        await push(app, source, pilot, with_log(normal_snapshot(seq=1), 40))
        await pilot.pause(0.2)
        log = app.query_one(EventLog)
        log.focus()
        await pilot.press("home")
        await pilot.pause(0.1)
        await push(app, source, pilot, with_log(normal_snapshot(seq=1), 60))
        await pilot.pause(0.2)
        scrolled_back = screen_text(app, WIDE[0])
        was_following = log.following
        await pilot.press("end")
        await pilot.pause(0.2)
        followed = screen_text(app, WIDE[0])
    assert not was_following and "event number 59" not in scrolled_back and "scrolled back" in scrolled_back
    assert "event number 59" in followed and log.following


async def test_a_long_log_line_is_not_cut_at_80_columns_on_a_wide_terminal():
    long_field = "detail=" + "x" * 150 + "END"
    snap = normal_snapshot()
    snap = dataclasses.replace(snap, log=snap.log + (LogView(T0 + 61 * S, "warn", 2, "long line", long_field),))
    app, _ = make_app(snap)
    async with app.run_test(size=XWIDE) as pilot:
        await pilot.pause(0.2)
        text = screen_text(app, XWIDE[0])
    assert "END" in text  # wrapped, never ellipsised


# ---- mode & risk ----------------------------------------------------------------------------


def test_open_orders_lists_only_working_orders():
    snap = normal_snapshot()
    fallback = dataclasses.replace(snap, trading=None)

    assert [o.status for o in working_orders(snap)] == ["NEW"]
    assert [o.status for o in working_orders(fallback)] == ["NEW"]  # CANCELED and REJECTED are gone


def test_the_strategy_is_not_running_while_every_breaker_is_tripped():
    state, style = strategy_state(degraded_snapshot())

    assert state.startswith("BLOCKED") and "exits only" in state and "$error" in style
    assert strategy_state(normal_snapshot())[0] == "running"
    assert strategy_state(
        dataclasses.replace(
            normal_snapshot(),
            trading=None,
            risk=dataclasses.replace(
                normal_snapshot().risk,
                breakers={"BTCUSDT": "tripped until 00:15:00 UTC", "ETHUSDT": "tripped until 00:16:00 UTC"},
            ),
        )
    )[0].startswith("BLOCKED")


async def test_the_mode_badge_and_pnl_with_its_currency_stay_visible_at_every_size():
    for size in (NARROW, WIDE, XWIDE):
        app, _ = make_app(degraded_snapshot())
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            text = screen_text(app, size[0])
        assert "CANCEL-MAKERS" in text, size
        assert "PnL -8.75 USDT" in text, size


# ---- confidence, epochs, latency ------------------------------------------------------------


async def test_min_confidence_is_never_above_the_current_score_and_ttcr_is_a_dash_before_any_resync():
    app, _ = make_app(startup_snapshot())
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.1)
        await pilot.pause(0.1)
        conf = app.query_one(ConfidencePane)
        epochs = app.query_one(EpochHistory)
    assert conf.border_subtitle == "min 0.00"
    assert "—" in epochs.border_subtitle and "0.00" not in epochs.border_subtitle


async def test_a_steady_full_confidence_is_drawn_as_full_green_bars_not_a_red_baseline():
    snap = dataclasses.replace(normal_snapshot(), confidence_history=(1.0,) * 60)
    app, _ = make_app(snap)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.1)
        spark = app.query_one("#conf-spark")
        rendered = str(spark.render())
    assert set(rendered.replace("\n", "")) == {"█"}


async def test_all_zero_latency_draws_no_bars():
    snap = normal_snapshot()
    lat = dataclasses.replace(
        snap.latency, transport_history=(0.0,) * 60, queue_history=(0.0,) * 60, silence_history=(0.0,) * 60
    )
    app, _ = make_app(dataclasses.replace(snap, latency=lat))
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.1)
        rendered = str(app.query_one("#lat-queue-spark").render())
    assert "█" not in rendered


async def test_a_long_epoch_cause_never_pushes_the_timings_off_screen():
    snap = degraded_snapshot()
    epochs = (
        tuple(
            dataclasses.replace(e, close_cause="server shutdown: " + "very long reason " * 8) for e in snap.epochs[:-1]
        )
        + snap.epochs[-1:]
    )
    app, _ = make_app(dataclasses.replace(snap, epochs=epochs, all_epochs=epochs))
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("v", "v")  # wide: chart -> fills -> epochs
        await pilot.pause(0.2)
        text = screen_text(app, WIDE[0])
    assert "resync ms" in text and "19.850s" in text and "dial" in text


async def test_book_resyncs_show_rows_below_200_columns():
    app, _ = make_app(degraded_snapshot())
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("v", "v")
        await pilot.pause(0.2)
        text = screen_text(app, WIDE[0])
    assert "book resyncs" in text and "00:01:10" in text and "crossed book" in text


# ---- the ladder -----------------------------------------------------------------------------


async def test_ladder_and_trades_print_at_the_symbols_tick_and_step_with_points_aligned():
    app, _ = make_app(normal_snapshot())
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.2)
        text = screen_text(app, WIDE[0])
    rows = [line for line in text.splitlines() if "6425" in line and "█" in line]
    prices = [line.split("│")[1].split()[0] for line in rows]
    assert prices and all(len(p.split(".")[1]) == 2 for p in prices)  # tick 0.01, even 64251.00
    assert len({line.split("│")[1].index(".") for line in rows}) == 1  # decimal points in one column
    assert "64250.00 0.013" in text  # last trades at the same precision


async def test_the_book_banner_names_the_current_cause_with_the_venues_status_code():
    app, _ = make_app(degraded_snapshot())
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.2)
        text = screen_text(app, WIDE[0])
    assert "503" in text and "gap: pu=" not in text.split("Confidence")[0]


# ---- keys -----------------------------------------------------------------------------------


async def test_help_lists_every_key_and_the_footer_points_to_it():
    from epochbot.app.console.tui import ACTIONS

    app, _ = make_app(normal_snapshot())
    async with app.run_test(size=NARROW) as pilot:
        await pilot.pause(0.3)
        footer = app.query_one("Footer")
        footer_keys = {k.key for k in footer.query("FooterKey")}
        await pilot.press("question_mark")
        for _ in range(20):  # bounded: the help screen is pushed on the next refresh
            await pilot.pause(0.1)
            if hasattr(app.screen, "rows"):
                break
        rows = app.screen.rows
    assert "question_mark" in footer_keys
    keys = {key for key, _title, _what in rows}
    assert {{"question_mark": "?"}.get(k, k) for _a, k, *_ in ACTIONS} <= keys
    assert {"c", "t", "v", "g", "f", "ctrl+p", "end"} <= keys

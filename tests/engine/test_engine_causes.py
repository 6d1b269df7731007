"""The causes the engine records are the current ones (issue 13: the book banner showed an old
gap during a new stall; a failed snapshot was shown as a gap without its HTTP status; a malformed
frame was recorded as cause ``gap``)."""

from __future__ import annotations

from epochbot.model import events as ev
from tests.engine.test_engine import fetches, market_diff, synced_engine


def test_a_gap_right_after_a_malformed_frame_is_recorded_as_malformed():
    engine, clock = synced_engine()
    engine.handle(ev.MalformedFrame(epoch=engine.epoch, recv_ts=clock.now, reason="invalid JSON", sample="{oops"))
    clock.advance_ms(100)

    engine.handle(market_diff(engine, clock, "BTCUSDT", 103, 103, 102))  # 102 was in the unreadable frame

    resync = engine.book_resyncs[-1]
    assert resync.symbol == "BTCUSDT" and resync.cause == "malformed"
    assert engine.book("BTCUSDT").last_problem.startswith("malformed frame skipped, then")


def test_a_gap_long_after_a_malformed_frame_is_a_gap():
    engine, clock = synced_engine()
    engine.handle(ev.MalformedFrame(epoch=engine.epoch, recv_ts=clock.now, reason="invalid JSON", sample="{oops"))
    clock.advance_ms(10_000)

    engine.handle(market_diff(engine, clock, "BTCUSDT", 103, 103, 102))

    assert engine.book_resyncs[-1].cause == "gap"


def test_a_failed_snapshot_is_the_books_problem_with_the_venues_status():
    engine, clock = synced_engine()
    commands = engine.handle(market_diff(engine, clock, "BTCUSDT", 103, 103, 102))
    fetch = fetches(commands)["BTCUSDT"]

    engine.handle(
        ev.SnapshotFailed(
            epoch=engine.epoch,
            recv_ts=clock.now,
            symbol="BTCUSDT",
            request_id=fetch.request_id,
            reason="HTTP 503: Service Unavailable",
        )
    )

    problem = engine.book("BTCUSDT").last_problem
    assert problem.startswith("snapshot failed (HTTP 503: Service Unavailable)") and "retry in" in problem


def test_a_new_session_replaces_an_old_gap_as_the_books_problem():
    engine, clock = synced_engine()
    engine.handle(market_diff(engine, clock, "BTCUSDT", 103, 103, 102))
    assert "gap" in engine.book("BTCUSDT").last_problem or engine.book("BTCUSDT").last_problem

    engine.handle(ev.OperatorForceResync(symbol=None, replace_session=True))

    assert engine.book("BTCUSDT").last_problem.startswith("new session (")
    assert "gap" not in engine.book("BTCUSDT").last_problem

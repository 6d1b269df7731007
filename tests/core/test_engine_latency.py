"""Latency-driven session replacement must not become a reconnect loop."""

from __future__ import annotations

from core import events as ev
from tests.core.test_engine import market_diff, open_session, snapshot_for, synced_engine


def feed_lagging_diffs(engine, clock, count: int, lag_ms: int, start_id: int) -> int:
    last = start_id
    for _ in range(count):
        clock.advance_ms(10)
        exchange_ms = clock.now // 1_000_000 - lag_ms
        d = market_diff(engine, clock, "BTCUSDT", last + 1, last + 1, last, bids=[["100.00", "1.500"]])
        d.exchange_ts = exchange_ms
        engine.handle(d)
        last += 1
    return last


def resync_after_replacement(engine, clock) -> None:
    for fetch in open_session(engine, clock).values():
        engine.handle(snapshot_for(engine, fetch, last_update_id=100))


def test_high_transport_latency_replaces_the_session_once_then_backs_off():
    engine, clock = synced_engine(transport_latency_replace_ms=500, latency_replace_cooldown_ms=10_000)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=100)

    first = [c for c in engine.handle(ev.TimerTick()) if type(c) is ev.ReplaceSession]
    resync_after_replacement(engine, clock)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=100)
    second = [c for c in engine.handle(ev.TimerTick()) if type(c) is ev.ReplaceSession]

    assert len(first) == 1 and "transport latency" in first[0].cause
    assert second == []  # the new session is just as slow: wait out the cool-down
    assert any("transport_latency" in r.factor for r in engine.confidence.reasons)


def test_latency_replacement_is_allowed_again_after_the_cool_down_when_the_latency_changed():
    engine, clock = synced_engine(transport_latency_replace_ms=500, latency_replace_cooldown_ms=1_000)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=100)
    engine.handle(ev.TimerTick())
    resync_after_replacement(engine, clock)

    clock.advance_ms(1_500)
    feed_lagging_diffs(engine, clock, 30, lag_ms=1_000, start_id=100)  # another route, another problem
    again = [c for c in engine.handle(ev.TimerTick()) if type(c) is ev.ReplaceSession]

    assert len(again) == 1


def test_latency_that_the_new_connection_shows_just_the_same_keeps_the_session_after_the_cool_down():
    engine, clock = synced_engine(transport_latency_replace_ms=500, latency_replace_cooldown_ms=1_000)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=100)
    engine.handle(ev.TimerTick())
    resync_after_replacement(engine, clock)

    clock.advance_ms(1_500)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=100)
    again = [c for c in engine.handle(ev.TimerTick()) if type(c) is ev.ReplaceSession]

    assert again == []  # the venue lags, not the route: a third connection would not help


def test_a_new_session_starts_with_fresh_latency_windows():
    engine, clock = synced_engine(transport_latency_replace_ms=500)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=100)
    engine.handle(ev.TimerTick())

    resync_after_replacement(engine, clock)

    assert engine.telemetry.transport.stats(clock.now // 1_000_000_000).count == 0
    assert engine.telemetry.transport.run_stats().count == 30

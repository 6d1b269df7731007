"""Latency-driven session replacement must not become a reconnect loop."""

from __future__ import annotations

from epochbot.model import events as ev
from tests.engine.test_engine import market_diff, open_session, snapshot_for, synced_engine


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


# ------------------------------------------------------------------ our backlog is not the venue's lag


def feed_backlogged_diffs(engine, clock, count: int, waited_ms: int, start_id: int) -> int:
    """Diffs that left the venue and reached us at once, then waited ``waited_ms`` in our queue."""
    last = start_id
    for _ in range(count):
        clock.advance_ms(10)
        d = market_diff(engine, clock, "BTCUSDT", last + 1, last + 1, last, bids=[["100.00", "1.500"]])
        d.recv_ts = clock.now - waited_ms * 1_000_000
        d.exchange_ts = d.recv_ts // 1_000_000
        engine.handle(d)
        last += 1
    return last


def ticks(engine, clock, n: int, loop_busy: float = -1.0) -> list:
    out = []
    for _ in range(n):
        clock.advance_ms(50)
        out += [
            c
            for c in engine.handle(ev.TimerTick(loop_busy=loop_busy, market_backlog_ns=0))
            if type(c) is ev.ReplaceSession
        ]
    return out


def test_a_long_queue_delay_is_our_own_backlog_reported_and_never_a_replacement():
    engine, clock = synced_engine(queue_delay_replace_ms=500)
    feed_backlogged_diffs(engine, clock, 40, waited_ms=1_500, start_id=101)

    replaced = ticks(engine, clock, 4)

    assert replaced == [] and engine.epoch == 1
    assert "queue_delay_ms" in engine.confidence.reason_names
    warnings = [r for r in engine.log if "our own backlog" in r.msg]
    assert len(warnings) == 1 and "queue delay" in str(warnings[0].fields)  # once per episode


def test_transport_latency_while_our_loop_is_saturated_is_our_backlog_and_keeps_the_session():
    engine, clock = synced_engine(transport_latency_replace_ms=500)
    ticks(engine, clock, 5, loop_busy=0.98)  # the loop never waited for a frame: they waited for us
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=101)

    replaced = ticks(engine, clock, 20, loop_busy=0.98)

    assert replaced == [] and engine.epoch == 1
    assert "loop_busy" in engine.confidence.reason_names and "transport_latency_ms" in engine.confidence.reason_names
    assert any("our own backlog" in r.msg and "busy" in str(r.fields) for r in engine.log)


def test_the_same_transport_latency_while_our_loop_has_time_to_spare_is_the_venue_and_replaces():
    engine, clock = synced_engine(transport_latency_replace_ms=500)
    ticks(engine, clock, 5, loop_busy=0.35)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=101)

    replaced = ticks(engine, clock, 1, loop_busy=0.35)

    assert len(replaced) == 1 and "transport latency" in replaced[0].cause
    assert "loop_busy" not in engine.confidence.reason_names


def test_once_our_loop_catches_up_a_lagging_venue_is_acted_on_again():
    engine, clock = synced_engine(transport_latency_replace_ms=500)
    ticks(engine, clock, 5, loop_busy=0.99)
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=101)
    kept = ticks(engine, clock, 4, loop_busy=0.99)

    replaced = ticks(engine, clock, 200, loop_busy=0.2)  # ten seconds with time to spare, still lagging
    feed_lagging_diffs(engine, clock, 30, lag_ms=2_000, start_id=131)
    replaced += ticks(engine, clock, 1, loop_busy=0.2)

    assert kept == [] and len(replaced) == 1

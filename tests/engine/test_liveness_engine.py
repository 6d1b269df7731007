"""The engine's use of liveness: stale timestamps are latency, replacements back off, the
mode steps down while a stall is suspected and recovers by itself."""

from __future__ import annotations

from itertools import pairwise

from epochbot.model import events as ev
from epochbot.model.modes import Mode
from tests.engine.test_engine import SYMBOLS, market_diff, open_session, snapshot_for, synced_engine


def run_stream(
    engine, clock, ms: float, *, every_ms: float = 100, lag_ms: float = 0, ids: dict | None = None, tick_ms: float = 50
):
    """Diffs on every symbol every ``every_ms`` whose exchange time lags ``lag_ms``; timer ticks
    every ``tick_ms``. Returns every command produced."""
    ids = ids if ids is not None else {s: engine.book(s).last_update_id for s in SYMBOLS}
    out, elapsed, since = [], 0.0, 0.0
    while elapsed < ms:
        clock.advance_ms(tick_ms)
        elapsed += tick_ms
        since += tick_ms
        if since >= every_ms:
            since = 0.0
            for s in SYMBOLS:
                ids[s] += 1
                d = market_diff(engine, clock, s, ids[s], ids[s], ids[s] - 1)
                d.exchange_ts = int((clock.now / 1e6) - lag_ms)
                out.extend(engine.handle(d))
        out.extend(engine.handle(ev.TimerTick()))
    return out


def test_five_second_old_timestamps_on_a_flowing_stream_are_latency_never_silence():
    engine, clock = synced_engine()

    commands = run_stream(engine, clock, 4000, lag_ms=5000)

    replaced = [c for c in commands if type(c) is ev.ReplaceSession]
    assert not [c for c in commands if type(c) is ev.ProbeVenue]
    assert len(replaced) == 1 and "latency" in replaced[0].cause
    assert "market_silence_ms" not in engine.confidence.reason_names


def test_latency_that_persists_on_the_next_connection_keeps_that_session():
    engine, clock = synced_engine()
    first = [c for c in run_stream(engine, clock, 3000, lag_ms=4000) if type(c) is ev.ReplaceSession]
    for fetch in [c for c in open_session(engine, clock).values()]:
        engine.handle(snapshot_for(engine, fetch, last_update_id=500))
    ids = {s: 500 for s in SYMBOLS}

    later = [c for c in run_stream(engine, clock, 60_000, lag_ms=4000, ids=ids) if type(c) is ev.ReplaceSession]

    assert len(first) == 1 and later == []
    assert any(r.msg.startswith("transport latency persists") for r in engine.log)


def test_a_suspected_stall_pulls_makers_and_a_quiet_answer_restores_normal_by_itself():
    engine, clock = synced_engine()
    run_stream(engine, clock, 3000)
    assert engine.mode is Mode.NORMAL

    probes = []
    for _ in range(20):  # silence: the stream stops, ticks go on
        clock.advance_ms(50)
        probes += [c for c in engine.handle(ev.TimerTick()) if type(c) is ev.ProbeVenue]
    suspected_mode = engine.mode
    for p in probes:
        engine.handle(
            ev.ProbeResult(
                epoch=engine.epoch,
                symbol=p.symbol,
                request_id=p.request_id,
                last_update_id=engine.book(p.symbol).last_update_id,
            )
        )
    for _ in range(60):
        clock.advance_ms(50)
        engine.handle(ev.TimerTick())

    assert probes and suspected_mode.strictness >= Mode.CANCEL_MAKERS.strictness
    assert engine.mode is Mode.NORMAL and engine.epoch == 1
    assert "quiet_market_ms" in engine.confidence.reason_names


def test_sessions_that_keep_dying_before_they_are_healthy_back_off():
    engine, clock = synced_engine()
    delays = []
    for _ in range(6):
        cmd = engine.handle(ev.Disconnected(epoch=engine.epoch, reason="reset by venue"))
        delays.append(cmd[0].delay_ms)
        for fetch in open_session(engine, clock).values():
            engine.handle(snapshot_for(engine, fetch, last_update_id=100))
        for s in SYMBOLS:
            engine.handle(market_diff(engine, clock, s, 101, 101, 100))

    assert delays[0] == 0  # losing the startup session is a fresh incident
    assert all(b > a for a, b in pairwise(delays[1:])) and delays[-1] >= 2000

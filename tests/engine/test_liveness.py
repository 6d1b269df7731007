"""Liveness model with an injected clock: learned thresholds, probes, quiet market, back-off."""

from __future__ import annotations

from epochbot.engine.liveness import Liveness, LivenessConfig, ReplacementGovernor

MS = 1_000_000
T0 = 1_000_000_000_000


def running(config: LivenessConfig | None = None, symbols=("BTCUSDT",)) -> tuple[Liveness, list[int]]:
    live = Liveness(config or LivenessConfig(ceiling_ms=1500, floor_ms=200))
    for s in symbols:
        live.track(s)
    clock = [T0]
    live.start_session(T0, 1500)
    return live, clock


def feed(
    live: Liveness, clock: list[int], n: int, every_ms: float, symbol: str = "BTCUSDT", first_id: int = 100
) -> int:
    """n diffs every ``every_ms``, ticking the checker every 50 ms; returns the last id."""
    uid = first_id
    for _ in range(n):
        for _ in range(max(1, int(every_ms // 50))):
            clock[0] += int(min(50, every_ms) * MS)
            assert live.check(clock[0]).probes == ()
        uid += 1
        live.on_depth(symbol, uid, clock[0], clock[0])
    return uid


def tick_until_verdict(live: Liveness, clock: list[int], limit_ms: float = 5000):
    start = clock[0]
    while clock[0] - start < limit_ms * MS:
        clock[0] += 50 * MS
        verdict = live.check(clock[0])
        if verdict.probes or verdict.dead:
            return verdict, (clock[0] - start) / MS
    return None, limit_ms


def test_a_stream_with_no_history_is_suspected_only_at_the_ceiling():
    live, clock = running()
    live.on_depth("BTCUSDT", 101, clock[0], clock[0])

    verdict, after_ms = tick_until_verdict(live, clock)

    assert verdict.probes == (("BTCUSDT", 1),)
    assert 1500 <= after_ms <= 1550


def test_a_fast_stream_is_suspected_soon_after_its_learned_gap_and_never_below_the_floor():
    live, clock = running()
    feed(live, clock, 40, 100)

    verdict, after_ms = tick_until_verdict(live, clock)

    assert verdict.probes and 200 <= after_ms <= 300
    assert 200 <= live.limit_ms(live._depth["BTCUSDT"]) <= 300


def test_a_slow_stream_learns_a_longer_threshold_bounded_above():
    live, clock = running(LivenessConfig(ceiling_ms=1500, floor_ms=200, max_ms=10_000))
    for uid in range(101, 131):  # every gap is longer than the no-history ceiling
        clock[0] += 3000 * MS
        live.on_depth("BTCUSDT", uid, clock[0], clock[0])

    threshold = live.limit_ms(live._depth["BTCUSDT"])

    assert 3000 < threshold <= 10_000


def moved(live, clock, ahead: int = 7):
    """A fed stream falls silent, is probed, and the venue answers ``ahead`` ids past us."""
    last = feed(live, clock, 20, 100)
    ((symbol, request),) = tick_until_verdict(live, clock)[0].probes
    clock[0] += 2 * MS  # the REST round trip
    held = live.on_probe(symbol, request, last + ahead, clock[0], backlog_ns=0)
    return last, symbol, held


def wait_ms(live, clock, ms: float, backlog_ns: int = 0) -> list[str]:
    """Tick through ``ms``; the verdicts seen."""
    out, end = [], clock[0] + int(ms * MS)
    while clock[0] < end:
        clock[0] = min(end, clock[0] + 50 * MS)
        out.append(live.check(clock[0], backlog_ns=backlog_ns).dead)
    return out


def test_a_moved_venue_is_not_believed_at_once_but_confirmed_one_expected_inter_arrival_later():
    live, clock = running()
    last, symbol, held = moved(live, clock)

    ((confirm_symbol, confirm),) = held.probes
    ticks = wait_ms(live, clock, held.delay_ms + 2)
    dead = live.on_probe(symbol, confirm, last + 9, clock[0], backlog_ns=0)  # still ahead, nothing arrived

    assert held.dead == "" and confirm_symbol == symbol
    assert 90 <= held.delay_ms <= 110  # one learned inter-arrival (~100 ms)
    assert not any(ticks)  # the confirmation is in flight: the ticks wait for it
    assert "venue moved" in dead.dead and "grace" in dead.dead and dead.detected_ns > 0


def test_a_moved_venue_whose_confirmation_fails_is_judged_by_the_tick_after_the_grace():
    live, clock = running()
    last, symbol, held = moved(live, clock)
    ((_, confirm),) = held.probes
    wait_ms(live, clock, held.delay_ms + 2)

    live.on_probe(symbol, confirm, None, clock[0])  # the REST request failed
    clock[0] += 50 * MS
    dead = live.check(clock[0], backlog_ns=0)

    assert "venue moved" in dead.dead


def test_a_moved_venue_whose_diff_arrives_within_the_grace_keeps_the_session():
    live, clock = running()
    last, symbol, held = moved(live, clock, ahead=3)  # a diff still in flight
    ((_, confirm),) = held.probes

    clock[0] += 40 * MS
    live.on_depth(symbol, last + 3, clock[0], clock[0])  # ... and here it is, inside the grace
    verdicts = wait_ms(live, clock, held.delay_ms)
    verdicts.append(live.on_probe(symbol, confirm, last + 5, clock[0], backlog_ns=0).dead)
    for _ in range(20):  # the stream carries on
        last += 1
        clock[0] += 100 * MS
        live.on_depth(symbol, last + 3, clock[0], clock[0])
        verdicts.append(live.check(clock[0], backlog_ns=0).dead)

    assert held.dead == "" and not any(verdicts)
    assert live._depth[symbol].status == "ok" and live.counters["dead"] == 0


def test_a_moved_venue_whose_diff_waits_in_our_own_queue_is_not_dead():
    live, clock = running()
    last, symbol, held = moved(live, clock, ahead=3)
    ((_, confirm),) = held.probes
    moved_at = clock[0]

    # The diff was received 10 ms after the answer, but our loop is busy: it sits in the inbox
    # behind other symbols' frames, and every tick (and the confirmation's answer) says so.
    def queued() -> int:
        return clock[0] - (moved_at + 10 * MS)

    verdicts = []
    for _ in range(10):
        clock[0] += 50 * MS
        verdicts.append(live.check(clock[0], backlog_ns=queued()).dead)
        if confirm:
            verdicts.append(live.on_probe(symbol, confirm, last + 9, clock[0], backlog_ns=queued()).dead)
            confirm = 0
    for i in range(6):  # the loop catches up: the stream's frames, received every 100 ms
        live.on_depth(symbol, last + 3 + i, moved_at + (10 + 100 * i) * MS, clock[0])
    clock[0] += 10 * MS
    verdicts.append(live.check(clock[0], backlog_ns=0).dead)

    assert not any(verdicts) and live._depth[symbol].status == "ok"


def test_silence_is_counted_only_up_to_the_oldest_frame_still_in_our_queue():
    live, clock = running()
    feed(live, clock, 20, 100)
    last_arrival = clock[0]

    clock[0] += 1000 * MS  # a second later, our queue still holds frames received 50 ms after it
    verdict = live.check(clock[0], backlog_ns=clock[0] - (last_arrival + 50 * MS))

    assert verdict.probes == () and verdict.dead == ""
    assert live.depth_silence_ms("BTCUSDT", clock[0]) == 50.0


def test_a_quiet_market_probed_again_and_again_is_never_replaced_with_the_grace():
    live, clock = running()
    last = feed(live, clock, 20, 100)
    deads = []
    for _ in range(200):  # ten seconds of ticks, the venue's book never moves
        clock[0] += 50 * MS
        verdict = live.check(clock[0], backlog_ns=0)
        deads.append(verdict.dead)
        for symbol, request in verdict.probes:
            deads.append(live.on_probe(symbol, request, last, clock[0]).dead)

    assert not any(deads) and live.quiet_symbols() == ["BTCUSDT"]


def test_a_probe_answered_after_the_grace_already_passed_is_judged_at_once():
    live, clock = running()
    last = feed(live, clock, 20, 100)
    ((symbol, request),) = tick_until_verdict(live, clock)[0].probes

    clock[0] += 400 * MS  # a slow REST answer; nothing arrived meanwhile
    dead = live.on_probe(symbol, request, last + 9, clock[0], backlog_ns=0)

    assert "venue moved" in dead.dead


def test_a_probe_showing_no_move_is_a_quiet_market_reprobed_with_backoff():
    live, clock = running()
    last = feed(live, clock, 20, 100)
    verdict, _ = tick_until_verdict(live, clock)
    ((symbol, request),) = verdict.probes

    assert live.on_probe(symbol, request, last, clock[0]).dead == ""
    gaps = []
    for _ in range(4):
        verdict, waited = tick_until_verdict(live, clock, 60_000)
        ((symbol, request),) = verdict.probes
        gaps.append(round(waited))
        assert live.on_probe(symbol, request, last, clock[0]).dead == ""

    assert live.quiet_symbols() == ["BTCUSDT"] and live.suspected() == 0
    assert live.unexplained_silence_ms(clock[0]) == 0 and live.quiet_ms(clock[0]) > 0
    assert gaps == sorted(gaps) and gaps[-1] >= 4 * gaps[0] - 100


def test_an_arrival_ends_a_quiet_spell_and_the_stream_is_watched_again():
    live, clock = running()
    last = feed(live, clock, 20, 100)
    ((symbol, request),) = tick_until_verdict(live, clock)[0].probes
    live.on_probe(symbol, request, last, clock[0])

    feed(live, clock, 5, 100, first_id=last)

    assert live.quiet_symbols() == [] and live._depth["BTCUSDT"].status == "ok"


def test_a_silent_heartbeat_with_history_is_dead_without_a_probe():
    live, clock = running()
    live.on_heartbeat("BTCUSDT", clock[0], clock[0])
    uid = 100
    for _ in range(12):  # depth every 100 ms, heartbeat every 1 s
        for _ in range(10):
            clock[0] += 100 * MS
            uid += 1
            live.on_depth("BTCUSDT", uid, clock[0], clock[0])
            assert live.check(clock[0]).dead == ""
        live.on_heartbeat("BTCUSDT", clock[0], clock[0])
    for _ in range(30):  # depth keeps coming, the heartbeat stops
        clock[0] += 100 * MS
        uid += 1
        live.on_depth("BTCUSDT", uid, clock[0], clock[0])
        verdict = live.check(clock[0])
        if verdict.dead:
            break

    assert "heartbeat" in verdict.dead


def test_one_late_heartbeat_among_many_gets_one_beat_of_grace_but_a_dead_one_is_still_caught():
    symbols = [f"S{i:02d}USDT" for i in range(20)]
    live, clock = running(symbols=symbols)
    for s in symbols:
        live.on_heartbeat(s, clock[0], clock[0])
    for _ in range(12):  # every symbol beats every second
        clock[0] += 1000 * MS
        for s in symbols:
            live.on_heartbeat(s, clock[0], clock[0])
            live.on_depth(s, clock[0] // MS, clock[0], clock[0])
    verdicts = []
    for beat in range(6):  # S07's beat comes 900 ms late once, then S13's stops for good
        for tick in range(20):
            clock[0] += 50 * MS
            if beat == 1 and tick == 17:
                live.on_heartbeat("S07USDT", clock[0], clock[0])
            verdicts.append((beat, live.check(clock[0], backlog_ns=0).dead))
        for s in symbols:
            if (s == "S07USDT" and beat == 0) or (s == "S13USDT" and beat >= 2):
                continue
            live.on_heartbeat(s, clock[0], clock[0])
            live.on_depth(s, clock[0] // MS, clock[0], clock[0])

    dead = [(beat, v) for beat, v in verdicts if v]
    assert dead and all("S13USDT" in v for _, v in dead)  # the late one was kept
    assert dead[0][0] <= 4  # the dead one within about two beats


def test_a_silent_heartbeat_is_not_judged_while_our_own_loop_is_saturated():
    live, clock = running()
    live.on_heartbeat("BTCUSDT", clock[0], clock[0])
    uid = 100
    for _ in range(12):
        for _ in range(10):
            clock[0] += 100 * MS
            uid += 1
            live.on_depth("BTCUSDT", uid, clock[0], clock[0])
            live.check(clock[0])
        live.on_heartbeat("BTCUSDT", clock[0], clock[0])
    live.saturated = True  # its frames may be waiting in our socket
    verdicts = []
    for _ in range(30):
        clock[0] += 100 * MS
        uid += 1
        live.on_depth("BTCUSDT", uid, clock[0], clock[0])
        verdicts.append(live.check(clock[0]).dead)

    assert not any(verdicts)


def test_our_own_backlog_is_not_silence():
    live, clock = running()
    feed(live, clock, 20, 100)
    # The last event processed waited 400 ms in our queue: the venue spoke 400 ms ago, we saw it late.
    clock[0] += 400 * MS
    live.on_depth("BTCUSDT", 500, clock[0] - 400 * MS, clock[0])

    clock[0] += 50 * MS
    assert live.check(clock[0]).probes == ()


def test_a_late_check_after_a_blocked_loop_judges_nothing():
    live, clock = running()
    feed(live, clock, 20, 100)

    clock[0] += 2000 * MS  # the loop was blocked for 2 s (a snapshot burst)
    late = live.check(clock[0])
    live.on_depth("BTCUSDT", 500, clock[0] - 10 * MS, clock[0])  # the queued frames are then drained
    clock[0] += 50 * MS

    assert late.probes == () and live.check(clock[0]).probes == ()


def test_a_new_session_waits_the_ceiling_plus_the_allowance_for_its_first_frame():
    live, clock = running()
    feed(live, clock, 20, 100)
    live.stop_session()

    live.start_session(clock[0], 1500 + 3000)  # the previous session showed 3 s of latency
    verdict, after_ms = tick_until_verdict(live, clock, 10_000)

    assert verdict.probes and 4500 <= after_ms <= 4600


def test_at_most_the_configured_number_of_probes_are_in_flight():
    symbols = tuple(f"S{i}USDT" for i in range(50))
    live, clock = running(LivenessConfig(ceiling_ms=1500, max_probes_in_flight=2), symbols)

    verdict, _ = tick_until_verdict(live, clock)
    clock[0] += 50 * MS
    second = live.check(clock[0])

    assert len(verdict.probes) == 2 and second.probes == ()


def test_failed_probes_are_retried_and_a_stream_that_cannot_be_judged_is_replaced_eventually():
    live, clock = running()
    feed(live, clock, 20, 100)
    verdict, _ = tick_until_verdict(live, clock)
    for _ in range(200):
        for symbol, request in verdict.probes:
            live.on_probe(symbol, request, None, clock[0])
        clock[0] += 50 * MS
        verdict = live.check(clock[0])
        if verdict.dead:
            break

    assert "cannot be asked" in verdict.dead


def test_the_governor_lets_a_healthy_session_reconnect_at_once_and_backs_off_unhealthy_ones():
    gov = ReplacementGovernor(base_ms=250, max_ms=60_000)
    now = T0

    first = gov.delay_ms(now, healthy=True)
    delays = [gov.delay_ms(now + i * MS, healthy=False) for i in range(1, 12)]

    assert first == 0
    assert delays[:4] == [250, 500, 1000, 2000] and delays[-1] == 60_000


def test_the_governor_caps_connection_attempts_per_window_whatever_the_causes():
    gov = ReplacementGovernor(max_in_window=60, window_ms=300_000)
    now, starts = T0, []
    for _ in range(200):  # a venue that kills every healthy-looking session at once
        now += int(gov.delay_ms(now, healthy=True) * MS) + 1 * MS
        starts.append(now)

    in_first_5min = sum(1 for t in starts if t - starts[0] < 300_000 * MS)
    assert in_first_5min <= 60


def test_under_known_latency_a_moved_venue_is_asked_again_before_the_stream_is_called_dead():
    live, clock = running()
    last = feed(live, clock, 20, 100)
    verdict, _ = tick_until_verdict(live, clock)
    ((symbol, request),) = verdict.probes

    held = live.on_probe(symbol, request, last + 30, clock[0], latency_ms=3000)
    verdict, waited = tick_until_verdict(live, clock, 10_000)
    ((symbol, request),) = verdict.probes
    confirm = live.on_probe(symbol, request, last + 60, clock[0], latency_ms=3000)
    ((_, request),) = confirm.probes  # asked once more after the grace
    clock[0] += int(confirm.delay_ms * MS)
    dead = live.on_probe(symbol, request, last + 62, clock[0], latency_ms=3000)

    assert held.dead == "" and waited >= 2500
    assert "venue moved" in dead.dead


def test_a_venue_that_goes_completely_silent_but_whose_book_does_not_move_is_never_called_dead():
    live, clock = running()
    live.on_heartbeat("BTCUSDT", clock[0], clock[0])
    for _ in range(12):  # a heartbeat rhythm, then the next session hears nothing at all
        clock[0] += 1000 * MS
        live.on_heartbeat("BTCUSDT", clock[0], clock[0])
    live.stop_session()
    live.start_session(clock[0], 1500)
    verdicts = []
    for _ in range(6000):  # five minutes of ticks; every probe says the venue's book did not move
        clock[0] += 50 * MS
        verdict = live.check(clock[0])
        verdicts.append(verdict.dead)
        for symbol, request in verdict.probes:
            verdicts.append(live.on_probe(symbol, request, 777, clock[0]).dead)

    assert not any(verdicts)
    assert live.quiet_symbols() == ["BTCUSDT"] and live.counters["probes"] <= 20

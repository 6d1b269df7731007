"""Supervisor, on its own: verdicts on the session from liveness, lag and transport latency."""

from __future__ import annotations

from epochbot.engine.lag import LagJudge
from epochbot.engine.liveness import Liveness, LivenessConfig
from epochbot.engine.supervision import Probe, Replace, Supervisor
from epochbot.engine.telemetry import Telemetry
from epochbot.model import events as ev
from tests.engine._parts import MS, Parts

SYM = "BTCUSDT"


class Rig:
    """A Supervisor over real liveness, lag and telemetry, with a subscribed epoch-1 session."""

    def __init__(self, **config) -> None:
        self.parts = parts = Parts(**config).subscribe()
        self.clock = parts.clock
        cfg = parts.config
        self.liveness = Liveness(LivenessConfig(ceiling_ms=cfg.silence_replace_ms, floor_ms=cfg.liveness_floor_ms))
        self.liveness.track(SYM)
        self.lag = LagJudge(cfg.loop_busy_saturated)
        self.telemetry = Telemetry()
        self.sup = Supervisor(
            cfg, parts.session, self.liveness, self.lag, self.telemetry, parts.session.governor, parts.log
        )
        self.sup.session_subscribed(self.clock())

    def tick(self, ms: float = 100.0):
        return self.sup.on_tick(self.clock.advance_ms(ms), -1)

    def diffs(self, n: int, latency_ms: float = 0.0, queue_ms: float = 0.0, every_ms: float = 10.0) -> None:
        """``n`` depth diffs arriving ``every_ms`` apart, as late as asked."""
        for i in range(n):
            now = self.clock.advance_ms(every_ms)
            recv = now - int(queue_ms * MS)
            exchange_ms = (recv - int(latency_ms * MS)) // MS
            self.telemetry.on_market(SYM, exchange_ms, recv, now)
            self.liveness.on_depth(SYM, 100 + i, recv, now)

    def replace_session(self, by_liveness: bool = False) -> None:
        now = self.clock()
        self.sup.session_replaced(now, by_liveness)
        self.parts.session.replace(now, "test")
        self.parts.session.opened(now, "wss://x", close_ms=0.0, dial_ms=0.0)
        self.parts.session.acknowledged(now)
        self.telemetry.reset_connection(now)
        self.sup.session_subscribed(now)


def test_a_session_still_dialling_gets_no_verdict():
    rig = Rig()
    rig.parts.session.replace(rig.clock(), "disconnected")

    assert rig.tick(5000) is None


def test_a_subscription_not_acknowledged_in_time_is_replaced():
    rig = Rig(subscribe_timeout_ms=3000.0)
    session = rig.parts.session
    session.replace(rig.clock(), "disconnected")
    session.opened(rig.clock(), "wss://x", close_ms=0.0, dial_ms=0.0)

    early, late = rig.tick(2999), rig.tick(1)

    assert early is None
    assert late == Replace("subscription not confirmed in time")


def test_a_silent_stream_is_probed_before_it_costs_a_replacement():
    rig = Rig(silence_replace_ms=1500.0, probe_limit=5)

    verdicts = [rig.tick() for _ in range(16)]

    assert verdicts[:14] == [None] * 14  # 1.4 s: within the first frame's allowance
    probe = next(v for v in verdicts if v is not None)
    assert isinstance(probe, Probe)
    assert probe.commands == [ev.ProbeVenue(epoch=1, symbol=SYM, request_id=1, limit=5, delay_ms=0.0)]
    assert "stream silent: asking the venue" in rig.parts.messages()


def silent_after_diffs(rig: Rig) -> ev.ProbeVenue:
    """Ten diffs (ids 100..109) 10 ms apart, then silence until the stream is probed."""
    rig.diffs(10)
    probe = next(v for v in (rig.tick() for _ in range(30)) if v is not None)
    assert isinstance(probe, Probe)
    (command,) = probe.commands
    assert isinstance(command, ev.ProbeVenue)
    return command


def answer(command: ev.ProbeVenue, last_update_id: int) -> ev.ProbeResult:
    return ev.ProbeResult(epoch=1, symbol=SYM, request_id=command.request_id, last_update_id=last_update_id)


def test_a_venue_whose_book_did_not_move_is_a_quiet_market_and_keeps_the_session():
    rig = Rig()
    command = silent_after_diffs(rig)

    verdict = rig.sup.on_probe_result(answer(command, 109), rig.clock.advance_ms(20))

    assert verdict is None
    assert rig.liveness.quiet_symbols() == [SYM]
    assert "quiet market: the venue's book did not move, books exact, session kept" in rig.parts.messages()


def test_a_venue_ahead_of_a_silent_stream_is_asked_again_after_the_grace():
    rig = Rig()
    command = silent_after_diffs(rig)

    verdict = rig.sup.on_probe_result(answer(command, 150), rig.clock.advance_ms(20))

    assert isinstance(verdict, Probe)
    (confirm,) = verdict.commands
    assert isinstance(confirm, ev.ProbeVenue) and confirm.delay_ms > 0
    assert "venue ahead of a silent stream: confirming after the grace" in rig.parts.messages()


def test_a_venue_still_ahead_once_the_grace_passed_means_the_stream_is_dead():
    rig = Rig()
    command = silent_after_diffs(rig)
    verdict = rig.sup.on_probe_result(answer(command, 150), rig.clock.advance_ms(20))
    assert isinstance(verdict, Probe)
    (confirm,) = verdict.commands
    assert isinstance(confirm, ev.ProbeVenue)

    dead = rig.sup.on_probe_result(answer(confirm, 160), rig.clock.advance_ms(confirm.delay_ms + 1))

    assert isinstance(dead, Replace)
    assert (dead.immediate, dead.liveness) == (True, True)
    assert dead.cause.startswith(f"stream stalled: {SYM} silent")


def test_transport_latency_upstream_replaces_the_session_then_cools_down():
    rig = Rig(transport_latency_replace_ms=3000.0, latency_replace_cooldown_ms=10_000.0)
    rig.diffs(30, latency_ms=4000.0)

    first = rig.tick(10)
    rig.diffs(5, latency_ms=4000.0)
    second = rig.tick(10)

    assert first == Replace("transport latency p50 4000 ms")
    assert second is None  # the cool-down: not again for 10 s
    assert "latency-driven replacement" in rig.parts.messages()


def test_latency_as_bad_on_the_next_connection_is_the_venues_and_keeps_the_session():
    rig = Rig(transport_latency_replace_ms=3000.0, latency_replace_cooldown_ms=1000.0)
    rig.diffs(30, latency_ms=4000.0)
    assert isinstance(rig.tick(10), Replace)
    rig.replace_session()

    rig.clock.advance_ms(2000)
    rig.diffs(30, latency_ms=3900.0)
    verdict = rig.tick(10)

    assert verdict is None
    assert "transport latency persists across connections: venue-side, session kept" in rig.parts.messages()


def test_full_confidence_a_minute_after_the_cool_down_forgets_the_last_replacement():
    rig = Rig(transport_latency_replace_ms=3000.0, latency_replace_cooldown_ms=1000.0)
    rig.diffs(30, latency_ms=4000.0)
    assert isinstance(rig.tick(10), Replace)
    rig.replace_session()

    rig.sup.on_confidence(1.0, rig.clock.advance_ms(61_001))
    rig.diffs(30, latency_ms=3900.0)
    verdict = rig.tick(10)

    assert verdict == Replace("transport latency p50 3900 ms")  # judged afresh, not "venue-side"


def test_our_own_backlog_is_reported_once_and_never_replaces_the_session():
    rig = Rig(queue_delay_replace_ms=1000.0)
    rig.diffs(30, queue_ms=1500.0)

    verdicts = [rig.tick(10), rig.tick(10)]

    assert verdicts == [None, None]
    assert rig.parts.messages().count("behind: our own backlog, not the venue's; session kept") == 1


def test_after_a_replacement_for_silence_the_first_frame_may_take_four_ceilings():
    rig = Rig(silence_replace_ms=1500.0)

    rig.replace_session(by_liveness=True)

    assert rig.liveness.first_wait_ms == 6000.0


def test_the_first_frame_allowance_includes_the_latency_the_last_session_showed():
    rig = Rig(silence_replace_ms=1500.0)
    rig.diffs(30, latency_ms=400.0)

    rig.replace_session()

    streak = rig.parts.session.governor.streak  # 1: the session replaced had not resynchronised
    assert rig.sup.last_latency_ms == 400.0
    assert (streak, rig.liveness.first_wait_ms) == (1, (1500.0 + 400.0) * 2)


def test_a_saturated_loop_is_passed_on_to_liveness():
    rig = Rig(loop_busy_saturated=0.9)

    for _ in range(10):
        rig.sup.on_load(rig.clock.advance_ms(100), 0.97)

    assert rig.liveness.saturated

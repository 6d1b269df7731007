"""SessionLifecycle, over real parts: what a replacement and the session's answers do to the rest."""

from __future__ import annotations

from epochbot.book.book import BookState
from epochbot.engine.lag import LagJudge
from epochbot.engine.lifecycle import SessionLifecycle
from epochbot.engine.liveness import Liveness, LivenessConfig
from epochbot.engine.repair import BookRepair
from epochbot.engine.session import SessionState
from epochbot.engine.supervision import Replace, Supervisor
from epochbot.engine.telemetry import Telemetry
from epochbot.model import events as ev
from tests.engine._parts import MS, Parts

SYMBOLS = ("BTCUSDT", "ETHUSDT")


class Rig:
    def __init__(self, **config) -> None:
        self.parts = parts = Parts(symbols=SYMBOLS, **config)
        cfg = parts.config
        self.liveness = Liveness(LivenessConfig(ceiling_ms=cfg.silence_replace_ms))
        self.telemetry = Telemetry()
        self.repair = BookRepair(
            cfg,
            parts.clock,
            parts.symbols,
            parts.session,
            parts.incidents,
            parts.log,
            parts.counters,
            parts.evaluate,
            parts.go_fatal,
        )
        supervisor = Supervisor(
            cfg, parts.session, self.liveness, LagJudge(), self.telemetry, parts.session.governor, parts.log
        )
        self.lifecycle = SessionLifecycle(
            cfg,
            parts.symbols,
            parts.session,
            self.repair,
            supervisor,
            parts.incidents,
            self.telemetry,
            parts.log,
            parts.evaluate,
        )

    def subscribed(self) -> list[ev.Command]:
        now = self.parts.clock()
        self.lifecycle.replace(now, "startup")
        self.lifecycle.on_opened(ev.SessionOpened(epoch=1, url="wss://x"), now)
        return list(self.lifecycle.on_subscribed(ev.SubscriptionConfirmed(epoch=1), now))


def test_a_replacement_returns_the_next_epoch_and_starts_every_book_over():
    rig = Rig()
    fetches = rig.subscribed()
    now = rig.parts.clock.advance_ms(10)

    (command,) = rig.lifecycle.replace(now, "operator: new epoch", immediate=True)

    assert isinstance(command, ev.ReplaceSession)
    assert (command.epoch, command.cause) == (2, "operator: new epoch")
    assert [f.symbol for f in fetches if isinstance(f, ev.FetchSnapshot)] == list(SYMBOLS)
    for state in rig.parts.symbols.values():
        assert (state.book.state, state.snapshot_request) == (BookState.EMPTY, 0)
        assert state.book.last_problem == "new session (operator: new epoch)"
    assert rig.parts.session.state is SessionState.DIALING
    assert rig.parts.evaluated[-1] == now
    assert rig.parts.messages()[-1] == "replace session"


def test_a_replacement_opens_the_incident_from_when_its_cause_was_detected():
    rig = Rig()
    rig.subscribed()
    seen = rig.parts.clock.advance_ms(5)
    now = rig.parts.clock.advance_ms(5)

    rig.lifecycle.on_disconnected(ev.Disconnected(epoch=1, reason="reset", recv_ts=seen), now)

    assert rig.parts.incidents.started_ns == rig.parts.clock.now - 10 * MS  # startup's, still open
    assert rig.parts.session.epochs[-1].detected_ns == seen


def test_the_subscription_ack_asks_only_for_books_neither_synced_nor_waiting():
    rig = Rig()
    rig.lifecycle.replace(rig.parts.clock(), "startup")
    rig.lifecycle.on_opened(ev.SessionOpened(epoch=1, url="wss://x"), rig.parts.clock())
    rig.repair.request_snapshot(rig.parts.symbols["BTCUSDT"], rig.parts.clock(), "first diff")

    commands = rig.lifecycle.on_subscribed(ev.SubscriptionConfirmed(epoch=1), rig.parts.clock())

    assert [c.symbol for c in commands if isinstance(c, ev.FetchSnapshot)] == ["ETHUSDT"]
    assert rig.liveness.active


def test_without_snapshot_on_subscribe_the_ack_asks_for_nothing():
    rig = Rig(snapshot_on_subscribe=False)

    assert rig.subscribed() == []


def test_write_failures_replace_the_session_only_at_the_configured_count():
    rig = Rig(write_failures_replace=2)
    rig.subscribed()

    first = rig.lifecycle.on_write_failed(ev.WriteFailed(epoch=1, reason="pipe"), rig.parts.clock())
    second = rig.lifecycle.on_write_failed(ev.WriteFailed(epoch=1, reason="pipe"), rig.parts.clock())

    assert first == ()
    assert [type(c) for c in second] == [ev.ReplaceSession]
    assert rig.parts.session.epochs[-2].close_cause == "write failed: pipe"


def test_a_supervisor_verdict_is_carried_out_with_its_detection_time_and_flags():
    rig = Rig()
    rig.subscribed()
    detected = rig.parts.clock() - 5 * MS

    (command,) = rig.lifecycle.replace_for(
        Replace("stream stalled", detected_ns=detected, immediate=True, liveness=True), rig.parts.clock()
    )

    assert isinstance(command, ev.ReplaceSession) and command.cause == "stream stalled"
    assert rig.parts.session.epochs[-1].detected_ns == detected
    assert not rig.liveness.active  # stopped until the next session is subscribed

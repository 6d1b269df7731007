"""SessionMachine, driven directly: the session's states, the epoch records, the dial back-off."""

from __future__ import annotations

import pytest

from epochbot.book.book import IllegalTransition
from epochbot.engine.config import EngineConfig
from epochbot.engine.liveness import ReplacementGovernor
from epochbot.engine.session import (
    AFTER_STOP,
    TRANSITIONS,
    IllegalSessionTransition,
    SessionMachine,
    SessionState,
    Trigger,
)

MS = 1_000_000
T0 = 1_000_000_000_000


def machine(governor: ReplacementGovernor | None = None, **config) -> SessionMachine:
    return SessionMachine(EngineConfig(**config), governor or ReplacementGovernor())


def subscribed(m: SessionMachine, now: int = T0) -> SessionMachine:
    m.replace(now, "startup")
    m.opened(now + 1 * MS, "wss://x", close_ms=0.0, dial_ms=1.0)
    m.acknowledged(now + 2 * MS)
    return m


def test_a_new_machine_is_idle_at_epoch_zero_and_accepts_epoch_zero():
    m = machine()

    assert (m.state, m.epoch, m.accepting, m.stopped) == (SessionState.IDLE, 0, 0, False)
    assert m.current() is None
    assert not m.session_open and not m.subscribed and not m.live


def test_the_normal_lifecycle_dials_opens_and_subscribes_one_epoch():
    m = machine()

    m.replace(T0, "startup")
    dialing = (m.state, m.epoch, m.accepting, m.session_open)
    m.opened(T0 + 3 * MS, "wss://venue", close_ms=0.5, dial_ms=2.5)
    opened = (m.state, m.session_open, m.subscribed)
    m.acknowledged(T0 + 5 * MS)

    assert dialing == (SessionState.DIALING, 1, 1, False)
    assert opened == (SessionState.OPEN, True, False)
    assert (m.state, m.session_open, m.subscribed, m.live) == (SessionState.SUBSCRIBED, True, True, True)
    record = m.current()
    assert record is not None
    assert (record.epoch, record.cause, record.requested_ns) == (1, "startup", T0)
    assert (record.opened_ns, record.subscribed_ns, record.url, record.dial_ms) == (
        T0 + 3 * MS,
        T0 + 5 * MS,
        "wss://venue",
        2.5,
    )


def test_a_replacement_closes_the_previous_record_with_its_cause_and_opens_the_next():
    m = subscribed(machine())

    m.replace(T0 + 10 * MS, "disconnected: reset", detected_ns=T0 + 9 * MS, immediate=True)

    first, second = m.epochs
    assert (first.closed_ns, first.close_cause) == (T0 + 10 * MS, "disconnected: reset")
    assert (second.epoch, second.cause, second.detected_ns, second.requested_ns) == (
        2,
        "disconnected: reset",
        T0 + 9 * MS,
        T0 + 10 * MS,
    )
    assert (m.state, m.epoch, m.accepting) == (SessionState.DIALING, 2, 2)


def test_only_the_first_acknowledgement_of_a_session_is_its_subscribe_time():
    m = subscribed(machine())

    m.acknowledged(T0 + 50 * MS)  # one ack per subscribe request

    assert m.state is SessionState.SUBSCRIBED
    assert m.current().subscribed_ns == T0 + 2 * MS


def test_an_acknowledgement_before_the_open_notice_is_tolerated_and_the_notice_completes_the_session():
    m = machine()
    m.replace(T0, "startup")

    m.acknowledged(T0 + 1 * MS)
    acked = (m.state, m.session_open, m.subscribed, m.live)
    m.opened(T0 + 2 * MS, "wss://x", close_ms=0.0, dial_ms=0.0)

    assert acked == (SessionState.ACKED, False, True, False)
    assert (m.state, m.live) == (SessionState.SUBSCRIBED, True)


def test_a_repeated_open_notice_keeps_the_acknowledgement():
    m = subscribed(machine())

    m.opened(T0 + 9 * MS, "wss://again", close_ms=0.0, dial_ms=0.0)

    assert m.state is SessionState.SUBSCRIBED


def test_every_state_has_a_move_for_every_trigger_while_running():
    missing = [(s, t) for s in SessionState for t in Trigger if (s, t) not in TRANSITIONS]

    assert not missing  # the booleans before the machine accepted all of them; replays depend on it


def test_a_stop_keeps_the_phase_on_record_and_accepts_no_market_epoch():
    m = subscribed(machine())

    m.stop(T0 + 20 * MS)

    assert (m.stopped, m.state, m.session_open, m.accepting) == (True, SessionState.SUBSCRIBED, True, None)
    assert not m.current().closed_ns  # a fatal stop leaves the record open where it broke


def test_a_shutdown_stop_closes_the_epochs_record_with_its_cause():
    m = subscribed(machine())

    m.stop(T0 + 20 * MS, "shutdown: operator")

    record = m.current()
    assert (record.closed_ns, record.close_cause) == (T0 + 20 * MS, "shutdown: operator")


@pytest.mark.parametrize("move", ["opened", "acknowledged"])
def test_after_a_stop_a_session_notice_is_illegal_and_leaves_the_machine_untouched(move):
    m = subscribed(machine())
    m.stop(T0 + 20 * MS)
    before = (m.state, m.epoch, m.stopped, m.accepting, m.current().opened_ns, m.current().subscribed_ns)

    with pytest.raises(IllegalSessionTransition):
        if move == "opened":
            m.opened(T0 + 30 * MS, "wss://late", close_ms=0.0, dial_ms=0.0)
        else:
            m.acknowledged(T0 + 30 * MS)

    assert (m.state, m.epoch, m.stopped, m.accepting, m.current().opened_ns, m.current().subscribed_ns) == before


def test_an_illegal_session_move_is_an_illegal_transition_the_runtime_treats_as_fatal():
    assert issubclass(IllegalSessionTransition, IllegalTransition)
    assert AFTER_STOP == {Trigger.REPLACE, Trigger.STOP}


def test_after_a_stop_a_replacement_still_counts_its_epoch_but_accepts_no_market_data():
    m = subscribed(machine())
    m.stop(T0 + 20 * MS)

    m.replace(T0 + 30 * MS, "capture: connection opened", immediate=True)  # the replay driver

    assert (m.epoch, m.state, m.stopped, m.accepting) == (2, SessionState.DIALING, True, None)


def test_the_first_loss_dials_at_once_and_repeated_failures_back_off():
    m = subscribed(machine(reconnect_base_ms=25.0, reconnect_jitter=0.0))

    first = m.replace(T0, "startup")  # epoch 2: the startup session was never resynchronised
    second = m.replace(T0 + 1 * MS, "disconnected: again")

    assert m.epochs[0].epoch == 1
    assert first > 0.0  # neither epoch 1 synced nor the dial succeeded: backs off already
    assert second > first


def test_a_fresh_loss_after_a_resynchronised_session_dials_at_once():
    m = subscribed(machine())
    m.resynchronized(T0 + 10 * MS)

    delay = m.replace(T0 + 20 * MS, "disconnected: reset", immediate=True)

    assert delay == 0.0


def test_the_dial_back_off_is_the_same_for_the_same_seed():
    def delays(seed: int) -> list[float]:
        m = machine(ReplacementGovernor(base_ms=1.0), seed=seed)  # the jittered back-off dominates
        return [m.replace(T0 + i * MS, f"cause {i}") for i in range(6)]

    assert delays(3) == delays(3)
    assert delays(3) != delays(4)


def test_the_dial_back_off_stays_at_its_ceiling_however_long_the_outage():
    m = machine(
        ReplacementGovernor(base_ms=1.0, max_ms=1.0, max_in_window=10**9),
        reconnect_max_ms=5000.0,
        reconnect_jitter=0.0,
    )

    delays = [m.replace(T0 + i * MS, "dial failed") for i in range(1100)]

    assert delays[-1] == 5000.0  # 1100 failed dials: 2**1099 would not even convert to a float


def test_resynchronized_stamps_an_opened_epoch_once():
    m = machine()
    m.replace(T0, "startup")
    unopened = m.resynchronized(T0 + 1 * MS)
    m.opened(T0 + 2 * MS, "wss://x", close_ms=0.0, dial_ms=0.0)

    stamped = m.resynchronized(T0 + 5 * MS)
    again = m.resynchronized(T0 + 9 * MS)

    assert unopened is None and again is None
    assert stamped is m.current()
    assert (stamped.synced_ns, stamped.snapshots_ns) == (T0 + 5 * MS, T0 + 5 * MS)


def test_the_subscription_wait_is_measured_only_while_open_and_unacknowledged():
    m = machine()
    m.replace(T0, "startup")
    dialing = m.subscription_pending_ms(T0 + 5 * MS)
    m.opened(T0 + 10 * MS, "wss://x", close_ms=0.0, dial_ms=0.0)
    waiting = m.subscription_pending_ms(T0 + 250 * MS)
    m.acknowledged(T0 + 300 * MS)

    assert (dialing, waiting, m.subscription_pending_ms(T0 + 400 * MS)) == (0.0, 240.0, 0.0)


def test_write_failures_count_per_session():
    m = subscribed(machine())
    m.write_failed()
    m.write_failed()
    counted = m.write_failures

    m.replace(T0 + 10 * MS, "write failed: broken pipe")

    assert (counted, m.write_failures) == (2, 0)


def test_the_epoch_history_is_bounded():
    m = machine()

    for i in range(5001):
        m.replace(T0 + i * MS, "again")
        m.opened(T0 + i * MS, "wss://x", close_ms=0.0, dial_ms=0.0)
        m.resynchronized(T0 + i * MS)

    assert len(m.epochs) == 4001
    assert m.epochs[-1].epoch == 5001

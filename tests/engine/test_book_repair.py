"""BookRepair, on its own: snapshot requests and answers, rebuild, validation, what breaks a book."""

from __future__ import annotations

from epochbot.book.book import BookState, DiffOutcome
from epochbot.engine.repair import BookRepair
from epochbot.model import events as ev
from tests.core._support import diff
from tests.engine._parts import Parts

BIDS = [["100.00", "1.000"], ["99.00", "2.000"]]
ASKS = [["101.00", "1.000"], ["102.00", "2.000"]]
CROSSED_ASKS = [["99.50", "1.000"]]


def repair_of(parts: Parts) -> BookRepair:
    return BookRepair(
        parts.config,
        parts.clock,
        parts.symbols,
        parts.session,
        parts.incidents,
        parts.log,
        parts.counters,
        parts.evaluate,
        parts.go_fatal,
    )


def answer(fetch: ev.Command, last_update_id: int = 100, asks=ASKS) -> ev.SnapshotReady:
    assert isinstance(fetch, ev.FetchSnapshot)
    return ev.SnapshotReady(
        epoch=fetch.epoch,
        symbol=fetch.symbol,
        request_id=fetch.request_id,
        last_update_id=last_update_id,
        bids=BIDS,
        asks=asks,
    )


def test_a_snapshot_request_names_the_epoch_the_symbol_and_a_fresh_request_id():
    parts = Parts(snapshot_limits={"BTCUSDT": 50}).subscribe()
    repair = repair_of(parts)
    state = parts.symbols["BTCUSDT"]

    (first,) = repair.request_snapshot(state, parts.clock(), "first diff")
    (second,) = repair.request_snapshot(state, parts.clock(), "retry", delay_ms=20.0)

    assert first == ev.FetchSnapshot(epoch=1, symbol="BTCUSDT", request_id=1, limit=50, delay_ms=0.0)
    assert (second.request_id, second.delay_ms, state.snapshot_request) == (2, 20.0, 2)


def test_an_answer_to_no_outstanding_request_is_counted_and_ignored():
    parts = Parts().subscribe()
    repair = repair_of(parts)

    commands = repair.on_snapshot_ready(answer(ev.FetchSnapshot(epoch=1, symbol="BTCUSDT", request_id=9)), 0)

    assert commands == ()
    assert parts.counters["unsolicited_snapshots"] == 1
    assert parts.symbols["BTCUSDT"].book.state is BookState.EMPTY


def test_a_book_installed_from_rest_waits_for_a_live_diff_before_it_counts_as_validated():
    parts = Parts().subscribe()
    repair = repair_of(parts)
    state = parts.symbols["BTCUSDT"]
    (fetch,) = repair.request_snapshot(state, parts.clock(), "subscribed")

    repair.on_snapshot_ready(answer(fetch), parts.clock.advance_ms(10))
    waiting = set(repair.validating)
    outcome = state.book.on_diff(diff(101, 101, pu=100))
    repair.book_validated(state, parts.clock.advance_ms(1))

    assert waiting == {"BTCUSDT"}
    assert outcome is DiffOutcome.APPLIED
    assert not repair.validating


def test_every_book_validated_stamps_the_epoch_closes_the_incident_and_evaluates_confidence():
    parts = Parts().subscribe()
    parts.incidents.open(parts.clock())
    repair = repair_of(parts)
    state = parts.symbols["BTCUSDT"]
    (fetch,) = repair.request_snapshot(state, parts.clock(), "subscribed")
    repair.on_snapshot_ready(answer(fetch), parts.clock.advance_ms(10))
    state.book.on_diff(diff(101, 101, pu=100))

    now = parts.clock.advance_ms(5)
    repair.book_validated(state, now)

    record = parts.session.current()
    assert record.synced_ns == now
    assert list(parts.incidents.ttcr_ms) == [15.0]
    assert parts.evaluated[-1] == now
    assert "resynchronized" in parts.messages()


def test_a_gap_invalidates_the_book_opens_a_resync_and_requests_its_snapshot():
    parts = Parts().subscribe()
    repair = repair_of(parts)
    state = parts.symbols["BTCUSDT"]
    (fetch,) = repair.request_snapshot(state, parts.clock(), "subscribed")
    repair.on_snapshot_ready(answer(fetch), parts.clock.advance_ms(1))
    state.book.on_diff(diff(101, 101, pu=100))
    broken = diff(105, 106, pu=104)
    outcome = state.book.on_diff(broken)

    commands = repair.on_broken_diff(state, broken, outcome, parts.clock.advance_ms(1))

    assert outcome is DiffOutcome.GAP
    assert [type(c) for c in commands] == [ev.FetchSnapshot]
    assert (state.resync.cause, state.resync.epoch) == ("gap", 1)
    assert list(repair.book_resyncs) == [state.resync]
    assert (parts.counters["gaps"], parts.counters["book_resyncs"]) == (1, 1)
    assert parts.incidents.started_ns == parts.clock()


def test_a_gap_soon_after_an_unreadable_frame_names_the_frame_as_its_cause():
    parts = Parts().subscribe()
    repair = repair_of(parts)
    repair.on_malformed(ev.MalformedFrame(epoch=1, reason="bad json", sample="{"), parts.clock())

    repair.on_gap_detected(ev.GapDetected(epoch=1, symbol="BTCUSDT", expected=5, got=9), parts.clock.advance_ms(100))

    state = parts.symbols["BTCUSDT"]
    assert state.resync.cause == "malformed"
    assert state.book.last_problem.startswith("malformed frame skipped, then reader saw gap")
    assert parts.counters["malformed"] == 1


def test_the_same_gap_two_seconds_later_is_a_plain_gap():
    parts = Parts().subscribe()
    repair = repair_of(parts)
    repair.on_malformed(ev.MalformedFrame(epoch=1, reason="bad json"), parts.clock())

    repair.on_gap_detected(ev.GapDetected(epoch=1, symbol="BTCUSDT", expected=5, got=9), parts.clock.advance_ms(2001))

    assert parts.symbols["BTCUSDT"].resync.cause == "gap"


def test_consecutive_crossed_snapshots_are_fatal():
    parts = Parts(max_bad_snapshots=3).subscribe()
    repair = repair_of(parts)
    state = parts.symbols["BTCUSDT"]
    (fetch,) = repair.request_snapshot(state, parts.clock(), "subscribed")

    for _ in range(3):
        (command,) = repair.on_snapshot_ready(answer(fetch, asks=CROSSED_ASKS), parts.clock.advance_ms(1))
        if isinstance(command, ev.FetchSnapshot):
            fetch = command

    assert isinstance(command, ev.Stop)
    assert parts.fatal == ["BTCUSDT: 3 consecutive unusable snapshots (crossed snapshot 100: bid 10000 >= ask 9950)"]


def test_a_failed_fetch_is_retried_no_sooner_than_the_venue_asks():
    parts = Parts(snapshot_retry_base_ms=20.0).subscribe()
    repair = repair_of(parts)
    state = parts.symbols["BTCUSDT"]
    (fetch,) = repair.request_snapshot(state, parts.clock(), "subscribed")

    (retry,) = repair.on_snapshot_failed(
        ev.SnapshotFailed(epoch=1, symbol="BTCUSDT", request_id=fetch.request_id, reason="429", retry_after_ms=1500),
        parts.clock.advance_ms(1),
    )

    assert (retry.delay_ms, state.bad_snapshots, parts.counters["snapshots_failed"]) == (1500.0, 1, 1)


def test_the_fetch_retry_stays_at_its_ceiling_however_long_the_venue_fails():
    parts = Parts(snapshot_retry_max_ms=2000.0).subscribe()
    repair = repair_of(parts)
    (fetch,) = repair.request_snapshot(parts.symbols["BTCUSDT"], parts.clock(), "subscribed")

    for _ in range(1100):
        (fetch,) = repair.on_snapshot_failed(
            ev.SnapshotFailed(epoch=1, symbol="BTCUSDT", request_id=fetch.request_id, reason="503"),
            parts.clock.advance_ms(1),
        )

    assert fetch.delay_ms == 2000.0


def test_books_waiting_for_request_weight_keep_only_a_few_diffs():
    parts = Parts(symbols=("BTCUSDT", "ETHUSDT"), book_buffer_limit=600).subscribe()
    repair = repair_of(parts)

    repair.on_snapshot_budget(ev.SnapshotBudget(waiting=("ETHUSDT",), used=2400, cap=2400), parts.clock())
    parked = parts.symbols["ETHUSDT"].book.buffer_limit
    repair.on_snapshot_budget(ev.SnapshotBudget(waiting=(), used=100, cap=2400), parts.clock())

    assert parked == 20
    assert parts.symbols["ETHUSDT"].book.buffer_limit == 600
    assert parts.symbols["BTCUSDT"].book.buffer_limit == 600
    assert (repair.budget_waiting, repair.budget_used) == ((), 100)


def test_a_queue_overflow_resyncs_each_named_book_once():
    parts = Parts(symbols=("BTCUSDT", "ETHUSDT")).subscribe()
    repair = repair_of(parts)

    commands = repair.on_overflow(
        ev.MarketQueueOverflow(symbols=("BTCUSDT", "UNKNOWN"), dropped=7), parts.clock.advance_ms(1)
    )

    assert [(type(c), c.symbol) for c in commands] == [(ev.FetchSnapshot, "BTCUSDT")]
    assert parts.counters["overflow_dropped"] == 7
    assert parts.symbols["BTCUSDT"].resync.cause == "overflow"
    assert parts.symbols["ETHUSDT"].resync is None


def test_a_new_session_resets_every_book_and_forgets_its_requests():
    parts = Parts().subscribe()
    repair = repair_of(parts)
    state = parts.symbols["BTCUSDT"]
    (fetch,) = repair.request_snapshot(state, parts.clock(), "subscribed")
    repair.on_snapshot_ready(answer(fetch), parts.clock.advance_ms(1))
    repair.start_book_resync(state, "gap", parts.clock())

    repair.reset("disconnected: reset")

    assert (state.book.state, state.snapshot_request, state.bad_snapshots, state.resync) == (
        BookState.EMPTY,
        0,
        0,
        None,
    )
    assert state.book.last_problem == "new session (disconnected: reset)"
    assert not repair.validating

"""Engine: epochs, session lifecycle, book resyncs, timers, operator actions, fatal corruption."""

from __future__ import annotations

import pytest

from epochbot.book.book import BookState, VenueRules
from epochbot.engine.engine import FATAL_EXIT_CODE, Engine, EngineConfig
from epochbot.engine.modes import ModeConfig
from epochbot.model import events as ev
from epochbot.model.modes import Mode
from tests.core._support import FakeClock, diff

SYMBOLS = ("BTCUSDT", "ETHUSDT")
BIDS = [["100.00", "1.000"], ["99.00", "2.000"]]
ASKS = [["101.00", "1.000"], ["102.00", "2.000"]]


def make_engine(**overrides) -> tuple[Engine, FakeClock]:
    clock = FakeClock()
    config = EngineConfig(venue=VenueRules.USDM, symbols=SYMBOLS, **overrides)
    return Engine(config, clock), clock


def fetches(commands) -> dict[str, ev.FetchSnapshot]:
    return {c.symbol: c for c in commands if type(c) is ev.FetchSnapshot}


def open_session(engine: Engine, clock: FakeClock) -> dict[str, ev.FetchSnapshot]:
    if engine.epoch == 0:
        engine.start()
    clock.advance_ms(5)
    engine.handle(ev.SessionOpened(epoch=engine.epoch, url="wss://x", dial_ms=3.0, close_ms=1.0))
    clock.advance_ms(5)
    return fetches(engine.handle(ev.SubscriptionConfirmed(epoch=engine.epoch, request_id=1)))


def snapshot_for(
    engine: Engine, fetch: ev.FetchSnapshot, last_update_id: int = 100, bids=BIDS, asks=ASKS
) -> ev.SnapshotReady:
    return ev.SnapshotReady(
        epoch=engine.epoch,
        symbol=fetch.symbol,
        request_id=fetch.request_id,
        last_update_id=last_update_id,
        bids=bids,
        asks=asks,
    )


def synced_engine(**overrides) -> tuple[Engine, FakeClock]:
    """Books installed from snapshots (id 100) and validated by one live diff each (id 101)."""
    engine, clock = make_engine(**overrides)
    for fetch in open_session(engine, clock).values():
        clock.advance_ms(10)
        engine.handle(snapshot_for(engine, fetch))
    for symbol in SYMBOLS:
        clock.advance_ms(1)
        engine.handle(market_diff(engine, clock, symbol, 101, 101, 100))
    return engine, clock


def market_diff(
    engine: Engine,
    clock: FakeClock,
    symbol: str,
    first: int,
    final: int,
    pu: int,
    bids=(),
    asks=(),
    epoch: int | None = None,
):
    return diff(
        first,
        final,
        bids,
        asks,
        pu=pu,
        symbol=symbol,
        epoch=engine.epoch if epoch is None else epoch,
        recv_ts=clock.now,
    )


# ------------------------------------------------------------------ startup and sync


def test_start_asks_for_the_first_session_with_epoch_one():
    engine, _ = make_engine()

    commands = engine.start()

    assert commands == [ev.ReplaceSession(epoch=1, cause="startup", delay_ms=0.0)]


def test_subscription_confirmed_requests_a_snapshot_for_every_symbol():
    engine, clock = make_engine()

    requested = open_session(engine, clock)

    assert set(requested) == set(SYMBOLS)
    assert all(f.epoch == 1 for f in requested.values())


def test_snapshot_with_the_outstanding_request_id_syncs_the_book():
    engine, clock = make_engine()
    requested = open_session(engine, clock)

    engine.handle(snapshot_for(engine, requested["BTCUSDT"]))

    assert engine.book("BTCUSDT").synced
    assert not engine.book("ETHUSDT").synced


def test_snapshot_with_an_old_request_id_is_ignored():
    engine, clock = make_engine()
    requested = open_session(engine, clock)
    stale = ev.SnapshotReady(
        epoch=1,
        symbol="BTCUSDT",
        request_id=requested["BTCUSDT"].request_id + 100,
        last_update_id=100,
        bids=BIDS,
        asks=ASKS,
    )

    commands = engine.handle(stale)

    assert commands == ()
    assert engine.book("BTCUSDT").state is BookState.EMPTY
    assert engine.counters["unsolicited_snapshots"] == 1


def test_all_books_synced_records_epoch_phases_and_time_to_correct_resync():
    engine, clock = synced_engine()

    record = engine.epochs[-1]

    assert record.synced_ns
    assert set(record.phases_ms()) == {"detect", "close", "dial", "subscribe", "snapshot", "rebuild", "validate"}
    assert record.phases_ms()["subscribe"] == 5.0
    assert record.phases_ms()["dial"] == 3.0
    assert len(engine.ttcr_ms) == 1 and engine.ttcr_ms[0] > 0


# ------------------------------------------------------------------ epochs


def test_market_event_from_an_old_epoch_is_discarded_and_counted():
    engine, clock = synced_engine()
    before = engine.book("BTCUSDT").state_hash()

    engine.handle(market_diff(engine, clock, "BTCUSDT", 100, 101, 99, bids=[["100.50", "1"]], epoch=0))

    assert engine.counters["discarded_stale_epoch"] == 1
    assert engine.book("BTCUSDT").state_hash() == before


@pytest.mark.parametrize(
    "event",
    [
        ev.Disconnected(epoch=0, reason="old"),
        ev.WriteFailed(epoch=0, reason="old"),
        ev.SubscriptionFailed(epoch=0, reason="old"),
        ev.ServerShutdownNotice(epoch=0),
        ev.GapDetected(epoch=0, symbol="BTCUSDT"),
        ev.SessionOpened(epoch=0),
    ],
)
def test_epoch_bound_control_event_from_an_old_epoch_is_discarded(event):
    engine, _ = synced_engine()

    commands = engine.handle(event)

    assert commands == ()
    assert engine.epoch == 1
    assert engine.counters["discarded_stale_epoch"] == 1
    assert all(engine.book(s).synced for s in SYMBOLS)


def test_disconnect_replaces_the_session_with_the_next_epoch_and_resets_every_book():
    engine, clock = synced_engine()

    commands = engine.handle(ev.Disconnected(epoch=1, reason="eof"))

    assert [type(c) for c in commands] == [ev.ReplaceSession]
    assert commands[0].epoch == 2 and engine.epoch == 2
    assert all(engine.book(s).state is BookState.EMPTY for s in SYMBOLS)
    assert engine.epochs[0].close_cause == "disconnected: eof"


def test_snapshot_answer_from_the_previous_epoch_is_discarded_after_replacement():
    engine, clock = make_engine()
    requested = open_session(engine, clock)
    old_answer = snapshot_for(engine, requested["BTCUSDT"])
    engine.handle(ev.Disconnected(epoch=1, reason="eof"))

    engine.handle(old_answer)

    assert engine.book("BTCUSDT").state is BookState.EMPTY
    assert engine.counters["discarded_stale_epoch"] == 1


# ------------------------------------------------------------------ book resync


def test_gap_requests_a_snapshot_for_that_symbol_only_and_keeps_the_session():
    engine, clock = synced_engine()

    commands = engine.handle(market_diff(engine, clock, "BTCUSDT", 105, 106, 104))

    assert [(type(c), c.symbol) for c in commands] == [(ev.FetchSnapshot, "BTCUSDT")]
    assert engine.epoch == 1
    assert engine.book("BTCUSDT").state is BookState.INVALID
    assert engine.book("ETHUSDT").synced
    assert engine.counters["gaps"] == 1


def test_book_resync_after_gap_records_its_duration_and_time_to_correct_resync():
    engine, clock = synced_engine()
    fetch = fetches(engine.handle(market_diff(engine, clock, "BTCUSDT", 150, 151, 149)))["BTCUSDT"]
    engine.handle(market_diff(engine, clock, "BTCUSDT", 152, 153, 151))
    clock.advance_ms(40)

    engine.handle(snapshot_for(engine, fetch, last_update_id=152))

    assert engine.book("BTCUSDT").synced
    assert engine.book("BTCUSDT").last_update_id == 153
    resync = engine.book_resyncs[-1]
    assert (resync.symbol, resync.cause, resync.resync_ms) == ("BTCUSDT", "gap", 40.0)
    assert engine.ttcr_ms[-1] == 40.0


def test_overflow_invalidates_the_listed_books_and_requests_their_snapshots():
    engine, clock = synced_engine()

    commands = engine.handle(ev.MarketQueueOverflow(symbols=("ETHUSDT",), dropped=7))

    assert set(fetches(commands)) == {"ETHUSDT"}
    assert engine.book("ETHUSDT").state is BookState.INVALID
    assert engine.book("BTCUSDT").synced
    assert engine.counters["overflow_dropped"] == 7


def test_crossed_snapshots_repeated_max_bad_snapshots_times_are_fatal():
    engine, clock = make_engine(max_bad_snapshots=3)
    fetch = open_session(engine, clock)["BTCUSDT"]
    crossed = dict(bids=[["105.00", "1"]], asks=[["101.00", "1"]])

    commands = ()
    for _ in range(3):
        commands = engine.handle(snapshot_for(engine, fetch, **crossed))
        fetch = fetches(commands).get("BTCUSDT", fetch)

    stops = [c for c in commands if type(c) is ev.Stop]
    assert stops and stops[0].exit_code == FATAL_EXIT_CODE == 3
    assert engine.fatal and "BTCUSDT" in engine.fatal
    assert engine.mode is Mode.HALTED


def test_crossed_snapshot_below_the_limit_asks_again_with_backoff():
    engine, clock = make_engine(max_bad_snapshots=3)
    fetch = open_session(engine, clock)["BTCUSDT"]

    commands = engine.handle(snapshot_for(engine, fetch, bids=[["105.00", "1"]], asks=[["101.00", "1"]]))

    again = fetches(commands)["BTCUSDT"]
    assert again.request_id != fetch.request_id and again.delay_ms > 0
    assert engine.fatal is None


# ------------------------------------------------------------------ timers


def test_market_silence_beyond_the_limit_asks_the_venue_before_replacing():
    engine, clock = synced_engine(silence_replace_ms=1500)
    engine.handle(market_diff(engine, clock, "BTCUSDT", 102, 102, 101))
    clock.advance_ms(1600)

    commands = engine.handle(ev.TimerTick())

    assert [type(c) for c in commands] == [ev.ProbeVenue, ev.ProbeVenue]
    assert all(c.limit <= 5 and c.epoch == engine.epoch for c in commands)


def test_a_probe_showing_the_venue_moved_replaces_a_healthy_session_at_once_after_the_grace():
    engine, clock = synced_engine(silence_replace_ms=1500, replace_healthy_ms=1000)
    engine.handle(market_diff(engine, clock, "BTCUSDT", 102, 102, 101))
    clock.advance_ms(1600)
    probe = next(c for c in engine.handle(ev.TimerTick()) if c.symbol == "BTCUSDT")

    held = engine.handle(
        ev.ProbeResult(epoch=engine.epoch, symbol="BTCUSDT", request_id=probe.request_id, last_update_id=150)
    )
    (confirm,) = held  # asked again once the grace passed (the minimum: no inter-arrival learned yet)
    clock.advance_ms(confirm.delay_ms + 1)
    commands = engine.handle(
        ev.ProbeResult(
            epoch=engine.epoch, symbol="BTCUSDT", request_id=confirm.request_id, last_update_id=152, market_backlog_ns=0
        )
    )

    assert type(confirm) is ev.ProbeVenue and confirm.delay_ms == 20
    assert [type(c) for c in commands] == [ev.ReplaceSession]
    assert commands[0].epoch == 2 and "stalled" in commands[0].cause and commands[0].delay_ms == 0


def test_a_probe_showing_the_venue_did_not_move_keeps_the_session_as_a_quiet_market():
    engine, clock = synced_engine(silence_replace_ms=1500)
    engine.handle(market_diff(engine, clock, "BTCUSDT", 102, 102, 101))
    clock.advance_ms(1600)
    probes = {c.symbol: c for c in engine.handle(ev.TimerTick())}

    replies = [
        engine.handle(
            ev.ProbeResult(
                epoch=engine.epoch, symbol=s, request_id=p.request_id, last_update_id=102 if s == "BTCUSDT" else 101
            )
        )
        for s, p in probes.items()
    ]
    clock.advance_ms(50)
    engine.handle(ev.TimerTick())

    assert replies == [(), ()] and engine.epoch == 1
    assert "quiet_market_ms" in engine.confidence.reason_names
    assert "market_silence_ms" not in engine.confidence.reason_names
    assert all(engine.book(s).synced for s in SYMBOLS)


def test_market_silence_below_the_limit_keeps_the_session():
    engine, clock = synced_engine(silence_replace_ms=1500)
    engine.handle(market_diff(engine, clock, "BTCUSDT", 100, 101, 99))
    clock.advance_ms(1000)

    assert engine.handle(ev.TimerTick()) == ()


# ------------------------------------------------------------------ operator


def test_operator_resync_of_one_symbol_refetches_only_that_book():
    engine, _ = synced_engine()

    commands = engine.handle(ev.OperatorForceResync(symbol="ETHUSDT"))

    assert set(fetches(commands)) == {"ETHUSDT"}
    assert engine.book("ETHUSDT").state is BookState.INVALID and engine.book("BTCUSDT").synced


def test_operator_resync_of_all_symbols_refetches_every_book():
    engine, _ = synced_engine()

    commands = engine.handle(ev.OperatorForceResync())

    assert set(fetches(commands)) == set(SYMBOLS)
    assert engine.epoch == 1


def test_operator_resync_of_an_unknown_symbol_does_nothing():
    engine, _ = synced_engine()

    assert engine.handle(ev.OperatorForceResync(symbol="NOPE")) == ()


def test_operator_replace_session_opens_the_next_epoch():
    engine, _ = synced_engine()

    commands = engine.handle(ev.OperatorForceResync(replace_session=True))

    assert [(type(c), c.epoch) for c in commands] == [(ev.ReplaceSession, 2)]


def test_operator_mode_is_a_floor_under_the_automatic_mode():
    engine, clock = synced_engine(modes=ModeConfig(recovery_hold_ms=0))
    engine.handle(ev.TimerTick())
    clock.advance_ms(1)
    engine.handle(ev.TimerTick())
    assert engine.mode is Mode.NORMAL

    engine.handle(ev.OperatorSetMode(mode="reduce-only"))

    assert engine.mode is Mode.REDUCE_ONLY


def test_operator_set_mode_accepts_the_documented_aliases():
    engine, _ = synced_engine()

    engine.handle(ev.OperatorSetMode(mode="halt"))

    assert engine.mode is Mode.HALTED


# ------------------------------------------------------------------ control before market


def test_inbox_hands_out_control_events_before_market_events():
    inbox_module = pytest.importorskip("epochbot.runtime.inbox")
    inbox = inbox_module.Inbox()
    market = diff(1, 1)
    control = ev.TimerTick()
    inbox.put_market(market)
    inbox.put_control(control)

    assert len(inbox) == 2
    assert inbox.next() is control
    assert inbox.next() is market

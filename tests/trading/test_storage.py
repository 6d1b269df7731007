"""SQLite storage round trips and the non-blocking batched writer."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from fractions import Fraction

from epochbot.engine.engine import EpochRecord
from epochbot.model.trade_events import Fill
from epochbot.persistence.storage import Candle, SqliteStorage, Storage
from epochbot.persistence.writer import StorageWriter
from epochbot.trading.orders import OrderTransition
from epochbot.trading.portfolio import FundingRecord
from epochbot.trading.risk import RiskLimits, RiskState
from epochbot.trading.trader import RiskSnapshot


def transition(coid: str, state: str, ts: int, prev: str = "") -> OrderTransition:
    return OrderTransition(
        ts, coid, "BTCUSDT", "BUY", "LIMIT", 10, 2_000_000, "GTC", False, "bid", prev, state, 0, "", "test"
    )


def fill(trade_id: str, ts: int) -> Fill:
    return Fill(
        ts_ns=ts,
        symbol="BTCUSDT",
        client_order_id="eb1-0",
        side="BUY",
        qty=10,
        price=2_000_000,
        fee=Decimal("0.00012345"),
        is_maker=True,
        trade_id=trade_id,
    )


def test_the_database_runs_in_wal_mode_and_satisfies_the_storage_protocol(tmp_path):
    storage = SqliteStorage(tmp_path / "epochbot.db")

    assert storage.journal_mode() == "wal"
    assert isinstance(storage, Storage)
    storage.close()


def test_session_counter_persists_across_reopen(tmp_path):
    path = tmp_path / "epochbot.db"
    first = SqliteStorage(path)
    a, b = first.next_session(), first.next_session()
    first.close()

    c = SqliteStorage(path).next_session()

    assert (a, b, c) == (1, 2, 3)


def test_open_orders_are_the_orders_whose_last_journal_state_is_not_terminal(tmp_path):
    storage = SqliteStorage(tmp_path / "db")
    storage.write_batch(
        [
            transition("eb1-0", "PENDING_NEW", 1),
            transition("eb1-0", "NEW", 2, "PENDING_NEW"),
            transition("eb1-1", "PENDING_NEW", 3),
            transition("eb1-1", "FILLED", 4, "PENDING_NEW"),
            transition("eb1-2", "PENDING_NEW", 5),
            transition("eb1-2", "UNKNOWN", 6, "PENDING_NEW"),
        ]
    )

    open_orders = storage.load_open_orders()

    assert [(o.client_order_id, o.state) for o in open_orders] == [("eb1-0", "NEW"), ("eb1-2", "UNKNOWN")]
    assert open_orders[0] == transition("eb1-0", "NEW", 2, "PENDING_NEW")
    assert [t.state for t in storage.load_order_journal("eb1-1")] == ["PENDING_NEW", "FILLED"]


def test_fills_round_trip_exactly_and_a_replayed_trade_is_stored_once(tmp_path):
    storage = SqliteStorage(tmp_path / "db")

    storage.write_batch([fill("t1", 10), fill("t2", 20), fill("t1", 10)])

    assert storage.load_fills() == [fill("t1", 10), fill("t2", 20)]
    assert storage.load_fills(since_ns=15) == [fill("t2", 20)]


def test_the_latest_risk_snapshot_restores_the_risk_state(tmp_path):
    storage = SqliteStorage(tmp_path / "db")
    older = RiskState(day=5, session_pnl=Fraction(1))
    newer = RiskState(day=5, session_pnl=Fraction(-7, 3), breakers={"BTCUSDT": 5 * 86_400 * 10**9 + 10**12})

    storage.write_batch([RiskSnapshot(1, older.to_dict()), RiskSnapshot(2, newer.to_dict())])
    restored, warnings = RiskState.restore(storage.load_latest_risk(), 5 * 86_400 * 10**9 + 1, RiskLimits())

    assert warnings == [] and restored == newer


def test_candles_upsert_by_open_time_and_read_back_in_a_range(tmp_path):
    storage = SqliteStorage(tmp_path / "db")
    forming = Candle("BTCUSDT", "1m", 60_000, "1", "2", "0.5", "1.5", "10", closed=False)
    final = Candle("BTCUSDT", "1m", 60_000, "1", "2.5", "0.5", "2", "12", closed=True)

    storage.write_batch(
        [
            Candle("BTCUSDT", "1m", 0, "1", "1", "1", "1", "1"),
            forming,
            final,
            Candle("BTCUSDT", "1m", 120_000, "2", "2", "2", "2", "1"),
        ]
    )

    assert storage.load_candles("BTCUSDT", "1m", 60_000, 60_000) == [final]
    assert [c.open_ts for c in storage.load_candles("BTCUSDT", "1m")] == [0, 60_000, 120_000]


def test_epochs_and_funding_are_stored(tmp_path):
    storage = SqliteStorage(tmp_path / "db")
    record = EpochRecord(epoch=3, cause="silence", detected_ns=1_000_000, requested_ns=2_000_000, synced_ns=9_000_000)

    storage.write_batch([record, FundingRecord("BTCUSDT", 1, Decimal("0.0001"), 300_000, 2_000, Fraction(-6))])

    (row,) = storage.load_epochs()
    assert (row["epoch"], row["cause"], row["resync_ms"]) == (3, "silence", 8.0) and "dial" in row["phases"]


def test_a_batch_is_all_or_nothing(tmp_path):
    storage = SqliteStorage(tmp_path / "db")

    try:
        storage.write_batch([fill("t1", 1), object()])
    except TypeError:
        pass

    assert storage.load_fills() == []


# ------------------------------------------------------------------------------- writer


class GatedStorage:
    """Blocks every write until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches: list[list] = []

    def write_batch(self, records):
        self.gate.wait(5)
        self.batches.append(list(records))


def test_the_writer_batches_records_into_committed_transactions(tmp_path):
    storage = SqliteStorage(tmp_path / "db")
    writer = StorageWriter(storage, batch_size=50)

    accepted = [writer.submit(fill(f"t{i}", i)) for i in range(120)]
    flushed = writer.flush()

    assert all(accepted) and flushed
    assert len(storage.load_fills()) == 120 and writer.written == 120
    assert writer.close()


def test_submit_never_blocks_and_counts_drops_when_the_queue_is_full():
    slow = GatedStorage()
    writer = StorageWriter(slow, maxsize=4, batch_size=1)
    writer.submit("first")  # taken by the thread, which now blocks inside write_batch
    deadline = time.monotonic() + 2
    while writer.pending and time.monotonic() < deadline:
        time.sleep(0.001)

    started = time.perf_counter()
    results = [writer.submit(i) for i in range(10)]
    elapsed = time.perf_counter() - started

    assert results == [True] * 4 + [False] * 6
    assert writer.dropped == 6
    assert elapsed < 0.05
    slow.gate.set()
    assert writer.close()
    assert [b[0] for b in slow.batches] == ["first", 0, 1, 2, 3]


def test_a_failing_batch_is_counted_and_the_writer_keeps_going(tmp_path):
    storage = SqliteStorage(tmp_path / "db")
    writer = StorageWriter(storage, batch_size=10)

    writer.submit(object())
    writer.flush()
    writer.submit(fill("t1", 1))
    writer.flush()

    assert not writer.healthy and writer.lost == 1 and "cannot store" in writer.last_error
    assert len(storage.load_fills()) == 1
    writer.close()


def test_close_flushes_pending_records_and_later_submits_are_refused(tmp_path):
    storage = SqliteStorage(tmp_path / "db")
    writer = StorageWriter(storage)
    for i in range(10):
        writer.submit(fill(f"t{i}", i))

    closed = writer.close()
    late = writer.submit(fill("late", 99))

    assert closed and not late
    assert len(storage.load_fills()) == 10


def test_known_client_ids_leave_out_orders_last_reported_not_found(tmp_path):
    from epochbot.persistence.storage import SqliteStorage
    from epochbot.trading.orders import OrderTransition

    storage = SqliteStorage(str(tmp_path / "db.sqlite3"))
    try:

        def row(coid, prev, state, reason):
            return OrderTransition(
                1, coid, "BTCUSDT", "BUY", "LIMIT", 1, 1, "GTC", False, "", prev, state, 0, "", reason
            )

        storage.write_batch(
            [
                row("eb1-0", "", "PENDING_NEW", "sent"),
                row("eb1-0", "PENDING_NEW", "NEW", "accepted"),
                row("eb1-1", "", "PENDING_NEW", "sent"),
                row("eb1-1", "PENDING_NEW", "UNKNOWN", "unknown: 503"),
                row("eb1-1", "UNKNOWN", "REJECTED", "reconciled: not found after 16000 ms"),
            ]
        )

        assert storage.known_client_ids() == {"eb1-0"}
    finally:
        storage.close()

"""The `Storage` protocol and its SQLite implementation (WAL, one file).

Tables:

* ``meta``            key/value: ``session`` (the persistent counter behind client order ids).
* ``epochs``          one row per transport epoch (cause, timings, phases as JSON).
* ``orders``          the order journal: one row per lifecycle transition (never updated).
* ``fills``           executions; ``(symbol, trade_id)`` is unique, replays are ignored.
* ``funding``         USD-M funding settlements.
* ``risk_snapshots``  versioned JSON bodies of `epochbot.trading.risk.RiskState`.
* ``candles``         klines, upserted by ``(symbol, interval, open_ts)``.

Records are the domain objects themselves (`OrderTransition`, `Fill`, `RiskSnapshot`,
`FundingRecord`, `EpochRecord`, `Candle`, all plain records of `epochbot.model.records`):
``write_batch`` dispatches on type and writes a whole batch in one transaction. Exact values
(Fractions, Decimals) are stored as text.

Connections are per thread (sqlite3 objects must not be shared): the writer thread writes, the
startup code reads through its own connection; WAL lets both proceed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from epochbot.model.records import (
    TERMINAL_ORDER_STATES,
    Candle,
    EpochRecord,
    FundingRecord,
    OrderState,
    OrderTransition,
    RiskSnapshot,
)
from epochbot.model.trade_events import Fill

__all__ = ["Candle", "SqliteStorage", "Storage", "UnsupportedRecord"]


class UnsupportedRecord(TypeError):
    pass


@runtime_checkable
class Storage(Protocol):
    """What the runtime needs from a database; SQLite today, PostgreSQL can implement it too."""

    def write_batch(self, records: Sequence[object]) -> None: ...

    def next_session(self) -> int: ...

    def load_latest_risk(self) -> str | None: ...

    def load_open_orders(self) -> list[OrderTransition]: ...

    def load_fills(self, since_ns: int = 0) -> list[Fill]: ...

    def known_client_ids(self) -> set[str]:
        """Every client order id the journal has a row for, except orders whose last word is
        "not found at the venue" (a venue that has them after all must be listened to)."""
        ...

    def load_venue_order_ids(self) -> dict[tuple[str, str], str]: ...

    def first_order_ns(self, symbol: str) -> int | None: ...

    def load_candles(
        self, symbol: str, interval: str, start_ms: int = 0, end_ms: int | None = None
    ) -> list[Candle]: ...

    def load_epochs(self, limit: int = 1000) -> list[dict]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER NOT NULL, cause TEXT, detected_ns INTEGER, synced_ns INTEGER, closed_ns INTEGER,
    close_cause TEXT, resync_ms REAL, phases TEXT, url TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, client_order_id TEXT NOT NULL,
    symbol TEXT, side TEXT, order_type TEXT, qty INTEGER, price INTEGER, tif TEXT, reduce_only INTEGER,
    tag TEXT, prev_state TEXT, state TEXT NOT NULL, filled_qty INTEGER, venue_order_id TEXT, reason TEXT
);
CREATE INDEX IF NOT EXISTS orders_by_client_id ON orders (client_order_id, id);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, symbol TEXT NOT NULL,
    client_order_id TEXT, side TEXT, qty INTEGER, price INTEGER, fee TEXT, fee_asset TEXT,
    is_maker INTEGER, trade_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS fills_unique_trade ON fills (symbol, trade_id) WHERE trade_id != '';
CREATE INDEX IF NOT EXISTS fills_by_ts ON fills (ts_ns);
CREATE TABLE IF NOT EXISTS funding (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER, symbol TEXT, rate TEXT, mark_price INTEGER,
    qty INTEGER, amount TEXT
);
CREATE TABLE IF NOT EXISTS risk_snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, version INTEGER, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS candles (
    symbol TEXT NOT NULL, interval TEXT NOT NULL, open_ts INTEGER NOT NULL, open TEXT, high TEXT,
    low TEXT, close TEXT, volume TEXT, closed INTEGER, PRIMARY KEY (symbol, interval, open_ts)
);
"""

_OPEN_STATES = tuple(s.value for s in OrderState if s not in TERMINAL_ORDER_STATES)


class SqliteStorage:
    """One SQLite file in WAL mode; ``synchronous=FULL`` so every committed batch is fsynced."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()  # protects only the list of connections
        conn = self._conn()
        with conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    def journal_mode(self) -> str:
        return self._conn().execute("PRAGMA journal_mode").fetchone()[0]

    # ----------------------------------------------------------------------------- writes

    def write_batch(self, records: Sequence[object]) -> None:
        """Write every record in one transaction (all or nothing)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                writer = _WRITERS.get(type(record))
                if writer is None:
                    raise UnsupportedRecord(f"cannot store {type(record).__name__}")
                writer(conn, record)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def next_session(self) -> int:
        """Atomically bump and return the session counter (call once at startup)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()
            session = int(row[0]) + 1 if row else 1
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('session', ?)", (str(session),))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return session

    # ----------------------------------------------------------------------------- reads

    def load_latest_risk(self) -> str | None:
        """The newest risk snapshot body, verbatim (the restore policy decides if it is usable)."""
        row = self._conn().execute("SELECT body FROM risk_snapshots ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else row[0]

    def load_open_orders(self) -> list[OrderTransition]:
        """The latest journal row of every order whose last state is not terminal."""
        placeholders = ",".join("?" * len(_OPEN_STATES))  # the states are bound as parameters
        rows = (
            self._conn()
            .execute(
                f"""
            SELECT o.ts_ns, o.client_order_id, o.symbol, o.side, o.order_type, o.qty, o.price, o.tif,
                   o.reduce_only, o.tag, o.prev_state, o.state, o.filled_qty, o.venue_order_id, o.reason
            FROM orders o JOIN (SELECT client_order_id, MAX(id) AS last FROM orders GROUP BY client_order_id) l
              ON o.id = l.last
            WHERE o.state IN ({placeholders}) ORDER BY o.id
            """,
                _OPEN_STATES,
            )
            .fetchall()
        )
        return [
            OrderTransition(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], r[10], r[11], r[12], r[13], r[14]
            )
            for r in rows
        ]

    def load_order_journal(self, client_order_id: str) -> list[OrderTransition]:
        rows = (
            self._conn()
            .execute(
                "SELECT ts_ns, client_order_id, symbol, side, order_type, qty, price, tif, reduce_only, tag, "
                "prev_state,"
                " state, filled_qty, venue_order_id, reason FROM orders WHERE client_order_id = ? ORDER BY id",
                (client_order_id,),
            )
            .fetchall()
        )
        return [
            OrderTransition(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], r[10], r[11], r[12], r[13], r[14]
            )
            for r in rows
        ]

    def known_client_ids(self) -> set[str]:
        """Every client order id the journal has a row for, except orders whose last word is
        "not found at the venue" (a venue that has them after all must be listened to)."""
        rows = (
            self._conn()
            .execute(
                """
            SELECT o.client_order_id, o.state, o.reason
            FROM orders o JOIN (SELECT client_order_id, MAX(id) AS last FROM orders GROUP BY client_order_id) l
              ON o.id = l.last
            """
            )
            .fetchall()
        )
        return {
            coid
            for coid, state, reason in rows
            if not (state == "REJECTED" and (reason or "").startswith("reconciled: not found"))
        }

    def load_venue_order_ids(self) -> dict[tuple[str, str], str]:
        """(symbol, venue order id) -> client order id, for every journaled order the venue numbered."""
        rows = (
            self._conn()
            .execute(
                "SELECT DISTINCT symbol, venue_order_id, client_order_id FROM orders WHERE venue_order_id IS NOT NULL "
                "AND venue_order_id != ''"
            )
            .fetchall()
        )
        return {(r[0], r[1]): r[2] for r in rows}

    def first_order_ns(self, symbol: str) -> int | None:
        """When the journal first mentions an order of ``symbol`` (None: never traded it)."""
        row = self._conn().execute("SELECT MIN(ts_ns) FROM orders WHERE symbol = ?", (symbol,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def load_fills(self, since_ns: int = 0) -> list[Fill]:
        rows = (
            self._conn()
            .execute(
                "SELECT ts_ns, symbol, client_order_id, side, qty, price, fee, fee_asset, is_maker, trade_id"
                " FROM fills WHERE ts_ns >= ? ORDER BY ts_ns, id",
                (since_ns,),
            )
            .fetchall()
        )
        return [
            Fill(
                ts_ns=r[0],
                symbol=r[1],
                client_order_id=r[2],
                side=r[3],
                qty=r[4],
                price=r[5],
                fee=Decimal(r[6]),
                fee_asset=r[7],
                is_maker=bool(r[8]),
                trade_id=r[9],
            )
            for r in rows
        ]

    def load_candles(self, symbol: str, interval: str, start_ms: int = 0, end_ms: int | None = None) -> list[Candle]:
        end = end_ms if end_ms is not None else 2**62
        rows = (
            self._conn()
            .execute(
                "SELECT symbol, interval, open_ts, open, high, low, close, volume, closed FROM candles"
                " WHERE symbol = ? AND interval = ? AND open_ts BETWEEN ? AND ? ORDER BY open_ts",
                (symbol, interval, start_ms, end),
            )
            .fetchall()
        )
        return [Candle(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8])) for r in rows]

    def load_epochs(self, limit: int = 1000) -> list[dict]:
        rows = (
            self._conn()
            .execute(
                "SELECT epoch, cause, detected_ns, synced_ns, closed_ns, close_cause, resync_ms, phases, url"
                " FROM epochs ORDER BY rowid DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        keys = ("epoch", "cause", "detected_ns", "synced_ns", "closed_ns", "close_cause", "resync_ms", "phases", "url")
        out = [dict(zip(keys, r, strict=True)) for r in reversed(rows)]
        for item in out:
            item["phases"] = json.loads(item["phases"] or "{}")
        return out

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the WAL into the main file and truncate it: (busy, wal pages, checkpointed)."""
        row = self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return tuple(row) if row else (0, 0, 0)

    def close(self, checkpoint: bool = True) -> None:
        """Close every connection; first (by default) checkpoint the WAL with TRUNCATE so the
        main database file alone holds everything (a copy of just that file is complete)."""
        if checkpoint:
            try:
                self.checkpoint()
            except sqlite3.Error:
                pass  # closing the last connection checkpoints too, when it can
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


def _w_order(conn, t: OrderTransition) -> None:
    conn.execute(
        "INSERT INTO orders (ts_ns, client_order_id, symbol, side, order_type, qty, price, tif, reduce_only, tag,"
        " prev_state, state, filled_qty, venue_order_id, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            t.ts_ns,
            t.client_order_id,
            t.symbol,
            t.side,
            t.order_type,
            t.qty,
            t.price,
            t.tif,
            int(t.reduce_only),
            t.tag,
            t.prev_state,
            t.state,
            t.filled_qty,
            t.venue_order_id,
            t.reason,
        ),
    )


def _w_fill(conn, f: Fill) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO fills (ts_ns, symbol, client_order_id, side, qty, price, fee, fee_asset, is_maker, "
        "trade_id)"
        " VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            f.ts_ns,
            f.symbol,
            f.client_order_id,
            f.side,
            f.qty,
            f.price,
            str(f.fee),
            f.fee_asset,
            int(f.is_maker),
            f.trade_id,
        ),
    )


def _w_risk(conn, r: RiskSnapshot) -> None:
    conn.execute(
        "INSERT INTO risk_snapshots (ts_ns, version, body) VALUES (?,?,?)",
        (r.ts_ns, r.body.get("version"), json.dumps(r.body, sort_keys=True)),
    )


def _w_funding(conn, r: FundingRecord) -> None:
    conn.execute(
        "INSERT INTO funding (ts_ns, symbol, rate, mark_price, qty, amount) VALUES (?,?,?,?,?,?)",
        (r.ts_ns, r.symbol, str(r.rate), r.mark_price, r.qty, str(r.amount)),
    )


def _w_epoch(conn, e: EpochRecord) -> None:
    conn.execute(
        "INSERT INTO epochs (epoch, cause, detected_ns, synced_ns, closed_ns, close_cause, resync_ms, phases, url)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (
            e.epoch,
            e.cause,
            e.detected_ns,
            e.synced_ns,
            e.closed_ns,
            e.close_cause,
            e.resync_ms,
            json.dumps(e.phases_ms()),
            e.url,
        ),
    )


def _w_candle(conn, c: Candle) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO candles (symbol, interval, open_ts, open, high, low, close, volume, closed)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        (c.symbol, c.interval, c.open_ts, c.open, c.high, c.low, c.close, c.volume, int(c.closed)),
    )


_WRITERS: dict[type, Callable[[sqlite3.Connection, Any], None]] = {
    OrderTransition: _w_order,
    Fill: _w_fill,
    RiskSnapshot: _w_risk,
    FundingRecord: _w_funding,
    EpochRecord: _w_epoch,
    Candle: _w_candle,
}


def supported_record_types() -> Iterable[type]:
    return tuple(_WRITERS)

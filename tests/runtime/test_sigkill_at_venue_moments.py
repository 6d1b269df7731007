"""End to end: SIGKILL the headless daemon at the venue's worst moments, restart it on the same
SQLite file each time, then stop it cleanly and compare everything with the venue.

The venue is the real simulator (`epochbot.sim.server.SimExchange`, USD-M) served on loopback from a
thread of this test; the daemon is the real product (``python -m epochbot.app.cli --headless`` paper
trading the quoter against it). The kills are triggered by the simulator itself, not by a timer:
an observer wrapped around its matching engine sends SIGKILL synchronously, from inside the
venue's own processing, at one of these moments:

* ``accept``: the venue has just accepted one of the daemon's orders and has not answered yet
  (half of the kills: the order exists at the venue, the daemon never hears of it);
* ``fill``: the venue has just executed one of the daemon's orders (the execution report and the
  REST answer are not out yet);
* ``cancel``: the venue has just cancelled one of the daemon's orders.

After every kill, before the restart, the journal the killed process left must already know
every order the venue has of ours (write-ahead: the intent is durable before the request leaves
the process). After the final clean stop (SIGTERM):

* every venue order is known to the journal, no client order id reached the venue twice;
* every venue execution is stored exactly once (trade ids), positions equal the venue's;
* nothing is open at the venue, and no order is left working in the journal;
* the risk state was restored at every start (the restored session PnL is the stored one) and
  the final session PnL counts every execution exactly once.

Bounded: 8 kills, every wait has a deadline (about a minute in all on a loaded 2-core machine).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from fractions import Fraction
from pathlib import Path

import pytest

from tests.helpers import DaemonProcess, ThreadedSim, wait_until
from tests.runtime.test_restart_after_sigkill import KEY, SECRET, SYMBOL, db_rows, session_pnl_of

ACCOUNT = "acct-1"  # the simulator's default account (sim-key / sim-secret)
KILLS = ("accept", "fill", "accept", "cancel", "accept", "fill", "accept", "cancel")


ENV = {
    "EPOCHBOT_API_KEY": KEY,
    "EPOCHBOT_API_SECRET": SECRET,
    "EPOCHBOT_STRATEGY__PARAMS": json.dumps(
        {
            "half_spread_ticks": 1,
            "half_spread_bps": 0.0,
            "exit_edge_bps": -1.0,
            "skew_bps_per_size": 0.0,
            "refresh_ms": 300,
        }
    ),
    "EPOCHBOT_RISK__BREAKER_LOSSES": "1000",  # keep quoting: every kill needs orders
    "EPOCHBOT_STRATEGY__UNKNOWN_WINDOW_MS": "2000",  # the simulator decides at once
}


class KillingSim(ThreadedSim):
    """The simulator on a thread of its own, with an observer that SIGKILLs ``victim`` at the
    armed venue moment, from inside the venue's processing (before it answers anyone)."""

    def __init__(self) -> None:
        super().__init__(market="usdm", symbols=[SYMBOL], seed=11, rate=40.0)
        self.victim: int | None = None
        self.armed: str | None = None
        self.kills: list[tuple[str, str]] = []  # (moment, client order id or trade)
        venue = self.sim.venue
        place, cancel, on_market = venue.place_order, venue.cancel_order, venue.on_market

        def placed(account_id, params, book, now_ms):
            body = place(account_id, params, book, now_ms)
            self._maybe_kill("accept", str(params.get("newClientOrderId", "")))
            return body

        def cancelled(account_id, params, now_ms):
            body = cancel(account_id, params, now_ms)
            self._maybe_kill("cancel", str(params.get("origClientOrderId", "")))
            return body

        def market(book, now_ms):
            before = len(venue.ledger.account(ACCOUNT).trades)
            on_market(book, now_ms)
            if len(venue.ledger.account(ACCOUNT).trades) > before:
                self._maybe_kill("fill", str(venue.ledger.account(ACCOUNT).trades[-1].trade_id))

        venue.place_order, venue.cancel_order, venue.on_market = placed, cancelled, market

    def _maybe_kill(self, moment: str, what: str) -> None:
        if self.armed == moment and self.victim is not None:
            os.kill(self.victim, signal.SIGKILL)
            self.kills.append((moment, what))
            self.armed = self.victim = None

    def arm(self, moment: str, pid: int) -> None:
        def set_() -> None:
            self.armed, self.victim = moment, pid

        self.loop.call_soon_threadsafe(set_)

    def all_orders(self) -> list[dict]:
        return self.call(self.sim.venue.all_orders, ACCOUNT, SYMBOL, 1000)

    def open_orders(self) -> list[dict]:
        return self.call(self.sim.venue.open_orders, ACCOUNT, SYMBOL)

    def trades(self) -> list[dict]:
        out, from_id = [], 0
        while True:
            page = self.call(self.sim.venue.user_trades, ACCOUNT, SYMBOL, from_id=from_id, limit=1000)
            out += page
            if len(page) < 1000:
                return out
            from_id = int(page[-1]["id"]) + 1

    def position_amt(self) -> Fraction:
        position = Fraction(0)
        for t in self.trades():
            position += Fraction(t["qty"]) * (1 if t["side"] == "BUY" else -1)
        return position


class Daemon(DaemonProcess):
    def __init__(self, tmp: Path, sim: KillingSim, name: str) -> None:
        super().__init__(
            tmp,
            [
                "--headless",
                "--venue",
                "binance-usdm",
                "--rest-url",
                sim.rest,
                "--ws-url",
                sim.ws,
                "--symbols",
                SYMBOL,
                "--storage",
                str(tmp / "db.sqlite3"),
                "--strategy",
                "quoter",
                "--no-control",
                "--status-interval",
                "60",
            ],
            name=name,
            env=ENV,
        )

    def ensure_dead(self) -> None:
        self.kill()


def journal_ids(db: Path) -> set[str]:
    return {r[0] for r in db_rows(db, "SELECT DISTINCT client_order_id FROM orders")}


def latest_risk(db: Path) -> dict | None:
    rows = db_rows(db, "SELECT body FROM risk_snapshots ORDER BY id DESC LIMIT 1")
    return json.loads(rows[0][0]) if rows else None


@pytest.fixture
def sim():
    s = KillingSim()
    yield s
    s.stop()


def test_sigkill_at_venue_moments_loses_no_order_no_fill_and_leaves_nothing_open(tmp_path, sim):
    db = tmp_path / "db.sqlite3"
    for round_, moment in enumerate(KILLS):
        stored_risk = latest_risk(db)
        daemon = Daemon(tmp_path, sim, f"run{round_}")
        try:
            enabled = wait_until(
                lambda daemon=daemon: daemon.find("trading enabled") or daemon.proc.poll() is not None,
                20,
                f"run {round_} to start trading",
            )
            assert daemon.proc.poll() is None, daemon.log_path.read_text()[-2000:]
            if stored_risk is not None:  # the risk state of the killed run is what this one starts from
                assert Fraction(enabled["restored_session_pnl"]) == Fraction(stored_risk["session_pnl"]), (
                    round_,
                    enabled,
                    stored_risk,
                )
            assert daemon.find("position differs from the venue's after restore") is None
            sim.arm(moment, daemon.proc.pid)
            wait_until(
                lambda daemon=daemon: daemon.proc.poll() is not None,
                30,
                f"the simulator to kill run {round_} at {moment}",
            )
        finally:
            daemon.ensure_dead()
        assert daemon.proc.returncode == -signal.SIGKILL
        assert sim.kills and sim.kills[-1][0] == moment
        # Write-ahead: the killed process's journal already knows every order the venue has.
        ours = {o["clientOrderId"] for o in sim.all_orders()}
        missing = ours - journal_ids(db)
        assert not missing, (
            f"after the {moment} kill of run {round_} the venue has orders the journal never saw: {missing}"
        )

    final = Daemon(tmp_path, sim, "final")
    try:
        enabled = wait_until(
            lambda: final.find("trading enabled") or final.proc.poll() is not None, 20, "the final run to start trading"
        )
        assert final.proc.poll() is None, final.log_path.read_text()[-2000:]
        assert final.find("position differs from the venue's after restore") is None
        # Trade a little more, then freeze the market so the venue's records are final.
        before = len(sim.trades())
        wait_until(lambda: len(sim.trades()) > before or final.proc.poll() is not None, 20, "a fill in the final run")
        sim.call(sim.sim.pause_market)
        final.proc.send_signal(signal.SIGTERM)
        assert final.proc.wait(20) == 0, final.log_path.read_text()[-3000:]
    finally:
        final.ensure_dead()

    venue_orders = sim.all_orders()
    venue_ids = [o["clientOrderId"] for o in venue_orders]
    assert len(venue_ids) == len(set(venue_ids)), "a client order id reached the venue twice"
    assert set(venue_ids) <= journal_ids(db)
    assert sim.open_orders() == [], "orders left open at the venue after a clean stop"

    # The main database file alone (the WAL was checkpointed at the clean stop).
    assert not (tmp_path / "db.sqlite3-wal").exists() or (tmp_path / "db.sqlite3-wal").stat().st_size == 0
    conn = sqlite3.connect(db)
    try:
        stored = conn.execute(
            "SELECT trade_id, side, qty, price, fee, fee_asset, ts_ns FROM fills WHERE symbol = ? ORDER BY ts_ns, id",
            (SYMBOL,),
        ).fetchall()
        last_states = dict(
            conn.execute(
                "SELECT o.client_order_id, o.state FROM orders o JOIN "
                "(SELECT client_order_id, MAX(id) AS last FROM orders GROUP BY client_order_id) l ON o.id = l.last"
            ).fetchall()
        )
    finally:
        conn.close()
    venue_trades = sim.trades()
    assert sorted(r[0] for r in stored) == sorted(str(t["id"]) for t in venue_trades)  # each once, none missing
    assert sum(Fraction(q) * (1 if s == "BUY" else -1) for _, s, q, *_ in stored) / 1000 == sim.position_amt()
    by_venue = {o["clientOrderId"]: o["status"] for o in venue_orders}
    for coid, state in last_states.items():
        if coid in by_venue:
            assert state == by_venue[coid], (coid, state, by_venue[coid])
        else:  # journaled, never reached the venue (killed between the commit and the send)
            assert state in ("REJECTED", "UNKNOWN"), (coid, state)
    final_risk = latest_risk(db)
    assert Fraction(final_risk["session_pnl"]) == session_pnl_of([r[1:] for r in stored])
    assert [m for m, _ in sim.kills] == list(KILLS)

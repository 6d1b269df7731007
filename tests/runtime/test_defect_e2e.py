"""End to end: a defect in a handler stops a live daemon at once - exit 3, the traceback in its log
and its journal, the mode halted, nothing left open at the venue.

Processes: the simulator (``epochbot sim``, USD-M, a process of its own) and the real headless
daemon (``python -m epochbot.app.cli --headless --venue binance-usdm --rest-url ... --ws-url ...``)
trading an out-of-tree strategy plug-in installed on the fly (its package and a ``.dist-info``
with its entry point, as pip leaves them): it rests a bid and an ask far from the market and,
once they have rested for a moment, its ``on_book`` raises ``AttributeError`` - a bug in our
code, not bad data. The daemon must not count it as a data error and carry on: it stops trading,
cancels its orders, says why (with the traceback) in its log and journal, and exits 3; the
venue, asked over its REST API like any client would, has none of our orders open. The journal
then replays to the same stop and the same state. Bounded (about 20 s), loopback only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, DaemonProcess, SimProcess, child_env, wait_until
from tests.trading.test_strategy_plugins import install_distribution

SYMBOL = "BTCUSDT"
PLUGIN = '''
from dataclasses import dataclass

from epochbot import Mode, OrderIntent, lots_for_quote


@dataclass
class RestingThenBroken:
    """Rests a bid and an ask 200 ticks away from the touch, then breaks in on_book."""

    params: dict
    name: str = "resting-then-broken"
    placed_ns: int = 0

    def on_book(self, view):
        if view.mode is not Mode.NORMAL or not view.trustworthy or view.best_bid is None or view.best_ask is None:
            return []
        if not self.placed_ns:
            self.placed_ns = view.ts_ns
            lots = lots_for_quote(view, "150")
            away = 200 * view.tick
            return [
                OrderIntent(view.symbol, "BUY", lots, view.best_bid - away, tag="bid"),
                OrderIntent(view.symbol, "SELL", lots, view.best_ask + away, tag="ask"),
            ]
        if view.ts_ns - self.placed_ns >= 1_500_000_000:
            return self.quotes.refresh(view)  # the bug: there is no such attribute
        return []

    def on_trade(self, trade):
        return []

    def on_fill(self, fill):
        return []

    def on_mode_change(self, mode):
        return []

    def on_timer(self, now_ns):
        return []


def make(params):
    return RestingThenBroken(params=dict(params))
'''


def journal_rows(directory: Path) -> list[dict]:
    rows = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines()[1:]:  # after the header
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def test_a_defect_in_a_handler_stops_trading_cancels_everything_and_exits_3(tmp_path):
    site = tmp_path / "site"
    install_distribution(
        site,
        "resting-then-broken",
        "resting_then_broken",
        PLUGIN,
        "[epochbot.strategies]\nresting-then-broken = resting_then_broken:make\n",
    )
    journal = tmp_path / "journal"
    report = tmp_path / "report.json"
    env = {
        "EPOCHBOT_API_KEY": "sim-key",
        "EPOCHBOT_API_SECRET": "sim-secret",
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
    }
    with SimProcess(tmp_path, market="usdm", symbols=(SYMBOL,), seed=3, args=("--rate", "40")) as sim:
        daemon = DaemonProcess(
            tmp_path,
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
                "--strategy",
                "resting-then-broken",
                "--storage",
                str(tmp_path / "db.sqlite3"),
                "--report",
                str(report),
                "--no-control",
                "--status-interval",
                "0.5",
                "--set",
                f"journal.directory={journal}",
            ],
            env=env,
        )
        try:
            resting = wait_until(
                lambda: daemon.proc.poll() is not None or sim.signed("/fapi/v1/openOrders", symbol=SYMBOL),
                30,
                "the plug-in's orders resting at the venue",
            )
            assert isinstance(resting, list) and len(resting) == 2, daemon.tail()
            code = daemon.proc.wait(30)
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
        open_after = sim.signed("/fapi/v1/openOrders", symbol=SYMBOL)
        ours = {o["clientOrderId"] for o in resting}
        final = {o["clientOrderId"]: o["status"] for o in sim.signed("/fapi/v1/allOrders", symbol=SYMBOL)}

    # The process: exit 3, the defect and its traceback in the log, then the orders cancelled.
    assert code == 3, daemon.tail()
    defect = daemon.find("defect: trading stopped")
    assert defect is not None and defect["level"] == "critical", daemon.tail()
    assert defect["event"] in ("DepthDiff", "BookTicker", "TimerTick", "AggTrade", "MarkPrice", "Kline")
    assert "AttributeError" in defect["reason"] and "quotes" in defect["reason"]
    assert "Traceback" in defect["traceback"] and "resting_then_broken" in defect["traceback"]
    assert "in on_book" in defect["traceback"]
    assert defect["mode"] in ("normal", "halted") and set(defect["working_orders"]) == ours
    settled = daemon.find("shutdown: working orders settled")
    assert settled is not None and settled["cancelled"] == 2 and settled["still_working"] == []
    assert daemon.count("event handler failed: dropped as a data error") == 0
    assert daemon.find("exit")["exit_code"] == 3

    # The state it stopped in: halted, fatal with the defect's reason.
    stopped = json.loads(report.read_text())
    assert stopped["exit_code"] == 3 and stopped["mode"] == "halted"
    assert stopped["fatal"].startswith("defect handling ") and "AttributeError" in stopped["fatal"]

    # The venue: nothing of ours open; the two resting orders were cancelled, not left behind.
    assert open_after == []
    assert {final[c] for c in ours} == {"CANCELED"}

    # The journal: the defect's row right after the event that caused it, with the traceback.
    rows = journal_rows(journal)
    at = next(i for i, r in enumerate(rows) if r.get("k") == "defect")
    row = rows[at]
    assert "AttributeError" in row["error"] and "Traceback" in row["traceback"]
    assert row["event"] == defect["event"] and row["state_hash"] == defect["state_hash"]
    assert rows[at - 1]["k"] in ("ws", "ev")

    # ... and it replays to the same stop (the plug-in meets the same defect on the same event).
    out = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "replay", str(journal), "--json"],
        capture_output=True,
        env=child_env(env),
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 3, out.stderr.decode()[-2000:]  # replay exits 3 on a fatal stop too
    replayed = json.loads(out.stdout)
    assert replayed["fatal"] == stopped["fatal"] and replayed["mode"] == "halted"
    assert replayed["state_hash"] == stopped["state_hash"] and replayed["malformed"] == []

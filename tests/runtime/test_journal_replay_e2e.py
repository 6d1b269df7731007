"""End to end: a live headless session replays from its journal to exactly the state it ended in.

The real product, the way a user would use it: ``python -m epochbot.app.cli --headless`` on the embedded
simulator, paper trading the quoter, with ``journal.directory`` set. While it runs, a seeded
random schedule of faults goes through the simulator's fault API (gap, out_of_order,
duplicate, drop, stall, and at random also failing / slow / crossed snapshots, malformed
and truncated frames, serverShutdown) together with operator actions through the control API
(book resync, mode changes, pause, cancel-all, flatten, a session replacement). Once the books are synced
again the daemon is stopped
cleanly (SIGTERM) and writes its ``--report``; then ``python -m epochbot.app.cli replay <journal dir>
--json`` must report the same books (state, update ids, levels), the same number of epochs,
the same ``state_hash`` and the same orders.

Covered: spot and USD-M, two seeds each schedule, and a restart (two runs into one journal
directory and one storage file: the directory replays its last run by default, ``--run 1`` the
first, each matching its own live report). Every wait is bounded; each daemon run takes ~10 s.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, child_env, http, wait_until

TOKEN = "e2e-journal-token"


ENV = {"EPOCHBOT_CONTROL__TOKEN": TOKEN}


class Daemon:
    """``epochbot --headless`` on the embedded simulator; its JSON log lines collected."""

    def __init__(
        self, tmp: Path, name: str, market: str, symbols: str, seed: int, journal: Path, storage: Path
    ) -> None:
        self.report = tmp / f"{name}.report.json"
        self.lines: list[dict] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "epochbot.app.cli",
                "--headless",
                "--market",
                market,
                "--symbols",
                symbols,
                "--seed",
                str(seed),
                "--sim-port",
                "0",
                "--control-port",
                "0",
                "--report",
                str(self.report),
                "--storage",
                str(storage),
                "--status-interval",
                "1",
                "--set",
                f"journal.directory={journal}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=child_env(ENV),
            cwd=REPO,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        sim = wait_until(lambda: self._line("embedded simulator started"), 20, "the embedded simulator")
        control = wait_until(lambda: self._line("control endpoint listening"), 20, "the control endpoint")
        self.sim = sim["rest"]
        self.control = control["url"].rstrip("/")

    def _read(self) -> None:
        for raw in self.proc.stderr:
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                pass

    def _line(self, msg: str):
        return next((line for line in list(self.lines) if line.get("msg") == msg), None)

    def status(self) -> dict:
        status, body = http("GET", f"{self.control}/status")
        return json.loads(body) if status == 200 else {}

    def ready(self) -> bool:
        return http("GET", f"{self.control}/readyz")[0] == 200

    def fault(self, spec: dict) -> None:
        status, body = http("POST", f"{self.sim}/_sim/fault", spec)
        assert status == 200, (spec, status, body)

    def operator(self, path: str, body: dict) -> None:
        status, answer = http("POST", f"{self.control}{path}", body, token=TOKEN)
        assert status in (200, 202), (path, body, status, answer)

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=20) == 0, self.lines[-5:]
        return json.loads(self.report.read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def replay(journal: Path, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "replay", str(journal), "--json", *extra],
        capture_output=True,
        env=child_env(ENV),
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return json.loads(out.stdout)


def run_session(daemon: Daemon, rng: random.Random, symbols: list[str], steps: int) -> dict:
    """A seeded random schedule of faults and operator actions, then a clean stop once synced."""
    wait_until(daemon.ready, 20, "the first sync")
    wait_until(lambda: daemon.status().get("orders"), 15, "the quoter's first orders", interval=0.2)
    actions = [
        "gap",
        "out_of_order",
        "duplicate",
        "drop",
        "stall",
        "resync",
        "mode",
        "pause",
        "snapshot_fail",
        "snapshot_slow",
        "crossed_snapshot",
        "malformed",
        "truncated",
        "server_shutdown",
        "cancel_all",
        "flatten",
        "gap",
        "duplicate",
        "out_of_order",
        "order_delay",
    ]
    must = ["gap", "out_of_order", "duplicate", "drop", "stall"]  # the checked kinds, each at least once
    plan = must + [rng.choice(actions) for _ in range(max(0, steps - len(must)))]
    rng.shuffle(plan)
    for action in plan:
        symbol = rng.choice(symbols)
        if action == "stall":
            daemon.fault({"kind": "stall", "duration_s": 2.0})  # > silence_replace_ms: a new epoch
            time.sleep(2.2)
        elif action == "drop":
            daemon.fault({"kind": "drop"})
        elif action == "resync":
            daemon.operator("/resync", {"symbol": symbol} if rng.random() < 0.7 else {"session": True})
        elif action == "pause":
            daemon.operator("/pause", {"paused": True})
            time.sleep(rng.uniform(0.1, 0.4))
            daemon.operator("/pause", {"paused": False})
        elif action in ("snapshot_fail", "crossed_snapshot"):  # fires at the next snapshot: force one
            daemon.fault({"kind": action, "count": 1})
            daemon.operator("/resync", {"symbol": symbol})
        elif action == "snapshot_slow":
            daemon.fault({"kind": action, "ms": 300, "duration_s": 0.5})
            daemon.operator("/resync", {"symbol": symbol})
        elif action in ("cancel_all", "flatten"):  # through the trader; the strategy is paused, then resumed
            body = (
                {"confirm": True, "symbol": symbol}
                if action == "cancel_all" or rng.random() < 0.5
                else {"confirm": True, "all": True}
            )
            daemon.operator(f"/{action.replace('_', '-')}", body)
            time.sleep(rng.uniform(0.2, 0.5))
            daemon.operator("/pause", {"paused": False})
        elif action == "order_delay":  # cancels overtake their orders; re-quotes wait for them
            daemon.fault({"kind": action, "ms": rng.choice([150, 400]), "duration_s": rng.uniform(1.0, 3.0)})
        elif action == "server_shutdown":
            daemon.fault({"kind": action})
        elif action == "mode":
            daemon.operator("/mode", {"mode": rng.choice(["reduce-only", "cancel-makers"])})
            time.sleep(rng.uniform(0.1, 0.4))
            daemon.operator("/mode", {"mode": "normal"})
        else:
            daemon.fault({"kind": action, "symbol": symbol, "count": rng.randint(1, 3)})
        time.sleep(rng.uniform(0.15, 0.6))
    wait_until(daemon.ready, 25, "books synced after the faults")
    if rng.random() < 0.5:  # stop with orders held at the venue's door and re-quotes pending
        daemon.fault({"kind": "order_delay", "ms": 400, "duration_s": 10.0})
    time.sleep(rng.uniform(0.5, 2.5))  # ordinary trading after the repair, stopped at a random moment
    return daemon.stop()


def assert_replay_matches(live: dict, replayed: dict) -> None:
    assert live["fatal"] is None and replayed["fatal"] is None
    assert replayed["malformed"] == []
    for symbol, book in live["symbols"].items():
        mine = replayed["symbols"][symbol]
        assert book["synced"] and mine["synced"], (symbol, book["state"], mine["state"])
        assert (mine["last_update_id"], mine["bids"], mine["asks"]) == (
            book["last_update_id"],
            book["bids"],
            book["asks"],
        ), symbol
        assert mine["gaps"] == book["gaps"] and mine["book_resyncs"] == book["book_resyncs"], symbol
    assert replayed["epochs"] == len(live["epochs"]) == live["epoch"]
    # Every epoch with its cause, times and phase timings; every book resync, mode change and
    # the time-to-correct-resync distribution, as live measured them.
    assert replayed["epoch_history"] == live["epochs"]
    assert replayed["book_resyncs"] == live["book_resyncs"]
    assert replayed["modes"] == live["modes"]
    assert replayed["time_to_correct_resync_ms"] == live["time_to_correct_resync_ms"]
    assert replayed["mode"] == live["mode"] and replayed["confidence_min"] == live["confidence_min"]
    assert replayed["orders"] == live["orders"]
    assert replayed["state_hash"] == live["state_hash"]


@pytest.mark.parametrize(
    ("market", "symbols", "seed"),
    [("usdm", "BTCUSDT,ETHUSDT", 11), ("spot", "BTCUSDT,ETHUSDT", 12), ("usdm", "BTCUSDT", 13)],
    ids=["usdm-two-symbols", "spot-two-symbols", "usdm-one-symbol"],
)
def test_a_faulted_live_session_replays_from_its_journal_directory_to_the_same_state(tmp_path, market, symbols, seed):
    journal = tmp_path / "journal"
    daemon = Daemon(tmp_path, "live", market, symbols, seed, journal, tmp_path / "db.sqlite3")
    try:
        live = run_session(daemon, random.Random(seed), symbols.split(","), steps=11)
    finally:
        daemon.kill()

    replayed = replay(journal)

    assert len(live["epochs"]) >= 3  # the drop and the stall each replaced the session
    assert live["orders"], "the quoter placed orders"
    assert_replay_matches(live, replayed)


def test_two_runs_into_one_journal_directory_replay_each_to_its_own_final_state(tmp_path):
    journal, storage = tmp_path / "journal", tmp_path / "db.sqlite3"
    reports = []
    for run, seed in enumerate((21, 22), start=1):
        daemon = Daemon(tmp_path, f"run{run}", "usdm", "BTCUSDT,ETHUSDT", 7, journal, storage)
        try:
            reports.append(run_session(daemon, random.Random(seed), ["BTCUSDT", "ETHUSDT"], steps=5))
        finally:
            daemon.kill()

    last, first = replay(journal), replay(journal, "--run", "1")

    assert [r["run"] for r in last["runs"]] == [r["run"] for r in first["runs"]] and len(last["runs"]) == 2
    assert_replay_matches(reports[1], last)
    assert_replay_matches(reports[0], first)
    # The restart placed its orders under a new session number (the replay took it from the
    # journal, not from a clock); orders it adopted from run 1 keep their ids.
    sessions_first = {o["client_order_id"].split("-")[0] for o in first["orders"]}
    new_in_last = {o["client_order_id"].split("-")[0] for o in last["orders"]} - sessions_first
    assert len(sessions_first) == 1 and len(new_in_last) == 1


def test_a_run_killed_with_sigkill_leaves_a_readable_journal_and_the_restarted_run_replays_exactly(tmp_path):
    journal, storage = tmp_path / "journal", tmp_path / "db.sqlite3"
    killed = Daemon(tmp_path, "killed", "usdm", "BTCUSDT,ETHUSDT", 9, journal, storage)
    try:
        wait_until(killed.ready, 20, "the first sync")
        wait_until(lambda: killed.status().get("orders"), 15, "the quoter's first orders", interval=0.2)
        killed.fault({"kind": "gap", "symbol": "BTCUSDT"})
        time.sleep(0.3)
        killed.proc.send_signal(signal.SIGKILL)  # no report, no clean stop, orders left working
        killed.proc.wait(timeout=10)
    finally:
        killed.kill()
    # Write-ahead (issue 10): storage knows every order the killed run sent, the working ones
    # included (its journal may miss the last fraction of a second of inputs).
    with sqlite3.connect(storage) as db:
        left_working = {
            cid
            for (cid,) in db.execute(
                "SELECT o.client_order_id FROM orders o JOIN "
                "(SELECT client_order_id, MAX(id) AS last FROM orders GROUP BY client_order_id) l"
                " ON o.id = l.last WHERE o.state IN ('PENDING_NEW', 'NEW', 'PARTIALLY_FILLED', 'UNKNOWN')"
            )
        }
    restarted = Daemon(tmp_path, "restarted", "usdm", "BTCUSDT,ETHUSDT", 9, journal, storage)
    try:
        live = run_session(restarted, random.Random(31), ["BTCUSDT", "ETHUSDT"], steps=6)
    finally:
        restarted.kill()

    last, first = replay(journal), replay(journal, "--run", "1")

    assert len(last["runs"]) == 2
    assert_replay_matches(live, last)
    # The restart adopted the killed run's open orders (from storage, as its trading row says)
    # and resolved them by query: the replay did the same.
    assert left_working, "the killed run left working orders"
    assert left_working <= {o["client_order_id"] for o in last["orders"]}
    # The killed run replays up to its last written input: it had synced books and orders.
    assert first["epochs"] >= 1 and first["orders"] and first["malformed"] in ([], first["malformed"][-1:])

"""End to end, the way an operator with many symbols breaks it: a real headless daemon (a
subprocess) against a real simulator (another subprocess) whose request-weight limit is lowered
so that startup alone needs more weight than one minute allows, then a session replacement at
the worst moment (the connections dropped while the minute's weight is already spent). Every
book must synchronise, with zero 429 and zero 418 from the venue, and the daemon must say that
books waited for weight. Takes one to two minutes (the venue's window is a real minute)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = [f"C{i:03d}USDT" for i in range(60)]
WEIGHT_LIMIT = 300  # startup needs ~420 (60 x depth-100 = 300, 60 klines x 2, exchangeInfo)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EPOCHBOT_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _get(url: str) -> dict:
    with urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _post(url: str, body: dict) -> None:
    req = Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urlopen(req, timeout=5) as resp:
        resp.read()


@pytest.fixture
def sim(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--port", "0", "--market", "usdm", "--symbols", ",".join(SYMBOLS), "--seed", "3",
         "--weight-limit", str(WEIGHT_LIMIT)],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "sim.err", "wb"), env=_env(), cwd=REPO, text=True,
    )
    line, deadline = "", time.monotonic() + 20
    while "ready" not in line:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"simulator did not start: {line!r}")
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline()
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    yield fields["rest"], fields["ws"]
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Daemon:
    def __init__(self, tmp: Path, rest: str, ws: str) -> None:
        self.log_path = tmp / "daemon.err"
        self.report = tmp / "report.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--headless", "--venue", "binance-usdm", "--rest-url", rest, "--ws-url", ws,
             "--symbols", ",".join(SYMBOLS), "--strategy", "none", "--no-control", "--status-interval", "60",
             "--report", str(self.report), "--set", "resync.snapshot_limit=100"],
            stdout=subprocess.DEVNULL, stderr=open(self.log_path, "wb"), env=_env(), cwd=REPO,
        )

    def lines(self) -> list[dict]:
        out = []
        for raw in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                pass
        return out

    def wait_for(self, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) while waiting for {what}")
            hit = next((line for line in self.lines() if pred(line)), None)
            if hit is not None:
                return hit
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(5)


def test_hundreds_of_weight_units_over_the_limit_sync_every_book_without_a_429_or_418(tmp_path, sim):
    rest, ws = sim
    daemon = Daemon(tmp_path, rest, ws)
    try:
        # Startup: more weight than a minute allows. Every book synced (epoch 1 resynchronized).
        daemon.wait_for(lambda l: l.get("msg") == "resynchronized" and l.get("epoch") == 1, 150, "every book synced at startup")
        # The worst moment: this minute's weight is (nearly) spent; drop every connection.
        _post(f"{rest}/_sim/fault", {"kind": "drop"})
        daemon.wait_for(lambda l: l.get("msg") == "resynchronized" and (l.get("epoch") or 0) >= 2, 150, "every book synced after the replacement")
        stats = _get(f"{rest}/_sim/stats")
    finally:
        code = daemon.stop()

    lines = daemon.lines()
    report = json.loads(daemon.report.read_text())
    assert code == 0
    assert stats["weight_refusals"] == {"throttled": 0, "banned": 0}
    assert not [line for line in lines if line.get("msg") == "venue refused a request for weight"]
    assert all(book["synced"] for book in report["symbols"].values()) and len(report["symbols"]) == len(SYMBOLS)
    assert report["counters"]["snapshots_failed"] == 0
    # The budget bound (otherwise this test proves nothing): books waited, and the daemon said so.
    waited = [line for line in lines if line.get("msg") == "request weight spent: snapshots wait their turn"]
    assert waited and max(line["waiting"] for line in waited) > 0

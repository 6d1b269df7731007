"""End to end, the way an operator with many symbols breaks it: a real headless daemon (a
subprocess) against a real simulator (another subprocess) whose request-weight limit is lowered
so that startup alone needs more weight than one minute allows, then a session replacement at
the worst moment (the connections dropped while the minute's weight is already spent). Every
book must synchronise, with zero 429 and zero 418 from the venue, and the daemon must say that
books waited for weight. Takes one to two minutes (the venue's window is a real minute)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import DaemonProcess, SimProcess, get_json, post_json

SYMBOLS = [f"C{i:03d}USDT" for i in range(60)]
WEIGHT_LIMIT = 300  # startup needs ~420 (60 x depth-100 = 300, 60 klines x 2, exchangeInfo)


@pytest.fixture
def sim(tmp_path):
    with SimProcess(
        tmp_path, market="usdm", symbols=SYMBOLS, seed=3, args=("--weight-limit", str(WEIGHT_LIMIT)), start_timeout=20
    ) as sim:
        yield sim.rest, sim.ws


class Daemon(DaemonProcess):
    def __init__(self, tmp: Path, rest: str, ws: str) -> None:
        self.report = tmp / "report.json"
        super().__init__(
            tmp,
            [
                "--headless",
                "--venue",
                "binance-usdm",
                "--rest-url",
                rest,
                "--ws-url",
                ws,
                "--symbols",
                ",".join(SYMBOLS),
                "--strategy",
                "none",
                "--no-control",
                "--status-interval",
                "60",
                "--report",
                str(self.report),
                "--set",
                "resync.snapshot_limit=100",
            ],
        )

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
        return self.terminate(20)


def test_hundreds_of_weight_units_over_the_limit_sync_every_book_without_a_429_or_418(tmp_path, sim):
    rest, ws = sim
    daemon = Daemon(tmp_path, rest, ws)
    try:
        # Startup: more weight than a minute allows. Every book synced (epoch 1 resynchronized).
        daemon.wait_for(
            lambda line: line.get("msg") == "resynchronized" and line.get("epoch") == 1,
            150,
            "every book synced at startup",
        )
        # The worst moment: this minute's weight is (nearly) spent; drop every connection.
        post_json(f"{rest}/_sim/fault", {"kind": "drop"})
        daemon.wait_for(
            lambda line: line.get("msg") == "resynchronized" and (line.get("epoch") or 0) >= 2,
            150,
            "every book synced after the replacement",
        )
        stats = get_json(f"{rest}/_sim/stats")
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

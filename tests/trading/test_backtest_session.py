"""Backtests over a seeded simulator session: reproducible, and trading as live would."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from epochbot.offline.replay import replay_stream
from epochbot.sim.recording import record_session

ROOT = Path(__file__).resolve().parents[2]


def test_a_seeded_session_recording_is_byte_for_byte_reproducible():
    first, second = io.BytesIO(), io.BytesIO()

    record_session(first, seconds=5, seed=11)
    record_session(second, seconds=5, seed=11)

    assert first.getvalue() == second.getvalue()


def test_a_seeded_session_replays_into_a_synced_book_without_gaps():
    buf = io.BytesIO()
    record_session(buf, seconds=5, seed=3, symbols=("BTCUSDT", "ETHUSDT"))

    report = replay_stream(io.BytesIO(buf.getvalue())).report()

    assert {s: (v["synced"], v["gaps"]) for s, v in report["symbols"].items()} == {
        "BTCUSDT": (True, 0),
        "ETHUSDT": (True, 0),
    }
    assert report["malformed"] == []


def run_backtest(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "backtest", *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_backtest_of_each_example_strategy_is_deterministic_and_trades():
    for strategy in ("quoter", "momentum"):
        a = run_backtest("--strategy", strategy, "--seconds", "120")
        b = run_backtest("--strategy", strategy, "--seconds", "120")

        assert a["digest"] == b["digest"]
        assert a["trades"] > 0 and a["orders_placed"] > 0
        assert a["mode_time_ms"].get("normal", 0) > 100_000  # the engine's confidence let it trade


def test_backtest_refuses_an_unknown_strategy_with_a_clear_error():
    out = subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "backtest", "--strategy", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert out.returncode == 2
    assert "nope" in out.stderr and "quoter" in out.stderr

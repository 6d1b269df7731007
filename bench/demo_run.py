"""The out-of-the-box demo, headless, as a user runs it: does it trade in every 40 s window? (issue 19)

Runs ``python -m epochbot.app.cli --headless --duration SECONDS --report R.json`` with nothing
configured (embedded simulator, USD-M, BTCUSDT + ETHUSDT, the quoter paper-trading) in a fresh
directory, ``--runs`` times, and prints per run: fills per 40 s window counted from the process
start (from the per-run database's fills), the longest stretch without a fill, breaker trips and
loss-limit latches (log lines and the report), the mode time, and the exit code. Run:

    python bench/demo_run.py --runs 2 --seconds 120
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(seconds: float, window_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="epochbot-demo-") as tmp:
        cwd = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EPOCHBOT_")}
        report = cwd / "report.json"
        cmd = [sys.executable, "-m", "epochbot.app.cli", "--headless", "--duration", str(seconds)]
        cmd += ["--report", str(report), "--no-control"]
        t0_ns = time.time_ns()
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=seconds + 120)
        lines = []
        for raw in proc.stderr.splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
        alarms = [x for x in lines if "breaker tripped" in x.get("msg", "") or "loss limit" in x.get("msg", "")]
        with sqlite3.connect(cwd / "epochbot-sim.sqlite3") as db:
            fills = [row[0] for row in db.execute("SELECT ts_ns FROM fills ORDER BY ts_ns")]
        rep = json.loads(report.read_text()) if report.exists() else {}
    n_windows = int(seconds // window_s)
    at = [(t - t0_ns) / 1e9 for t in fills]  # seconds since the process started
    per_window = [sum(1 for t in at if k * window_s <= t < (k + 1) * window_s) for k in range(n_windows)]
    marks = [0.0, *at, float(seconds)]
    trading = rep.get("trading") or {}
    return {
        "exit_code": proc.returncode,
        "fills": len(fills),
        "fills_per_window": per_window,
        "first_fill_s": round(marks[1], 1) if fills else None,
        "longest_no_fill_s": round(max(b - a for a, b in zip(marks, marks[1:], strict=False)), 1),
        "breaker_or_loss_alarms": len(alarms),
        "breakers": trading.get("breakers"),
        "modes": rep.get("modes"),
        "pnl": trading.get("pnl"),
        "queue_delay_ms": rep.get("queue_delay_ms"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--window", type=float, default=40.0)
    args = ap.parse_args()
    ok = True
    for i in range(args.runs):
        load = os.getloadavg()[0]
        r = run_demo(args.seconds, args.window)
        r["load_average_before"] = round(load, 2)
        ok &= r["exit_code"] == 0 and r["breaker_or_loss_alarms"] == 0 and min(r["fills_per_window"]) > 0
        print(json.dumps({"run": i + 1, **r}), flush=True)
    print("every run traded in every window without an alarm" if ok else "NOT every run traded in every window")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""How much a headless demo run says at each log level (issue 13: readable headless logs).

    python bench/log_volume.py --seconds 30 [--level info]

Runs the default demo (`epochbot --headless`, embedded simulator, paper quoter) as a subprocess
for ``--seconds``, then counts the JSON lines on stderr by level and by kind of message, and the
fills and orders the run made (from its report), so the lines per order can be compared.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--level", default="info")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHBOT_")}
        env["PYTHONPATH"] = str(ROOT)
        report = Path(tmp) / "report.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "epochbot.app.cli",
                "--headless",
                "--duration",
                str(args.seconds),
                "--no-control",
                "--log-level",
                args.level,
                "--storage",
                str(Path(tmp) / "db.sqlite3"),
                "--report",
                str(report),
            ],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=args.seconds + 120,
        )
        lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
        trading = json.loads(report.read_text()).get("trading", {})
    by_level = collections.Counter(x["level"] for x in lines)
    by_kind = collections.Counter(x["msg"].split(" ")[0] for x in lines)
    outcomes = trading.get("orders_by_outcome", {})
    print(
        f"load average {os.getloadavg()[0]:.2f}; {args.seconds:g} s demo at --log-level {args.level}; exit "
        f"{done.returncode}"
    )
    print(f"lines: {len(lines)} ({', '.join(f'{k} {v}' for k, v in sorted(by_level.items()))})")
    print(f"orders placed {outcomes.get('placed', 0)}, fills {trading.get('fill_count', 0)}")
    print("most common: " + ", ".join(f"{k} {v}" for k, v in by_kind.most_common(6)))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

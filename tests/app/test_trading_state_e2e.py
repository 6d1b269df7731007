"""End to end: the default demo as a real headless daemon subprocess, driven the way an operator
would: read /status and /metrics, flatten a position and cancel every order with `epochbot ctl`,
try a wrong token, stop it with SIGTERM, and hold the report, the logs and the endpoints to the
same numbers.

Bounded: the daemon runs for at most ~60 s (usually ~20 s), every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest

from tests.app.conftest import REPO
from tests.helpers import free_port

TOKEN = "e2e-token-0123456789abcdef"
WRONG = "wrong-token-do-not-log-me-42"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(url: str, body: dict, token: str) -> tuple[int, dict]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, ValueError, KeyError):
            last = None
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def metrics(port: int) -> dict[str, float]:
    _, body = get(f"http://127.0.0.1:{port}/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            name = re.sub(r'instance="[^"]*",?', "", name).replace(",}", "}").replace("{}", "")  # the fleet label
            out[name] = float(value)
    return out


def ctl(port: int, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHBOT_")}
    env.update(PYTHONPATH=str(REPO), EPOCHBOT_CONTROL__TOKEN=TOKEN)
    return subprocess.run(
        [sys.executable, "-m", "epochbot.app.cli", "ctl", "--control-port", str(port), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOCHBOT_")}
    env.update(PYTHONPATH=str(REPO), EPOCHBOT_CONTROL__TOKEN=TOKEN)
    log_path = tmp_path / "daemon.jsonl"
    report = tmp_path / "report.json"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "epochbot.app.cli",
                "--headless",
                "--control-port",
                str(port),
                "--duration",
                "60",
                "--report",
                str(report),
                "--storage",
                str(tmp_path / "db.sqlite3"),
                "--status-interval",
                "2",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield proc, port, log_path, report
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def status(port: int) -> dict:
    code, body = get(f"http://127.0.0.1:{port}/status")
    assert code == 200, body
    return json.loads(body)


def test_the_demo_daemon_reports_one_truth_in_status_metrics_logs_ctl_and_report(demo):
    proc, port, log_path, report_path = demo
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: get(f"{base}/readyz")[0] == 200, 30, "the daemon to be ready")

    # Trading state is there, in decimal strings in the quote asset.
    first = wait_for(lambda: (s := status(port))["trading"]["fill_count"] >= 2 and s, 40, "two fills")
    t = first["trading"]
    assert t["enabled"] is True and t["quote_asset"] == "USDT"
    assert set(t["pnl"]) == {"session", "daily", "realized", "unrealized", "fees", "funding", "net"}
    for value in t["pnl"].values():
        Decimal(value)  # exact decimal strings, never floats
    assert Decimal(t["pnl"]["fees"]) > 0
    assert {b["name"] for b in t["breakers"]} == {"BTCUSDT", "ETHUSDT", "session-loss", "daily-loss"}
    assert len(t["recent_fills"]) == min(20, t["fill_count"])
    assert all(o["status"] in ("PENDING_NEW", "NEW", "PARTIALLY_FILLED", "UNKNOWN") for o in t["working_orders"])

    # A wrong token is refused and logged, without the token.
    code, _ = post(f"{base}/pause", {"paused": True}, WRONG)
    assert code == 401

    # An explicit body is required for the trading actions.
    code, answer = post(f"{base}/cancel-all", {}, TOKEN)
    assert code == 400 and "confirm" in answer["error"]

    # Freeze a non-flat book of positions: cancel everything (which pauses the strategy); if
    # every position happens to be flat then, resume and try again.
    def frozen_with_a_position():
        code, _ = post(f"{base}/cancel-all", {"confirm": True}, TOKEN)
        assert code == 200
        s = wait_for(lambda: (x := status(port))["trading"]["working_orders"] == [] and x, 15, "cancels to complete")
        time.sleep(0.3)
        s = status(port)
        held = [p for p in s["trading"]["positions"] if Decimal(p["qty"]) != 0]
        if held and s["trading"]["working_orders"] == []:
            return held[0], s
        post(f"{base}/pause", {"paused": False}, TOKEN)
        time.sleep(1.0)
        return None

    position, before = wait_for(frozen_with_a_position, 45, "a position while nothing works")
    symbol = position["symbol"]
    done = ctl(port, "flatten", symbol, "--yes")
    assert done.returncode == 0, done.stderr

    def flat():
        s = status(port)
        qty = next(Decimal(p["qty"]) for p in s["trading"]["positions"] if p["symbol"] == symbol)
        return s if qty == 0 and not s["trading"]["working_orders"] else None

    after_flatten = wait_for(flat, 15, f"{symbol} to be flat")
    assert after_flatten["paused"] is True  # flatten pauses the strategy unless told otherwise
    assert after_flatten["trading"]["fill_count"] == before["trading"]["fill_count"] + 1
    closing = after_flatten["trading"]["recent_fills"][0]
    assert closing["symbol"] == symbol and closing["side"] == ("SELL" if Decimal(position["qty"]) > 0 else "BUY")
    assert Decimal(closing["qty"]) == abs(Decimal(position["qty"]))
    assert closing["maker"] is False  # a market order takes
    others = {p["symbol"]: p["qty"] for p in after_flatten["trading"]["positions"] if p["symbol"] != symbol}
    assert others == {p["symbol"]: p["qty"] for p in before["trading"]["positions"] if p["symbol"] != symbol}

    # Cancel every order; then the trading state holds still and every reader must agree.
    done = ctl(port, "cancel-all", "--yes")
    assert done.returncode == 0, done.stderr
    frozen = wait_for(lambda: (s := status(port))["trading"]["working_orders"] == [] and s, 15, "no working orders")
    time.sleep(0.5)
    frozen = status(port)
    m = metrics(port)
    t = frozen["trading"]
    assert m["epochbot_fills_total"] == t["fill_count"]
    assert m["epochbot_orders_working"] == 0
    for outcome, count in t["orders_by_outcome"].items():
        assert m[f'epochbot_orders_total{{outcome="{outcome}"}}'] == count
    for p in t["positions"]:
        assert m[f'epochbot_position{{symbol="{p["symbol"]}"}}'] == float(Decimal(p["qty"]))
    for kind in ("session", "daily", "realized", "fees"):
        assert m[f'epochbot_pnl{{asset="USDT",kind="{kind}"}}'] == pytest.approx(
            float(Decimal(t["pnl"][kind])), abs=1e-9
        )
    for b in t["breakers"]:
        assert m[f'epochbot_breaker_tripped{{name="{b["name"]}"}}'] == (1.0 if b["tripped"] else 0.0)

    # ctl status: a table by default, JSON on request, the same numbers.
    table = ctl(port, "status")
    assert table.returncode == 0 and not table.stdout.lstrip().startswith("{")
    assert f"fills {t['fill_count']} " in table.stdout
    assert "working orders: none" in table.stdout
    as_json = json.loads(ctl(port, "status", "--json").stdout)
    assert as_json["trading"]["fill_count"] == t["fill_count"]

    # SIGTERM: exit 0, a one-line session summary, and a report with the same trading state.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    report = json.loads(report_path.read_text())
    rt = report["trading"]
    assert rt["fill_count"] == t["fill_count"]
    assert rt["positions"] == [
        {**p, "unrealized_pnl": rp["unrealized_pnl"]} for p, rp in zip(t["positions"], rt["positions"], strict=True)
    ]
    assert rt["orders_by_outcome"] == t["orders_by_outcome"]
    assert [b["tripped"] for b in rt["breakers"]] == [b["tripped"] for b in t["breakers"]]

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    raw = log_path.read_text()
    assert WRONG not in raw and TOKEN not in raw
    auth = [x for x in lines if x["msg"] == "control: authentication failed"]
    assert auth and auth[0]["level"] == "warn" and auth[0]["path"] == "/pause"
    summaries = [x for x in lines if x.get("session_summary")]
    assert len(summaries) == 1 and f"fills {t['fill_count']} " in summaries[0]["msg"]

    # Readable at info: fills in decimal units with symbol and side; no per-order flood.
    info = [x for x in lines if x["level"] == "info"]
    fills = [x for x in info if x["msg"].startswith("fill ")]
    assert len(fills) == t["fill_count"]
    for x in fills:
        assert x["symbol"] in ("BTCUSDT", "ETHUSDT") and x["side"] in ("BUY", "SELL")
        # Base units and a decimal price, not integer lots/ticks: the simulator's BTCUSDT trades
        # near 60,000 and ETHUSDT near 3,000 (0.01 ticks would read 6,000,000 and 300,000).
        # A whole price such as "60001" is a valid canonical decimal.
        assert 0 < Decimal(x["qty"]) < 1000 and 0 < Decimal(x["price"]) < 100_000
    assert not [
        x for x in info if x["msg"].startswith(("order place", "order cancel", "order accepted", "order update"))
    ]
    placed = t["orders_by_outcome"].get("placed", 0)
    assert len(info) < len(fills) + 60, f"{len(info)} info lines for {placed} orders"
    status_lines = [x for x in info if x["msg"] == "status"]
    assert status_lines and "PnL net" in status_lines[-1]["summary"]

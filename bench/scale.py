"""Scale: hundreds of USD-M symbols on one daemon, within the venue's request-weight limit.

Run: ``python bench/scale.py --symbols 200 --depth 1000`` (and ``--symbols 500``).

Two processes, as an operator would run them: ``epochbot sim`` (the simulator at its default
@100ms per symbol, Binance's weight limit enforced: USD-M 2,400 per minute, 429/418 beyond) and
``epochbot --headless`` against it (no strategy; every symbol watched). The bench:

1. waits until every book is synced (time from the daemon's start; polled on ``/status``);
2. lets it run ``--steady`` seconds;
3. forces a session replacement (``POST /resync {"session": true}``) and waits until every book
   of the new epoch is synced (time from the request);
4. runs ``--steady`` seconds more and stops the daemon with SIGTERM.

Reported: both sync times, queue delay p50/p99/max over the *whole run* (startup and the
replacement included; the daemon's report), 429/418 answers counted by the simulator, snapshot
failures, the daemon's peak and final resident memory (VmRSS), CPU used by each process over
the run, and the load average. ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-scale-token-0123456789"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EPOCHBOT_")}
    env["PYTHONPATH"] = str(ROOT)
    env["EPOCHBOT_CONTROL__TOKEN"] = TOKEN
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers=headers,
    )
    with urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _proc_stat(pid: int) -> tuple[int, float]:
    """(VmRSS KiB, user+system CPU seconds) of a process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(parts[11]) + int(parts[12])) / ticks


def _count_lines(path: Path, needle: str) -> int:
    try:
        return sum(1 for line in path.read_text(errors="replace").splitlines() if needle in line)
    except OSError:
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--depth", type=int, default=1000, help="snapshot depth of every book")
    ap.add_argument("--rate", type=float, default=10.0, help="diff events/s per symbol (10 = @100ms)")
    ap.add_argument("--steady", type=float, default=20.0, help="seconds of steady state after each sync")
    ap.add_argument("--timeout", type=float, default=900.0, help="max seconds to wait for a full sync")
    ap.add_argument(
        "--weight-limit", type=int, default=None, help="the simulator's weight limit (default Binance's 2400)"
    )
    ap.add_argument(
        "--watched-streams", choices=("all", "depth"), default="all", help="streams of the (watched) symbols"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"epochbot-scale-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    sim_cmd = [
        sys.executable,
        "-m",
        "epochbot.app.cli",
        "sim",
        "--port",
        "0",
        "--market",
        "usdm",
        "--symbols",
        ",".join(symbols),
        "--seed",
        "7",
        "--rate",
        str(args.rate),
    ]
    if args.weight_limit:
        sim_cmd += ["--weight-limit", str(args.weight_limit)]
    sim = subprocess.Popen(
        sim_cmd, stdout=subprocess.PIPE, stderr=open(tmp / "sim.err", "wb"), env=_env(), cwd=ROOT, text=True
    )
    line, deadline = "", time.monotonic() + 60
    while "ready" not in line:
        if time.monotonic() > deadline or sim.poll() is not None:
            sim.kill()
            raise SystemExit(f"simulator did not start: {line!r}")
        if select.select([sim.stdout], [], [], 0.2)[0]:
            line = sim.stdout.readline()
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    rest, ws = fields["rest"], fields["ws"]
    port = _free_port()
    report_path = tmp / "report.json"
    daemon_cmd = [
        sys.executable,
        "-m",
        "epochbot.app.cli",
        "--headless",
        "--venue",
        "binance-usdm",
        "--rest-url",
        rest,
        "--ws-url",
        ws,
        "--symbols",
        ",".join(symbols),
        "--strategy",
        "none",
        "--control-port",
        str(port),
        "--status-interval",
        "30",
        "--report",
        str(report_path),
        "--set",
        f"resync.snapshot_limit={args.depth}",
        "--set",
        f"resync.watched_streams={args.watched_streams}",
    ]
    sim_cpu0 = _proc_stat(sim.pid)[1]
    load0 = os.getloadavg()
    t0 = time.monotonic()
    daemon = subprocess.Popen(
        daemon_cmd, stdout=subprocess.DEVNULL, stderr=open(tmp / "daemon.err", "wb"), env=_env(), cwd=ROOT
    )
    base = f"http://127.0.0.1:{port}"
    peak_rss = 0
    result: dict = {
        "symbols": args.symbols,
        "depth": args.depth,
        "rate": args.rate,
        "watched_streams": args.watched_streams,
    }

    def sample() -> dict | None:
        nonlocal peak_rss
        if daemon.poll() is not None:
            raise SystemExit(f"daemon exited with {daemon.returncode}; see {tmp / 'daemon.err'}")
        peak_rss = max(peak_rss, _proc_stat(daemon.pid)[0])
        try:
            return _http(f"{base}/status")
        except (URLError, OSError, ValueError):
            return None

    def wait_synced(epoch_at_least: int, started: float, what: str) -> float:
        deadline = started + args.timeout
        last_print = 0.0
        while time.monotonic() < deadline:
            status = sample()
            if status is not None and status.get("epoch", 0) >= epoch_at_least:
                books = status.get("symbols", {})
                synced = sum(1 for b in books.values() if b.get("synced"))
                if synced == args.symbols:
                    return time.monotonic() - started
                if not args.json and time.monotonic() - last_print > 10:
                    last_print = time.monotonic()
                    print(
                        f"  {what}: {synced}/{args.symbols} synced after {time.monotonic() - started:.0f} s", flush=True
                    )
            time.sleep(0.5)
        if not args.json:
            print(f"  {what}: not every book synced within {args.timeout} s", flush=True)
        return None

    def steady() -> None:
        end = time.monotonic() + args.steady
        while time.monotonic() < end:
            sample()
            time.sleep(0.5)

    try:
        synced = wait_synced(1, t0, "startup")
        result["startup_sync_s"] = None if synced is None else round(synced, 1)
        steady()
        if synced is not None:  # (otherwise the run stops here; the daemon's report still says what happened)
            epoch = sample()["epoch"]
            t1 = time.monotonic()
            _http(f"{base}/resync", {"session": True}, TOKEN)
            synced = wait_synced(epoch + 1, t1, "replacement")
            result["replacement_sync_s"] = None if synced is None else round(synced, 1)
            steady()
        result["rss_end_mib"] = round(_proc_stat(daemon.pid)[0] / 1024, 1)
        result["daemon_cpu_s"] = round(_proc_stat(daemon.pid)[1], 1)
        result["sim_cpu_s"] = round(_proc_stat(sim.pid)[1] - sim_cpu0, 1)
        result["wall_s"] = round(time.monotonic() - t0, 1)
        stats = _http(f"{rest}/_sim/stats")
        result["sim_429"] = stats["weight_refusals"]["throttled"]
        result["sim_418"] = stats["weight_refusals"]["banned"]
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        sim.terminate()
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            sim.kill()
    report = json.loads(report_path.read_text())
    result["queue_delay_ms"] = report["queue_delay_ms"]
    result["snapshots_failed"] = report["counters"].get("snapshots_failed", 0)
    result["market_events"] = report["counters"].get("market_events", 0)
    result["epochs"] = len(report["epochs"])
    # Every replacement but the forced one, with its cause (a healthy run has none).
    result["unforced_replacements"] = [e["cause"] for e in report["epochs"][1:] if "operator" not in e["cause"]]
    result["transport_latency_ms"] = report.get("transport_latency_ms", {})
    result["backlog_warnings"] = _count_lines(tmp / "daemon.err", "our own backlog")
    result["load_avg_start"] = load0
    result["rss_peak_mib"] = round(peak_rss / 1024, 1)
    result["load_avg"] = os.getloadavg()
    result["cpus"] = os.cpu_count()
    result["python"] = platform.python_version()
    q = result["queue_delay_ms"]
    result["verdict"] = {
        "all_synced": result["startup_sync_s"] is not None and result.get("replacement_sync_s") is not None,
        "no_429_418": result["sim_429"] == 0 and result["sim_418"] == 0,
        "queue_p99_under_5ms": float(q.get("p99", 1e9)) < 5.0,
        "no_unforced_replacement": not result["unforced_replacements"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 0 if all(result["verdict"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Is the simulator's default market statistically like Binance's? (issue 19)

Prints side by side the statistics (``epochbot.sim.calibration.stats``: mid moves at 1/10/60 s,
busy and quiet stretches, touch spread and size, trade rate and sizes, diff sizes, depth
profile) of

(a) a real Binance capture (default: ``../shared/captures/binance-spot-2024-08-08.jsonl.gz``,
    346 s of spot BTCUSDT/ETHUSDT; ``--real`` takes any capture, e.g. the 2021 thin alts), and
(b) the simulator as a client sees it: ``epochbot sim`` started in its own process with default
    settings (seed 7, rate 10) but for ``--speed``, one client over loopback subscribed to
    bookTicker, aggTrade and diff depth for every symbol, recording ``--minutes`` of market.

``--speed N`` runs the simulator's market N times faster than the wall clock on its virtual
clock (the same stream, sooner); ``--speed 1`` is real time, stamped with receive times like a
capture. ``--direct`` drives the generator alone (no server, no client) for tuning. Run:

    python bench/sim_calibration.py --market usdm --minutes 4 --speed 10
    python bench/sim_calibration.py --market spot --minutes 4 --speed 1      # real time
    python bench/sim_calibration.py --real ../shared/captures/binance-spot-2021-10-12.jsonl --symbols NKNUSDT
    python bench/sim_calibration.py --direct --market usdm --minutes 10
    python bench/sim_calibration.py --spread 20 --market usdm          # 4-minute figures across seeds

``--spread N`` answers how much a four-minute recording varies: the generator alone for seeds
1..N, 24 minutes each cut into six four-minute windows, and the p10 / p50 / p90 across windows
of each window's medians.

``--json`` prints one JSON object instead of the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from epochbot.sim.calibration import Recording, direct_recordings, real_recordings, record_client, stats, table

SPREAD_KEYS = ("move_10s_p50", "move_60s_p50", "spread_ticks_p50", "trades_per_s")

ROOT = Path(__file__).resolve().parents[1]
REAL_CAPTURE = ROOT.parent / "shared" / "captures" / "binance-spot-2024-08-08.jsonl.gz"


def start_sim(market: str, symbols: list[str], *, speed: float, seed: int = 7) -> tuple[subprocess.Popen, dict]:
    """``epochbot sim`` in its own process (default settings but the port and ``--speed``)."""
    cmd = [sys.executable, "-m", "epochbot.app.cli", "sim", "--port", "0", "--market", market]
    cmd += ["--symbols", ",".join(symbols), "--seed", str(seed), "--speed", str(speed)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if "ws" not in fields:
        proc.kill()
        raise RuntimeError(f"epochbot sim did not start: {line!r}")
    return proc, fields


def loopback_recordings(
    market: str, symbols: list[str], minutes: float, *, speed: float, seed: int = 7
) -> dict[str, Recording]:
    proc, fields = start_sim(market, symbols, speed=speed, seed=seed)
    try:
        return asyncio.run(
            record_client(fields["rest"], fields["ws"], market, symbols, minutes * 60, virtual=speed != 1.0)
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def window(rec: Recording, start_s: float, seconds: float) -> Recording:
    """The part of a recording from ``start_s`` for ``seconds`` (tickers, trades, diffs)."""
    end = start_s + seconds
    return Recording(
        rec.symbol,
        rec.tick,
        [x for x in rec.tickers if start_s <= x[0] < end],
        [x for x in rec.trades if start_s <= x[0] < end],
        [x for x in rec.diffs if start_s <= x[0] < end],
    )


def seed_spread(market: str, symbols: list[str], seeds: int, minutes: float = 4.0, per_seed: int = 6) -> None:
    """p10 / p50 / p90 across seeds and windows of each window's statistics."""
    print(f"{market}: {seeds} seeds x {per_seed} windows of {minutes:g} market minutes (the generator alone)")
    for symbol in symbols:
        rows: dict[str, list[float]] = {k: [] for k in SPREAD_KEYS}
        for seed in range(1, seeds + 1):
            rec = direct_recordings(market, [symbol], minutes * per_seed, seed)[symbol]
            for w in range(per_seed):
                st = stats(window(rec, w * minutes * 60, minutes * 60))
                for k in SPREAD_KEYS:
                    rows[k].append(st[k])
        parts = []
        for k, v in rows.items():
            v.sort()
            n = len(v)
            parts.append(f"{k} {v[n // 10]:.2f} / {v[n // 2]:.2f} / {v[9 * n // 10]:.2f}")
        print(f"  {symbol}: " + ", ".join(parts))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--market", choices=("usdm", "spot"), default="usdm")
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT,NKNUSDT")
    ap.add_argument("--minutes", type=float, default=4.0, help="market minutes to record from the simulator")
    ap.add_argument("--speed", type=float, default=10.0, help="simulator market speed (1 = real time)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--real", default=str(REAL_CAPTURE), help="a real capture ('' to skip)")
    ap.add_argument("--direct", action="store_true", help="the generator alone instead of loopback")
    ap.add_argument("--no-sim", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--spread", type=int, default=0, metavar="SEEDS", help="4-minute figures across seeds")
    args = ap.parse_args()
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if args.spread:
        seed_spread(args.market, symbols, args.spread)
        return 0
    columns: list[tuple[str, dict]] = []
    if args.real and os.path.exists(args.real):
        real_market, recs = real_recordings(Path(args.real))
        columns += [(f"real {real_market} {s}", stats(recs[s])) for s in symbols if s in recs]
    t_start = time.perf_counter()
    how = ""
    if not args.no_sim:
        if args.direct:
            sim = direct_recordings(args.market, symbols, args.minutes, args.seed)
            how = "direct (the generator alone)"
        else:
            sim = loopback_recordings(args.market, symbols, args.minutes, speed=args.speed, seed=args.seed)
            how = "loopback, real time" if args.speed == 1 else f"loopback, virtual clock x{args.speed:g}"
        columns += [(f"sim {args.market} {s}", stats(sim[s])) for s in symbols]
    wall = time.perf_counter() - t_start
    if args.json:
        print(json.dumps(dict(columns)))
        return 0
    if how:
        print(
            f"simulator: {args.market}, seed {args.seed}, {args.minutes:g} market minutes, {how}, "
            f"{wall:.1f} s wall; load average {os.getloadavg()[0]:.1f}"
        )
    print(table(columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

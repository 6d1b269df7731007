"""Soak: the runtime under a fault every N seconds, watching memory and silent loss.

Run: ``python bench/soak.py [--minutes 30] [--fault-every 20] [--json]``

The Runtime runs in-process against its embedded simulator (2 symbols, ``--rate`` events/s each).
Every ``--fault-every`` seconds the next fault kind of a rotation is injected (gap, drop, stall
past the silence threshold, malformed, duplicate, out_of_order, snapshot_fail+gap,
server_shutdown, truncated, expire, latency). RSS (VmRSS of /proc/self/status) is sampled every
``--sample-every`` seconds. At the end:

* RSS at 5 minutes vs at the end must be within 10 % (with runs shorter than 10 minutes the
  reference is taken at half the run and the verdict is only indicative);
* nothing was lost silently: every fault that should cost data shows up in the engine's
  counters (gaps, malformed, discarded_stale_epoch, overflow_dropped) or as a new epoch, the
  inbox dropped nothing it did not report, and every book is synced at the end and equal to
  the simulator's depth at the same update id (market paused briefly).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, ROOT)

from resync import SYMBOLS, Harness, wait_until

ROTATION = [
    ("gap", lambda s: {"symbol": s}),
    ("drop", lambda s: {}),
    ("stall", lambda s: {"duration_s": 2.0}),
    ("malformed", lambda s: {"symbol": s, "count": 1}),
    ("duplicate", lambda s: {"symbol": s, "count": 1}),
    ("out_of_order", lambda s: {"symbol": s, "count": 1}),
    ("snapshot_fail+gap", lambda s: {"symbol": s}),
    ("server_shutdown", lambda s: {}),
    ("truncated", lambda s: {"symbol": s, "count": 1}),
    ("expire", lambda s: {}),
    ("latency", lambda s: {"ms": 200, "duration_s": 1.0}),
]


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def run(args, log) -> dict:
    h = Harness("usdm", SYMBOLS, rate=args.rate, seed=args.seed)
    await h.start(timeout=15)
    e, sim = h.engine, h.sim
    t0 = time.monotonic()
    total = args.minutes * 60.0
    samples: list[tuple[float, int]] = [(0.0, rss_kib())]
    injected: dict[str, int] = {}
    recovered: dict[str, int] = {}
    next_fault = args.fault_every
    next_sample = args.sample_every
    i = 0
    while True:
        el = time.monotonic() - t0
        if el >= total or h.task.done():
            break
        if el >= next_sample:
            samples.append((round(el, 1), rss_kib()))
            next_sample += args.sample_every
        if el >= next_fault:
            next_fault += args.fault_every
            kind, params = ROTATION[i % len(ROTATION)]
            sym = SYMBOLS[i % len(SYMBOLS)]
            i += 1
            if kind == "snapshot_fail+gap":
                sim.inject("snapshot_fail", symbol=sym, count=1)
                sim.inject("gap", symbol=sym)
            else:
                sim.inject(kind, **params(sym))
            injected[kind] = injected.get(kind, 0) + 1
            ok = await wait_until(lambda: not sim.faults.to_json()["active"] and h.stable(), args.fault_every - 1)
            if ok:
                recovered[kind] = recovered.get(kind, 0) + 1
            else:
                log(f"{el:7.1f}s {kind}: not recovered within {args.fault_every - 1}s")
            continue
        await asyncio.sleep(0.2)  # scheduler granularity of the soak itself, not a correctness wait
    samples.append((round(time.monotonic() - t0, 1), rss_kib()))
    await wait_until(lambda: not sim.faults.to_json()["active"] and h.stable(), 10)
    verify = await h.verify()
    counters = dict(e.counters)
    code = await h.stop()
    ref_t = 300.0 if total >= 600 else total / 2
    ref = min(samples, key=lambda s: abs(s[0] - ref_t))
    end = samples[-1]
    growth = (end[1] - ref[1]) / ref[1] if ref[1] else 0.0
    lossy = {
        k: injected.get(k, 0)
        for k in (
            "gap",
            "drop",
            "stall",
            "malformed",
            "truncated",
            "out_of_order",
            "server_shutdown",
            "expire",
            "snapshot_fail+gap",
        )
    }
    accounted = counters["gaps"] + counters["malformed"] + (e.epoch - 1) + counters["snapshots_refetched"]
    return {
        "bench": "soak",
        "minutes": round((time.monotonic() - t0) / 60, 2),
        "fault_every_s": args.fault_every,
        "rss_kib": {
            "start": samples[0][1],
            "ref_at_s": ref[0],
            "ref": ref[1],
            "end": end[1],
            "max": max(s[1] for s in samples),
        },
        "rss_growth_ref_to_end": round(growth, 4),
        "rss_pass": abs(growth) <= 0.10,
        "rss_verdict_indicative_only": total < 600,
        "faults_injected": injected,
        "faults_recovered": recovered,
        "all_recovered": injected == recovered,
        "epochs": e.epoch,
        "counters": counters,
        "inbox_dropped_total": h.rt.inbox.dropped_total,
        "overflow_dropped_counted": counters["overflow_dropped"],
        "drops_all_counted": h.rt.inbox.dropped_total == counters["overflow_dropped"],
        "lossy_faults": sum(lossy.values()),
        "loss_signals": accounted,
        "books_synced_and_equal_at_end": bool(verify["equal"]),
        "verify": verify if not verify["equal"] else None,
        "exit_code": code,
        "fatal": e.fatal,
        "rss_samples": samples if args.samples else None,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--fault-every", type=float, default=20.0)
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=None, help="sim diff events/s per symbol (default 10)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--samples", action="store_true", help="include every RSS sample in the output")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    result = asyncio.run(run(args, log))
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")
    ok = (
        result["rss_pass"]
        and result["books_synced_and_equal_at_end"]
        and result["drops_all_counted"]
        and result["exit_code"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

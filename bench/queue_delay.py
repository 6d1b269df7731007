"""Queue delay (process_ts - recv_ts) of the strategy loop at a high depth-message rate, headless.

Run: ``python bench/queue_delay.py [--rate 1000] [--seconds 20] [--json] [--profile] [--journal] [--compare N]``

The Runtime runs in-process (no UI) against its embedded simulator with 2 symbols at ``--rate``
diff events/s each (2 x 1000 = 2,000 depth messages/s by default; bookTicker, aggTrade and
markPrice streams come on top). After ``--seconds`` the whole-run queue-delay histogram
(``runtime.latest.queue_delay_run``, p50/p99/max in ms) is reported with the engine's counters,
the inbox high-water mark and the achieved rates. Target: p99 < 5 ms.

``--journal`` records the run with the version 2 journal (every engine input, into a temporary
directory), then times ``replay`` of that journal in-process and reports the speed-up over the
live run (``replay_speedup``: live duration covered by the journal / replay wall time).
``--compare N`` runs N pairs (without, with the journal; alternating, so load drifts hit both)
and reports each p99 and the median of the per-pair p99 increase (target: <= 0.5 ms), plus the
loop's CPU cost per journaled depth frame measured in a tight loop (robust to a busy machine).

Note: the simulator runs on the same event loop and core as the runtime (as in the product's
default offline mode), so its cost is part of what delays the loop. ``--profile`` wraps the run in
cProfile and prints where the time went.
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


async def run(args, journal_dir: str | None = None) -> dict:
    journal = None
    if journal_dir is not None:
        from epochbot.runtime.config import JournalConfig

        journal = JournalConfig(journal_dir, max_bytes=1 << 30, keep=1000)
    # --rate 0: the simulator's default
    h = Harness("usdm", SYMBOLS, rate=args.rate or None, seed=7, journal=journal)
    await h.start(timeout=15)
    calls: list[float] = []
    writes: list[float] = []
    if journal_dir is not None:
        _instrument(h.rt.journal, calls, writes)
    e = h.engine
    c0 = dict(e.counters)
    msgs0 = sum(h.sim.stats["messages"].values())
    depth0 = sum(v for k, v in h.sim.stats["messages"].items() if "@depth" in k)
    epoch0 = e.epoch
    t0 = time.monotonic()
    # Duration of the measurement, not a correctness wait; bail out early if the runtime dies.
    await wait_until(lambda: h.task.done(), args.seconds, step=0.1)
    elapsed = time.monotonic() - t0
    c1 = dict(e.counters)
    msgs = sum(h.sim.stats["messages"].values()) - msgs0
    depth = sum(v for k, v in h.sim.stats["messages"].items() if "@depth" in k) - depth0
    books_ok = h.stable()
    code = await h.stop()
    snap = h.rt.latest
    q = dict(snap.queue_delay_run)
    extra = {}
    if journal_dir is not None:
        calls.sort()
        writes.sort()
        n = len(calls)
        extra = {
            "journal_rows_timed": n,
            "journal_call_us": {
                "p50": round(calls[n // 2] * 1e6, 2),
                "p99": round(calls[int(n * 0.99)] * 1e6, 2),
                "max": round(calls[-1] * 1e6, 1),
            }
            if n
            else {},
            "journal_batch_writes": len(writes),
            "journal_batch_write_ms": {
                "p50": round(writes[len(writes) // 2] * 1e3, 3),
                "max": round(writes[-1] * 1e3, 3),
            }
            if writes
            else {},
            "journal_loop_share_pct": round(100 * (sum(calls) + sum(writes)) / elapsed, 3),
            **replay_speed(journal_dir, h),
        }
    return {
        **extra,
        "bench": "queue_delay",
        "rate_per_symbol": args.rate,
        "symbols": list(SYMBOLS),
        "seconds": round(elapsed, 2),
        "queue_delay_ms_whole_run": q,
        "queue_delay_ms_last_10s": snap.latency.queue.as_dict()
        if hasattr(snap.latency.queue, "as_dict")
        else str(snap.latency.queue),
        "transport_latency_ms_whole_run": dict(snap.transport_latency_run),
        "target_p99_ms": 5.0,
        "pass": q.get("p99", 1e9) < 5.0,
        "depth_msgs_per_s": round(depth / elapsed, 1),
        "all_msgs_per_s": round(msgs / elapsed, 1),
        "market_events_per_s": round((c1["market_events"] - c0["market_events"]) / elapsed, 1),
        "inbox_high_water": h.rt.inbox.high_water,
        "inbox_dropped": h.rt.inbox.dropped_total,
        "new_epochs": e.epoch - epoch0,
        "books_stable_at_end": books_ok,
        "counters": c1,
        "exit_code": code,
        "fatal": e.fatal,
    }


def _instrument(journal, calls: list, writes: list) -> None:
    """Time, on the loop, every journal call (encoding + batching; a call that triggers a batch
    write is counted as a write instead) and every batch write. Bench-side wrappers."""
    clock = time.perf_counter
    write_batch = journal._write_batch

    def timed_write():
        t = clock()
        write_batch()
        writes.append(clock() - t)

    journal._write_batch = timed_write

    for name in ("frame", "event"):
        method = getattr(journal, name)

        def timed(*args, _m=method, **kw):
            n = len(writes)
            t = clock()
            out = _m(*args, **kw)
            if len(writes) == n:
                calls.append(clock() - t)
            return out

        setattr(journal, name, timed)


def replay_speed(journal_dir: str, h) -> dict:
    """Replay the run's journal in-process; compare with the live duration it covers."""
    import glob

    import orjson

    from epochbot.offline.replay import replay_path

    files = sorted(glob.glob(os.path.join(journal_dir, "*.jsonl")))
    size = sum(os.path.getsize(f) for f in files)
    first = last = None
    rows = 0
    for path in files:
        with open(path, "rb") as fh:
            fh.readline()
            for line in fh:
                rows += 1
                p = orjson.loads(line).get("p")
                if p is not None:
                    first = p if first is None else first
                    last = p
    t0 = time.perf_counter()
    result = replay_path(journal_dir)
    replay_s = time.perf_counter() - t0
    live_s = (last - first) / 1e9 if first is not None else 0.0
    same = result.engine.state_hash() == h.rt.engine.state_hash()
    return {
        "journal_rows": rows,
        "journal_mb": round(size / 1e6, 2),
        "journal_dropped": h.rt.journal.dropped if h.rt.journal else None,
        "replay_live_s": round(live_s, 2),
        "replay_s": round(replay_s, 3),
        "replay_speedup": round(live_s / replay_s, 1) if replay_s else None,
        "replay_rows_per_s": round(rows / replay_s) if replay_s else None,
        "replay_same_state_hash": same,
    }


def micro(n: int = 20_000) -> dict:
    """CPU cost on the loop of journaling one depth frame (encode + batch + its share of the
    64 kB writes), in a tight loop: robust to a busy machine, unlike a latency percentile."""
    import tempfile

    from epochbot.persistence.journal import EngineJournal

    frame = (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"T":1700000000000,"s":"BTCUSDT",'
        '"U":1000,"u":1024,"pu":999,"b":['
        + ",".join(f'["{60000 - i}.10","{i}.250"]' for i in range(12))
        + '],"a":['
        + ",".join(f'["{60001 + i}.20","{i}.500"]' for i in range(13))
        + "]}}"
    )
    with tempfile.TemporaryDirectory(prefix="eb-journal-micro-") as tmp:
        journal = EngineJournal(tmp, venue="binance-usdm", run="micro", max_bytes=1 << 40)
        t0 = time.perf_counter()
        for i in range(n):
            journal.frame(1, i, i + 1000, frame)
        journal.flush()
        took = time.perf_counter() - t0
        journal.close()
    return {"journal_frame_us_per_call": round(took / n * 1e6, 3), "frame_bytes": len(frame), "calls": n}


def compare(args) -> dict:
    import statistics
    import tempfile

    pairs = []
    for i in range(args.compare):
        off = asyncio.run(run(args))
        with tempfile.TemporaryDirectory(prefix="eb-journal-bench-") as tmp:
            on = asyncio.run(run(args, tmp))
        pairs.append(
            {
                "p99_off": off["queue_delay_ms_whole_run"]["p99"],
                "p99_on": on["queue_delay_ms_whole_run"]["p99"],
                "p50_off": off["queue_delay_ms_whole_run"]["p50"],
                "p50_on": on["queue_delay_ms_whole_run"]["p50"],
                "replay_speedup": on.get("replay_speedup"),
                "replay_same_state_hash": on.get("replay_same_state_hash"),
                "journal_mb": on.get("journal_mb"),
                "depth_msgs_per_s_on": on["depth_msgs_per_s"],
                "journal_dropped": on.get("journal_dropped"),
            }
        )
        print(json.dumps({"pair": i + 1, **pairs[-1]}), file=sys.stderr)
    deltas = [p["p99_on"] - p["p99_off"] for p in pairs]
    median_delta = statistics.median(deltas)
    return {
        **micro(),
        "bench": "queue_delay --compare (journal overhead)",
        "rate_per_symbol": args.rate,
        "seconds": args.seconds,
        "pairs": pairs,
        "p99_increase_ms_median": round(median_delta, 3),
        "target_increase_ms": 0.5,
        "pass": median_delta <= 0.5,
        "load_average": os.getloadavg(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="diff events/s per symbol (2 symbols); 0: the simulator's default (@100ms)",
    )
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--journal", action="store_true", help="record the version 2 journal, then time its replay")
    p.add_argument("--compare", type=int, default=0, metavar="N", help="N pairs of runs without/with the journal")
    args = p.parse_args(argv)
    if args.compare:
        result = compare(args)
        print(json.dumps(result, default=str) if args.json else "\n".join(f"{k:32} {v}" for k, v in result.items()))
        return 0 if result["pass"] else 1
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        result = asyncio.run(run(args))
        prof.disable()
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
    elif args.journal:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="eb-journal-bench-") as tmp:
            result = asyncio.run(run(args, tmp))
    else:
        result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""In-process engine throughput on a synthetic USD-M diff-depth stream, against two peers' ways.

Run: ``python bench/engine_throughput.py [--messages 200000] [--seed 7] [--json]``

Ours, per message: ``Engine.handle(decode_frame(frame, epoch, recv_ts))`` on a synced book (orjson
decode, pu continuity, exact integer apply, telemetry), best bid/ask read after every message, and
a ``TimerTick`` every 100 ms of simulated time (frames are 1 ms apart, as in the captures written
by ``bench/workload.py``), so confidence is evaluated at the live tick rate.

Peers, on the same frames, reimplemented here in a few lines on top of their real libraries:

* cryptofeed's way (``BinanceFutures``): ``yapic.json.loads(frame, parse_float=Decimal)`` (stdlib
  ``json`` if yapic.json is not importable; the output says which), ``Decimal`` price and amount,
  ``order_book.OrderBook`` with ``del`` on a zero amount else set, the per-message delta lists,
  its futures update-id check (skip ``u < last`` before the first delta, bridge ``U <= last <= u``,
  then ``pu == last``), best via ``OrderBook.bids.index(0)`` / ``asks.index(0)`` every message.
* python-binance's way: its real ``binance.ws.depthcache.DepthCache`` (float conversion), fed level
  by level through ``add_bid``/``add_ask`` like ``DepthCacheManager._apply_orders`` does, frames
  decoded with orjson (what its websocket uses when orjson is installed). ``add_bid`` deletes a
  level only when the quantity string is exactly ``"0.00000000"``, so USD-M's ``"0.000"`` levels
  stay in the cache as 0.0. Its manager's continuity rule is spot's (``U == last + 1``), which
  USD-M does not follow (it would refetch a snapshot on most messages), so the pu rule is used here
  and the number of messages its own rule would have rejected is reported. (Its
  ``FuturesDepthCacheManager`` does not keep a diff book at all: it replaces the cache with each
  partial-depth message.) Best via ``get_bids()[0]`` / ``get_asks()[0]``, which sorts the whole
  side on every call: measured every message on a prefix, and every 100th message on the full run.

Every final book is checked against the generator's truth.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import orjson  # noqa: E402
from order_book import OrderBook as CfOrderBook

from bench.workload import Workload, make_workload
from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.venues.binance.wire import decode_frame, decode_snapshot

try:
    from yapic import json as cf_json

    CF_DECODER = "yapic.json"
except ImportError:  # pragma: no cover - depends on the machine
    cf_json = json
    CF_DECODER = "json (stdlib; yapic.json not installed)"

try:
    from binance.ws.depthcache import DepthCache
except ImportError:  # older python-binance layout
    from binance.depthcache import DepthCache

TICK_NS = 100_000_000  # live TimerTick period
FRAME_NS = 1_000_000  # simulated spacing of frames (1 ms, as in write_capture)
BIN_PREFIX = 5_000  # python-binance "best every message" variant: messages measured


# ----------------------------------------------------------------------------------- machine


def machine_info() -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = []
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "?"

    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "pinned_cpus": affinity,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "orjson": ver("orjson"),
        "order_book": ver("order_book"),
        "python_binance": ver("python-binance"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cryptofeed_decoder": CF_DECODER + (f" {ver('yapic.json')}" if CF_DECODER == "yapic.json" else ""),
    }


# ----------------------------------------------------------------------------------- ours

FAST_DECODE = True  # --no-fast-decode: orjson only (what decode_frame does without scales)


class _Clock:
    __slots__ = ("now",)

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _synced_engine(w: Workload, t0: int):
    clock = _Clock(t0 - 50 * FRAME_NS)
    eng = Engine(EngineConfig(venue=VenueRules.USDM, symbols=(w.symbol,)), clock)
    eng.start()
    eng.handle(ev.SessionOpened(epoch=eng.epoch, recv_ts=clock.now, url="bench"))
    commands = eng.handle(ev.SubscriptionConfirmed(epoch=eng.epoch, recv_ts=clock.now))
    fetch = [c for c in commands if type(c) is ev.FetchSnapshot]
    assert fetch, "engine did not ask for a snapshot"
    last_id, bids, asks, exch = decode_snapshot(w.snapshot)
    eng.handle(
        ev.SnapshotReady(
            epoch=eng.epoch,
            recv_ts=clock.now,
            symbol=w.symbol,
            request_id=fetch[0].request_id,
            last_update_id=last_id,
            bids=bids,
            asks=asks,
            exchange_ts=exch,
        )
    )
    book = eng.book(w.symbol)
    assert book.synced, book.last_problem
    return eng, clock, book


def run_ours(w: Workload, n: int | None = None) -> tuple[float, dict]:
    frames = w.frames if n is None else w.frames[:n]
    t0 = 1_760_000_000_000 * 1_000_000
    eng, clock, book = _synced_engine(w, t0)
    # Like the runtime (which passes the scales of the books exchangeInfo fixed): depth frames of
    # a book whose codec is known are decoded by C straight to integer units at that scale.
    scales = {w.symbol: (book.codec.price_decimals, book.codec.qty_decimals)} if FAST_DECODE else None
    recv = [t0 + i * FRAME_NS for i in range(len(frames))]
    handle = eng.handle
    decode = decode_frame
    epoch = eng.epoch
    Tick = ev.TimerTick
    next_tick = t0 + TICK_NS
    commands_seen = 0
    ticks = 0
    bb = ba = None
    start = time.perf_counter()
    for frame, now in zip(frames, recv, strict=True):
        clock.now = now
        if now >= next_tick:
            handle(Tick(recv_ts=now))
            next_tick += TICK_NS
            ticks += 1
        if handle(decode(frame, epoch, now, scales)):
            commands_seen += 1
        bb = book.best_bid
        ba = book.best_ask
    elapsed = time.perf_counter() - start
    return elapsed, {"engine": eng, "book": book, "commands": commands_seen, "best": (bb, ba), "ticks": ticks}


def check_ours(w: Workload, res: dict) -> dict:
    book = res["book"]
    eng = res["engine"]
    tb, ta = w.truth_units()
    exact = book.bids == tb and book.asks == ta and book.last_update_id == w.last_update_id
    return {
        "matches_truth_exactly": exact,
        "synced": book.synced,
        "invariants": book.check_invariants() or "ok",
        "best_bid": book.codec.price_str(book.best_bid),
        "best_ask": book.codec.price_str(book.best_ask),
        "gaps": eng.counters["gaps"],
        "commands_during_run": res["commands"],
        "confidence": eng.confidence.score,
        "timer_ticks": res["ticks"],
        "mode": eng.mode.value,
    }


# ----------------------------------------------------------------------------------- cryptofeed's way


def run_cryptofeed(w: Workload, n: int | None = None) -> tuple[float, dict]:
    frames = w.frames if n is None else w.frames[:n]
    loads = cf_json.loads
    D = Decimal
    resp = loads(w.snapshot, parse_float=D)
    book = CfOrderBook()
    book.bids = {D(u[0]): D(u[1]) for u in resp["bids"]}
    book.asks = {D(u[0]): D(u[1]) for u in resp["asks"]}
    last = resp["lastUpdateId"]
    books = {w.symbol: book}
    first_delta = True
    gaps = 0
    bb = ba = None
    start = time.perf_counter()
    for frame in frames:
        msg = loads(frame, parse_float=D)
        pair, _ = msg["stream"].split("@", 1)
        msg = msg["data"]
        pair = pair.upper()
        if msg.get("e") != "depthUpdate":
            continue
        # BinanceFutures' update-id check
        if first_delta and msg["u"] < last:
            continue
        elif msg["U"] <= last <= msg["u"]:
            last = msg["u"]
        elif last == msg["pu"]:
            last = msg["u"]
        else:
            gaps += 1
            break  # cryptofeed resets the feed here
        first_delta = False
        b = books[pair]
        delta = {"bid": [], "ask": []}
        for s, side in (("b", "bid"), ("a", "ask")):
            for update in msg[s]:
                price = D(update[0])
                amount = D(update[1])
                delta[side].append((price, amount))
                if amount == 0:
                    if price in b[side]:
                        del b[side][price]
                else:
                    b[side][price] = amount
        bb = b.bids.index(0)
        ba = b.asks.index(0)
    elapsed = time.perf_counter() - start
    return elapsed, {"book": book, "gaps": gaps, "best": (bb, ba), "last": last}


def check_cryptofeed(w: Workload, res: dict) -> dict:
    book = res["book"]
    tb, ta = w.truth_strings()
    bids = book.bids.to_dict()
    asks = book.asks.to_dict()
    want_b = {Decimal(p): Decimal(q) for p, q in tb.items()}
    want_a = {Decimal(p): Decimal(q) for p, q in ta.items()}
    bb, ba = book.bids.index(0)[0], book.asks.index(0)[0]
    return {
        "matches_truth": bids == want_b and asks == want_a and res["last"] == w.last_update_id,
        "zero_levels": sum(1 for q in bids.values() if q == 0) + sum(1 for q in asks.values() if q == 0),
        "crossed": bb >= ba,
        "best_bid": str(bb),
        "best_ask": str(ba),
        "gaps": res["gaps"],
    }


# ----------------------------------------------------------------------------------- python-binance's way


def run_binance(w: Workload, n: int | None = None, best_every: int = 1) -> tuple[float, dict]:
    frames = w.frames if n is None else w.frames[:n]
    loads = orjson.loads
    dc = DepthCache(w.symbol)  # conv_type=float
    res = loads(w.snapshot)
    for bid in res["bids"]:
        dc.add_bid(bid)
    for ask in res["asks"]:
        dc.add_ask(ask)
    last = res["lastUpdateId"]
    first = True
    spot_rule_rejects = 0
    gaps = 0
    bb = ba = None
    i = 0
    start = time.perf_counter()
    for frame in frames:
        msg = loads(frame).get("data")
        u = msg["u"]
        if first:
            if u < last:
                continue
            if not (msg["U"] <= last <= u):
                gaps += 1
                break
            first = False
        elif msg["pu"] != last:
            gaps += 1
            break
        if msg["U"] != last + 1:
            spot_rule_rejects += 1  # DepthCacheManager would re-initialise the cache here
        for bid in msg.get("b", []) + msg.get("bids", []):
            dc.add_bid(bid)
        for ask in msg.get("a", []) + msg.get("asks", []):
            dc.add_ask(ask)
        dc.update_time = msg.get("E") or msg.get("lastUpdateId")
        last = u
        i += 1
        if i % best_every == 0:
            bb = dc.get_bids()[0]
            ba = dc.get_asks()[0]
    elapsed = time.perf_counter() - start
    return elapsed, {
        "dc": dc,
        "gaps": gaps,
        "best": (bb, ba),
        "last": last,
        "spot_rule_rejects": spot_rule_rejects,
        "applied": i,
    }


def check_binance(w: Workload, res: dict) -> dict:
    dc = res["dc"]
    tb, ta = w.truth_strings()
    zero_b = sum(1 for q in dc._bids.values() if q == 0)
    zero_a = sum(1 for q in dc._asks.values() if q == 0)
    live_b = {p: q for p, q in dc._bids.items() if q != 0}
    live_a = {p: q for p, q in dc._asks.items() if q != 0}
    nonzero_match = live_b == {p: float(q) for p, q in tb.items()} and live_a == {p: float(q) for p, q in ta.items()}
    top_b, top_a = dc.get_bids()[0], dc.get_asks()[0]
    return {
        "matches_truth": zero_b == 0 and zero_a == 0 and nonzero_match,
        "nonzero_levels_match_truth": nonzero_match,
        "zero_levels_kept": zero_b + zero_a,
        "levels_in_cache": len(dc._bids) + len(dc._asks),
        "levels_in_truth": len(tb) + len(ta),
        "best_bid_reported": top_b,
        "best_ask_reported": top_a,
        "best_bid_reported_qty_is_zero": top_b[1] == 0,
        "ends_crossed": top_b[0] >= top_a[0],
        "spot_rule_would_refetch_on": res["spot_rule_rejects"],
        "gaps": res["gaps"],
    }


# ----------------------------------------------------------------------------------- driver


def timed(fn, runs: int, w: Workload, *args, **kwargs) -> tuple[list[float], dict]:
    times = []
    last = None
    for _ in range(runs):
        gc.collect()
        elapsed, last = fn(w, *args, **kwargs)
        times.append(elapsed)
    return times, last


def summarize(name: str, times: list[float], n_msgs: int, n_levels: int) -> dict:
    med = statistics.median(times)
    return {
        "name": name,
        "runs": len(times),
        "messages": n_msgs,
        "median_s": round(med, 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "msgs_per_s": round(n_msgs / med),
        "levels_per_s": round(n_levels / med),
        "us_per_msg": round(med / n_msgs * 1e6, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--levels", default="10-40", help="level changes per message, MIN-MAX (default 10-40)")
    p.add_argument("--json", action="store_true", help="print one JSON line on stdout (the table goes to stderr)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    p.add_argument("--only-ours", action="store_true", help="skip the peers (quick check of the engine)")
    p.add_argument(
        "--no-fast-decode", action="store_true", help="decode depth frames with orjson only (no C decode_depth)"
    )
    args = p.parse_args(argv)

    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        except OSError:
            pass
    info = machine_info()

    t_gen = time.perf_counter()
    global FAST_DECODE
    FAST_DECODE = not args.no_fast_decode
    lo, _, hi = args.levels.partition("-")
    w = make_workload(args.messages, args.seed, levels=(int(lo), int(hi or lo)))
    gen_s = time.perf_counter() - t_gen
    n = len(w.frames)
    levels = w.level_updates
    prefix = min(BIN_PREFIX, n)
    prefix_levels = sum(
        len(orjson.loads(f)["data"]["b"]) + len(orjson.loads(f)["data"]["a"]) for f in w.frames[:prefix]
    )
    warm = min(20_000, n)

    info["loadavg_after_generate"] = [round(x, 2) for x in os.getloadavg()]
    results: dict = {
        "bench": "engine_throughput",
        "machine": info,
        "workload": {
            "messages": n,
            "seed": args.seed,
            "level_updates": levels,
            "deletions": w.deletions,
            "levels_per_msg": round(levels / n, 2),
            "avg_frame_bytes": round(sum(map(len, w.frames)) / n, 1),
            "final_levels": len(w.truth_bids) + len(w.truth_asks),
            "generate_s": round(gen_s, 2),
            "frame_spacing_ms": FRAME_NS / 1e6,
            "timer_tick_ms": TICK_NS / 1e6,
        },
    }

    # Ours
    run_ours(w, warm)
    times, res = timed(run_ours, args.runs, w)
    ours = summarize("epochbot Engine.handle(decode_frame(...))", times, n, levels)
    ours["check"] = check_ours(w, res)
    results["ours"] = ours
    del res

    peers = {}
    if not args.only_ours:
        run_cryptofeed(w, warm)
        times, res = timed(run_cryptofeed, args.runs, w)
        cf = summarize(f"cryptofeed way ({CF_DECODER.split()[0]} + Decimal + order_book.OrderBook)", times, n, levels)
        cf["check"] = check_cryptofeed(w, res)
        peers["cryptofeed"] = cf
        del res

        run_binance(w, min(2_000, n))
        times, res = timed(run_binance, args.runs, w, prefix, 1)
        b1 = summarize(
            f"python-binance DepthCache, best every message (first {prefix} msgs)", times, prefix, prefix_levels
        )
        peers["binance_best_every_msg"] = b1
        del res
        times, res = timed(run_binance, args.runs, w, None, 100)
        b100 = summarize("python-binance DepthCache, best every 100th message", times, n, levels)
        b100["check"] = check_binance(w, res)
        peers["binance_best_every_100"] = b100
        del res
        # Ours on the same prefix, for the every-message comparison.
        times, res = timed(run_ours, args.runs, w, prefix)
        peers["ours_prefix"] = summarize(f"epochbot on the same first {prefix} msgs", times, prefix, prefix_levels)
        del res
    results["peers"] = peers

    targets = {"msgs_per_s_target": 150_000, "meets_150k": ours["msgs_per_s"] >= 150_000}
    if "cryptofeed" in peers:
        ratio = ours["msgs_per_s"] / peers["cryptofeed"]["msgs_per_s"]
        targets["speedup_vs_cryptofeed"] = round(ratio, 2)
        targets["meets_5x_cryptofeed"] = ratio >= 5.0
        targets["speedup_vs_binance_every_msg"] = round(
            peers["ours_prefix"]["msgs_per_s"] / peers["binance_best_every_msg"]["msgs_per_s"], 2
        )
        targets["speedup_vs_binance_every_100"] = round(
            ours["msgs_per_s"] / peers["binance_best_every_100"]["msgs_per_s"], 2
        )
    results["targets"] = targets
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    if args.json:
        print_table(results, file=sys.stderr)
        print(json.dumps(results, default=str), flush=True)
    else:
        print_table(results)
    ok = ours["check"]["matches_truth_exactly"] and ours["check"]["synced"]
    return 0 if ok else 1


def print_table(r: dict, file=None) -> None:
    import builtins
    import functools

    print = functools.partial(builtins.print, file=file or sys.stdout)  # noqa: A001
    m = r["machine"]
    wl = r["workload"]
    print(
        f"machine: {m['cpu']} ({m['cpus']} cpus, pinned to {m['pinned_cpus']}), {m['implementation']} {m['python']}; "
        f"load average at start {m['loadavg']}, at end {m.get('loadavg_end')} (other work on the machine skews results)"
    )
    print(
        f"libs: orjson {m['orjson']}, order_book {m['order_book']}, python-binance {m['python_binance']}, cryptofeed "
        f"decoder: {m['cryptofeed_decoder']}"
    )
    print(
        f"workload: {wl['messages']} USD-M depth frames (seed {wl['seed']}), {wl['level_updates']} level updates "
        f"({wl['levels_per_msg']}/msg, {wl['deletions']} deletions), {wl['avg_frame_bytes']} B/frame, "
        f"frames {wl['frame_spacing_ms']} ms apart, TimerTick every {wl['timer_tick_ms']} ms"
    )
    rows = [r["ours"]] + [v for v in r["peers"].values()]
    print()
    print(f"{'implementation':<78} {'msgs':>7} {'msgs/s':>9} {'levels/s':>10} {'us/msg':>8} {'median s':>9}")
    for row in rows:
        print(
            f"{row['name']:<78} {row['messages']:>7} {row['msgs_per_s']:>9,} {row['levels_per_s']:>10,} "
            f"{row['us_per_msg']:>8} {row['median_s']:>9}"
        )
    print()
    c = r["ours"]["check"]
    print(
        f"ours: final book matches truth exactly: {c['matches_truth_exactly']}; synced={c['synced']} "
        f"invariants={c['invariants']} "
        f"best {c['best_bid']}/{c['best_ask']} gaps={c['gaps']} confidence={c['confidence']} (after {c['timer_ticks']} "
        f"TimerTicks) mode={c['mode']}"
    )
    peers = r["peers"]
    if "cryptofeed" in peers:
        c = peers["cryptofeed"]["check"]
        print(
            f"cryptofeed way: final book matches truth: {c['matches_truth']}; zero levels {c['zero_levels']}; crossed: "
            f"{c['crossed']}; "
            f"best {c['best_bid']}/{c['best_ask']}"
        )
        c = peers["binance_best_every_100"]["check"]
        print(
            f"python-binance DepthCache: matches truth: {c['matches_truth']}; KEEPS ZERO LEVELS: "
            f"{c['zero_levels_kept']} of "
            f"{c['levels_in_cache']} cached (truth has {c['levels_in_truth']}); non-zero levels match truth: "
            f"{c['nonzero_levels_match_truth']}; "
            f"ENDS CROSSED: {c['ends_crossed']} (reports best bid {c['best_bid_reported']} / best ask "
            f"{c['best_ask_reported']}; "
            f"best bid qty is zero: {c['best_bid_reported_qty_is_zero']}); its spot rule U==last+1 would refetch on "
            f"{c['spot_rule_would_refetch_on']} messages"
        )
    t = r["targets"]
    print()
    print("targets: " + ", ".join(f"{k}={v}" for k, v in t.items()))


if __name__ == "__main__":
    sys.exit(main())

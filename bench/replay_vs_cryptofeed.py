"""Whole-process replay of a 100,000-message USD-M capture: ``epochbot replay`` vs cryptofeed's way.

Run: ``python bench/replay_vs_cryptofeed.py [--messages 100000] [--seed 7] [--runs 5] [--json]``

Writes a synthetic capture with ``bench/workload.write_capture`` to a temporary directory, then
times, as whole processes (``subprocess.run`` wrapped in ``time.perf_counter``; median of --runs):

* ours: ``python -m epochbot.app.cli replay FILE --json`` (same interpreter, cwd = the repo root);
* cryptofeed's way: a small script written to the temporary directory at run time that reads the
  capture lines, decodes each row and each frame with ``yapic.json`` (``parse_float=Decimal``, as
  cryptofeed's message handler does; stdlib ``json`` if yapic.json is not importable), converts
  levels with ``Decimal``, keeps an ``order_book.OrderBook``, fetches its snapshot on the first
  depth message (answered by the capture's depth ``rest`` row), applies BinanceFutures' update-id
  check and ``del`` on a zero amount, else sets.

Both final books are checked against the generator's truth: ours through the report's
``state_hash`` (the full book) and top levels, cryptofeed's through a digest of its full book.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.engine_throughput import machine_info
from bench.workload import Workload, price_str, qty_str, write_capture

CRYPTOFEED_WAY = r"""
import hashlib, sys
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
try:
    from yapic import json
    decoder = "yapic.json"
except ImportError:
    import json
    decoder = "json"
from order_book import OrderBook

D = Decimal
path = sys.argv[1]
books = {}          # pair -> OrderBook
last_update_id = {}
first_delta = {}
pending = {}        # pair -> depth messages waiting for the snapshot (the REST request is in flight)
gaps = 0
applied = 0


def snapshot(pair, body):
    resp = json.loads(body, parse_float=D)
    last_update_id[pair] = resp["lastUpdateId"]
    book = OrderBook()
    book.bids = {D(u[0]): D(u[1]) for u in resp["bids"]}
    book.asks = {D(u[0]): D(u[1]) for u in resp["asks"]}
    books[pair] = book
    first_delta[pair] = True


def book_msg(msg, pair):
    global gaps, applied
    last = last_update_id[pair]
    if first_delta[pair] and msg["u"] < last:
        return
    elif msg["U"] <= last <= msg["u"]:
        last_update_id[pair] = msg["u"]
    elif last == msg["pu"]:
        last_update_id[pair] = msg["u"]
    else:
        gaps += 1
        del books[pair]
        return
    first_delta[pair] = False
    book = books[pair]
    delta = {"bid": [], "ask": []}
    for s, side in (("b", "bid"), ("a", "ask")):
        for update in msg[s]:
            price = D(update[0])
            amount = D(update[1])
            delta[side].append((price, amount))
            if amount == 0:
                if price in book[side]:
                    del book[side][price]
            else:
                book[side][price] = amount
    book.bids.index(0)
    book.asks.index(0)
    applied += 1


def handle_frame(raw):
    msg = json.loads(raw, parse_float=D)
    pair, _ = msg["stream"].split("@", 1)
    msg = msg["data"]
    pair = pair.upper()
    if msg.get("e") != "depthUpdate":
        return
    if pair not in books:
        pending.setdefault(pair, []).append(msg)
        return
    book_msg(msg, pair)


with open(path, "rb") as f:
    header = json.loads(f.readline())
    for line in f:
        row = json.loads(line, parse_float=D)
        kind = row["kind"]
        if kind == "ws":
            handle_frame(row["data"])
        elif kind == "rest":
            parts = urlsplit(row["url"])
            if parts.path.endswith("/depth"):
                pair = parse_qs(parts.query)["symbol"][0].upper()
                snapshot(pair, row["data"])
                for msg in pending.pop(pair, []):
                    book_msg(msg, pair)

out = {"decoder": decoder, "gaps": gaps, "applied": applied, "books": {}}
for pair, book in books.items():
    h = hashlib.sha256()
    for side in (book.bids.to_dict(), book.asks.to_dict()):
        h.update(",".join(f"{int(p * 100)}:{int(q * 1000)}" for p, q in sorted(side.items())).encode())
        h.update(b"|")
    out["books"][pair] = {"digest": h.hexdigest(), "last_update_id": last_update_id[pair],
                          "best_bid": str(book.bids.index(0)[0]), "best_ask": str(book.asks.index(0)[0]),
                          "levels": len(book.bids) + len(book.asks)}
import json as stdjson
print(stdjson.dumps(out))
"""


def truth_digest(w: Workload) -> str:
    bids, asks = w.truth_units()
    h = hashlib.sha256()
    for side in (bids, asks):
        h.update(",".join(f"{p}:{q}" for p, q in sorted(side.items())).encode())
        h.update(b"|")
    return h.hexdigest()


def truth_state_hash(w: Workload) -> str:
    """The engine's state_hash for a synced epoch-1 book equal to the truth (computed by core)."""
    from epochbot.book.book import BookState, OrderBook, VenueRules
    from epochbot.model.numeric import UnitCodec

    book = OrderBook(w.symbol, VenueRules.USDM, UnitCodec(2, 3))
    book.bids, book.asks = w.truth_units()
    book.state = BookState.SYNCED
    book.last_update_id = w.last_update_id
    h = hashlib.sha256()
    h.update(b"epoch=1|")
    book.feed_hash(h)
    return h.hexdigest()


def child_env() -> dict:
    env = dict(os.environ)
    spec = importlib.util.find_spec("yapic")
    extra = []
    if spec is not None and spec.submodule_search_locations:
        extra.append(os.path.dirname(list(spec.submodule_search_locations)[0]))
    extra.append(ROOT)
    env["PYTHONPATH"] = os.pathsep.join(extra + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def time_runs(cmd: list[str], runs: int, env: dict) -> tuple[list[float], bytes]:
    times = []
    out = b""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
        out = proc.stdout
    return times, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    env = child_env()
    with tempfile.TemporaryDirectory(prefix="epochbot-bench-") as tmp:
        capture = os.path.join(tmp, "usdm-synthetic.jsonl")
        w = write_capture(capture, args.messages, args.seed)
        script = os.path.join(tmp, "cryptofeed_way.py")
        with open(script, "w") as f:
            f.write(CRYPTOFEED_WAY)
        size = os.path.getsize(capture)

        ours_cmd = [sys.executable, "-m", "epochbot.app.cli", "replay", capture, "--json"]
        cf_cmd = [sys.executable, script, capture]
        # One untimed run of each (page cache, .pyc), then the timed runs, interleaved per round.
        subprocess.run(ours_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(cf_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        ours_t: list[float] = []
        cf_t: list[float] = []
        ours_out = cf_out = b""
        for _ in range(args.runs):
            t, ours_out = time_runs(ours_cmd, 1, env)
            ours_t += t
            t, cf_out = time_runs(cf_cmd, 1, env)
            cf_t += t
        # Interpreter start-up alone, for reference.
        base_t, _ = time_runs([sys.executable, "-c", "pass"], args.runs, env)

    report = json.loads(ours_out)
    sym = report["symbols"][w.symbol]
    tb, ta = w.truth_units()
    want_bids = [[price_str(pu // 10), qty_str(q)] for pu, q in sorted(tb.items(), reverse=True)[:20]]
    ours_ok = report["state_hash"] == truth_state_hash(w) and sym["synced"] and sym["gaps"] == 0
    ours_top_ok = [[b[0], b[1]] for b in sym["bids"]] == [[_norm(p), _norm(q)] for p, q in want_bids]
    cf = json.loads(cf_out)
    cf_book = cf["books"].get(w.symbol, {})
    cf_ok = cf_book.get("digest") == truth_digest(w) and cf_book.get("last_update_id") == w.last_update_id

    ours_med = statistics.median(ours_t)
    cf_med = statistics.median(cf_t)
    base = statistics.median(base_t)
    result = {
        "bench": "replay_vs_cryptofeed",
        "machine": machine_info(),
        "capture": {"messages": args.messages, "seed": args.seed, "bytes": size, "level_updates": w.level_updates},
        "runs": args.runs,
        "ours": {
            "cmd": "python -m epochbot.app.cli replay FILE --json",
            "median_s": round(ours_med, 3),
            "times_s": [round(t, 3) for t in ours_t],
            "msgs_per_s": round(args.messages / ours_med),
            "events": report["events"],
            "state_hash_matches_truth": ours_ok,
            "top20_bids_match_truth": ours_top_ok,
        },
        "cryptofeed_way": {
            "decoder": cf["decoder"],
            "median_s": round(cf_med, 3),
            "times_s": [round(t, 3) for t in cf_t],
            "msgs_per_s": round(args.messages / cf_med),
            "applied": cf["applied"],
            "gaps": cf["gaps"],
            "book_matches_truth": cf_ok,
        },
        "python_startup_s": round(base, 3),
        "speedup": round(cf_med / ours_med, 2),
        "meets_5x": cf_med / ours_med >= 5.0,
    }
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        m = result["machine"]
        print(f"machine: {m['cpu']} ({m['cpus']} cpus), {m['implementation']} {m['python']}")
        print(
            f"capture: {args.messages} USD-M depth frames, {w.level_updates} level updates, {size / 1e6:.1f} MB (seed "
            f"{args.seed})"
        )
        print(f"{'process':<60} {'median s':>9} {'msgs/s':>9}  final book vs truth")
        print(
            f"{'python -m epochbot.app.cli replay FILE --json':<60} {ours_med:>9.3f} "
            f"{result['ours']['msgs_per_s']:>9,}  "
            f"state_hash {'MATCHES' if ours_ok else 'DIFFERS'}, top 20 bids {'match' if ours_top_ok else 'DIFFER'}"
        )
        print(
            f"{'cryptofeed way (' + cf['decoder'] + ' + Decimal + order_book)':<60} {cf_med:>9.3f} "
            f"{result['cryptofeed_way']['msgs_per_s']:>9,}  "
            f"{'MATCHES' if cf_ok else 'DIFFERS'} ({cf['applied']} applied, {cf['gaps']} gaps)"
        )
        print(
            f"python start-up alone: {base:.3f} s; speed-up ours vs cryptofeed's way: {result['speedup']}x (target 5x: "
            f"{'met' if result['meets_5x'] else 'NOT met'})"
        )
    return 0 if ours_ok and cf_ok else 1


def _norm(text: str) -> str:
    # The replay report prints decimals without trailing zeros ("27123.4", "1.2").
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


if __name__ == "__main__":
    sys.exit(main())

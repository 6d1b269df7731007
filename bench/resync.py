"""Time-to-correct-resync of the live runtime against the embedded simulator, fault by fault.

Run: ``python bench/resync.py [--faults 50] [--other 5] [--market usdm] [--json]``

The `Runtime` runs in-process against the embedded simulator (venue "sim", 2 symbols, started as the
app starts it: `epochbot.app.embedded_sim`). For each
fault kind the simulator is told to misbehave (``sim.inject``) and the benchmark waits,
event-driven (polling engine state every 2 ms, bounded by a per-fault timeout), until the runtime
has recovered. Clocks: the runtime's clock is ``time.time_ns`` and so is ours, so the engine's
own timestamps (``BookResync.detected_ns/synced_ns``, ``EpochRecord.requested_ns/synced_ns``) can
be compared with the injection time directly.

What is measured
----------------
gap      one skipped update id on one symbol's diff stream -> that book alone resyncs, same epoch.
         ``detect->synced`` is the engine's own ``BookResync.resync_ms`` (target p99 < 50 ms);
         ``fired->synced`` starts when the simulator emitted the gapped event (fault log, 1 ms
         resolution); ``inject->synced`` also waits for the simulator's next diff (1/rate).
drop     every websocket aborted (no close frame) -> new epoch, backoff included, resynchronized.
         ``inject->synced`` and the engine's ``EpochRecord.resync_ms`` (target p99 < 250 ms).
         Drops are paced >= ``--drop-spacing`` (2 s) apart so neither the runtime's connection-attempt
         budget (10 dials / 10 s) nor the venue's REST weight (USD-M 2400/min; two 1000-level
         snapshots = 40 per drop; at 1 drop/s the simulator answers 429) is what gets measured.
stall    the simulator silences the connections open when it is armed, for ``--stall-s``
         (default 3 s) while its book keeps moving (new connections work). The liveness model
         (core/engine/liveness.py) suspects the stream once it is silent well beyond its learned gap
         and a small REST depth probe shows the venue moved past our book. Measured from the
         last market data received before the stall: ``last->detected`` (session replaced) and
         ``last->synced`` (new epoch resynchronized; target <= the ceiling ``--silence-ms`` +
         250 ms). Each stall starts from a session healthy for ``replace_healthy_ms``: stalls
         back to back are the next session "turning out no better", which backs off by design.
others   (``--other`` times each): gap skip=5, stale timestamps, added latency, slow / failing /
         429 snapshots (each combined with a gap so a snapshot is needed), crossed snapshot,
         reject subscription (+ drop), malformed / truncated frames, duplicate, out-of-order,
         server shutdown, expire. Recovery = inject -> every book synced and bridged again
         (after the fault expired), plus the engine's own resync time when one happened.

Every measured recovery is followed, per kind (and after every "other" trial), by a correctness
check: the simulator's market generator is paused, we wait until our book's ``last_update_id``
equals the simulator's, and the top 1000 levels of both sides are compared exactly (decimal
values). The market resumes at once (a pause is a quiet market: probed, never replaced).

Outlier investigation (bench-side only): ``--trace`` times every REST depth call, the engine's
handling of every SnapshotReady (rebuild + validate), GC passes (``gc.callbacks``) and event-loop
lag, and lists slow trials with that breakdown; ``--gc-freeze`` / ``--gc-threshold`` change this
process's collector after startup; ``--snapshot-limit`` the REST depth limit; ``--kinds`` picks
the main kinds to run.

The same faults (gap, drop, stall) are applied to a peer: python-binance 1.0.37's spot
``DepthCacheManager`` pointed at a separate spot simulator (AsyncClient.API_URL and
BinanceSocketManager.STREAM_URL overridden). Its recovery is the completion of its next
``_init_cache`` (snapshot refetch) after the injection, within ``--peer-timeout``; then its book
is compared to the simulator's at the same update id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import replace
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from epochbot.app.embedded_sim import EmbeddedSim
from epochbot.engine.engine import EngineConfig
from epochbot.runtime.config import VENUES, JournalConfig, RuntimeConfig
from epochbot.runtime.runtime import Runtime

SYMBOLS = ("BTCUSDT", "ETHUSDT")
POLL_S = 0.002


def now_ns() -> int:
    return time.time_ns()


def pct(values: list[float]) -> dict:
    data = sorted(v for v in values if v is not None)
    if not data:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    n = len(data)

    def q(p: float) -> float:
        k = max(0, min(n - 1, -(-int(p * n * 1000) // 1000) - 1))
        return round(data[k], 3)

    return {"n": n, "p50": q(0.5), "p99": q(0.99), "max": round(data[-1], 3)}


async def wait_until(pred, timeout: float, step: float = POLL_S) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step)


def _dec_side(levels) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(str(p)), Decimal(str(q))) for p, q in levels]


def compare_levels(ours_bids, ours_asks, sim_bids, sim_asks, depth: int = 1000) -> dict:
    """Exact decimal comparison of the top ``depth`` levels; reports the first difference."""
    out = {"equal": True, "depth": depth}
    for side, a, b in (("bids", ours_bids, sim_bids), ("asks", ours_asks, sim_asks)):
        a = _dec_side(a[:depth])
        b = _dec_side(b[:depth])
        if a != b:
            out["equal"] = False
            idx = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            out.setdefault("first_diff", {})[side] = {
                "index": idx,
                "ours": [str(v) for v in a[idx]] if idx < len(a) else None,
                "sim": [str(v) for v in b[idx]] if idx < len(b) else None,
                "len_ours": len(a),
                "len_sim": len(b),
            }
    return out


def compare_within_horizon(ours_bids, ours_asks, sim_bids, sim_asks, horizon, depth: int = 1000) -> dict:
    """Exact equality of every level at or inside the last snapshot's horizon; beyond it our
    levels (learnt from diffs only) must be a subset of the simulator's, with equal quantities.

    A Binance client cannot know levels that were deeper than its snapshot's ``limit`` and
    never touched by a diff since, so the naive "top 1000 equal" check fails by construction
    once the touch has moved; it is reported too (``top_equal``) for information.
    """
    out = {"equal": True}
    top = compare_levels(ours_bids, ours_asks, sim_bids, sim_asks, depth)
    out["top_equal"] = top["equal"]
    for side, a, b, h, inside in (
        ("bids", ours_bids, sim_bids, horizon[0], lambda p, h: p >= h),
        ("asks", ours_asks, sim_asks, horizon[1], lambda p, h: p <= h),
    ):
        a = _dec_side(a)
        b = _dec_side(b)
        if h is None:
            a_in, b_in, a_out, b_out = a, b, [], []
        else:
            a_in = [x for x in a if inside(x[0], h)]
            b_in = [x for x in b if inside(x[0], h)]
            a_out = [x for x in a if not inside(x[0], h)]
            b_out = {x[0]: x[1] for x in b if not inside(x[0], h)}
        if a_in != b_in:
            out["equal"] = False
            pairs = enumerate(zip(a_in, b_in, strict=False))
            idx = next((i for i, (x, y) in pairs if x != y), min(len(a_in), len(b_in)))
            out.setdefault("first_diff", {})[side] = {
                "index": idx,
                "ours": [str(v) for v in a_in[idx]] if idx < len(a_in) else None,
                "sim": [str(v) for v in b_in[idx]] if idx < len(b_in) else None,
                "horizon": str(h),
            }
        extra = [x for x in a_out if b_out.get(x[0]) != x[1]]
        if extra:
            out["equal"] = False
            out.setdefault("beyond_horizon_wrong", {})[side] = [[str(p), str(q)] for p, q in extra[:5]]
        out[f"{side}_inside"] = len(a_in)
    return out


# ============================================================================ our runtime


class Tracer:
    """Bench-side instrumentation (no core change): where a slow resync's time goes.

    * every REST depth call: start/end (wall ns) per symbol (wraps ``rt.rest.depth``),
    * every ``SnapshotReady`` the engine handles: its queue time (recv_ts -> handled) and the
      handling time (rebuild + validate + bookkeeping) (wraps the engine's ``SnapshotReady`` handler),
    * GC passes (``gc.callbacks``): generation and duration,
    * event-loop lag: a task sleeping 1 ms records every overshoot > 2 ms.
    """

    def __init__(self) -> None:
        self.fetches: list[tuple[str, int, int]] = []
        self.ready: list[tuple[str, int, int, int, float]] = []  # symbol, recv_ts, handle start, end, fetch_ms
        self.gcs: list[tuple[int, int, int]] = []  # start ns, end ns, generation
        self.lags: list[tuple[int, float]] = []  # ns at wake, overshoot ms
        self._gc_start = 0
        self._task = None

    def _gc_cb(self, phase, info) -> None:
        if phase == "start":
            self._gc_start = time.time_ns()
        else:
            self.gcs.append((self._gc_start, time.time_ns(), info.get("generation", -1)))

    async def _lag_loop(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            over = (time.perf_counter() - t - 0.001) * 1000
            if over > 2.0:
                self.lags.append((time.time_ns(), over))

    def install(self, h: Harness) -> None:
        import gc

        gc.callbacks.append(self._gc_cb)
        from epochbot.model import events as ev

        table = h.rt.engine.control_handlers  # this engine's dispatch table (event type -> handler)
        orig_ready = table[ev.SnapshotReady]

        def on_ready(event, now, _orig=orig_ready):
            t0 = time.time_ns()
            out = _orig(event, now)
            self.ready.append((event.symbol, event.recv_ts, t0, time.time_ns(), event.fetch_ms))
            return out

        table[ev.SnapshotReady] = on_ready
        rest = h.rt.rest
        orig_depth = rest.depth

        async def depth(symbol, limit=1000, *a, **kw):
            t0 = time.time_ns()
            try:
                return await orig_depth(symbol, limit, *a, **kw)
            finally:
                self.fetches.append((symbol, t0, time.time_ns()))

        rest.depth = depth
        self._task = asyncio.get_running_loop().create_task(self._lag_loop())

    def window(self, symbol: str | None, t0: int, t1: int) -> dict:
        """Breakdown of [t0, t1] (wall ns): the fetch and snapshot handling of ``symbol``, GC
        passes and loop lag inside it."""
        f = [x for x in self.fetches if x[1] >= t0 and x[1] <= t1 and (symbol is None or x[0] == symbol)]
        r = [x for x in self.ready if x[2] >= t0 and x[2] <= t1 + 50_000_000 and (symbol is None or x[0] == symbol)]
        g = [x for x in self.gcs if x[1] >= t0 and x[0] <= t1]
        lag = [x[1] for x in self.lags if t0 <= x[0] <= t1 + 2_000_000]
        return {
            "request_to_fetch_start_ms": round((f[0][1] - t0) / 1e6, 3) if f else None,
            "fetch_wall_ms": round((f[0][2] - f[0][1]) / 1e6, 3) if f else None,
            "engine_fetch_ms": round(r[0][4], 3) if r else None,
            "ready_queue_ms": round((r[0][2] - r[0][1]) / 1e6, 3) if r else None,
            "ready_handle_ms": round((r[0][3] - r[0][2]) / 1e6, 3) if r else None,
            "gc_passes": len(g),
            "gc_ms": round(sum(b - a for a, b, _ in g) / 1e6, 3),
            "gc_gens": sorted({gen for *_, gen in g}),
            "loop_lag_max_ms": round(max(lag), 3) if lag else 0.0,
            "loop_lag_events": len(lag),
        }


class Harness:
    """One Runtime with its embedded simulator, plus event-driven waits on engine state."""

    def __init__(
        self,
        market: str = "usdm",
        symbols=SYMBOLS,
        rate: float | None = None,
        silence_ms: float = 1500.0,
        seed: int = 7,
        trades: bool = True,
        tickers: bool = True,
        engine: EngineConfig | None = None,
        snapshot_limit: int = 1000,
        trace: bool = False,
        journal: JournalConfig | None = None,
    ) -> None:
        venue = replace(VENUES["sim"], market=market)
        eng = engine or EngineConfig(silence_replace_ms=silence_ms, snapshot_limit=snapshot_limit)
        self.tracer = Tracer() if trace else None
        self.config = RuntimeConfig(
            venue=venue,
            symbols=tuple(symbols),
            engine=eng,
            sim_rate=rate,
            sim_seed=seed,
            trades=trades,
            tickers=tickers,
            journal=journal,
        )
        self.embedded = EmbeddedSim(self.config)  # started with the runtime (start)
        self.rt: Runtime | None = None
        self.task: asyncio.Task | None = None
        # Per symbol: the deepest (bid, ask) price of the last REST snapshot, or None when the
        # snapshot held the whole side. Levels beyond it are only known from later diffs.
        self.horizon: dict[str, tuple] = {}

    def _trace_snapshots(self) -> None:
        """Wrap the runtime's REST depth call (bench-side) to learn each snapshot's horizon."""
        rest = self.rt.rest
        orig = rest.depth
        limit_levels = self.config.engine.snapshot_limit

        async def depth(symbol, limit=1000, *a, **kw):
            result = await orig(symbol, limit, *a, **kw)
            _, bids, asks, _ = result
            if limit < limit_levels:  # a liveness probe (a few levels), not a book snapshot
                return result
            self.horizon[symbol] = (
                Decimal(str(bids[-1][0])) if len(bids) >= limit_levels else None,
                Decimal(str(asks[-1][0])) if len(asks) >= limit_levels else None,
            )
            return result

        rest.depth = depth

    @property
    def engine(self):
        return self.rt.engine

    @property
    def sim(self):
        return self.embedded.exchange

    async def start(self, timeout: float = 10.0) -> None:
        self.rt = Runtime(await self.embedded.start())
        self.embedded.announce(self.rt)
        self.task = asyncio.get_running_loop().create_task(self.rt.run(), name="runtime")
        ok = await wait_until(lambda: self.rt.rest is not None, timeout, step=0.0005)
        if ok:
            self._trace_snapshots()
            if self.tracer is not None:
                self.tracer.install(self)
        ok = ok and await wait_until(self.stable, timeout)
        if not ok:
            raise RuntimeError("runtime did not sync at start")

    async def stop(self, timeout: float = 10.0) -> int | None:
        self.rt.request_stop("bench done")
        try:
            return await asyncio.wait_for(self.task, timeout)
        except TimeoutError:
            self.task.cancel()
            return None
        finally:
            await self.embedded.stop()

    def stable(self) -> bool:
        """Session up, every book synced and its snapshot bridged by a live diff."""
        e = self.rt.engine
        if not (e.session_open and e.subscribed) or not e.symbols:
            return False
        for s in e.symbols.values():
            b = s.book
            if not b.synced or b.awaiting_bridge or s.snapshot_request:
                return False
        return True

    def record(self, epoch: int):
        for r in reversed(self.rt.engine.epochs):
            if r.epoch == epoch:
                return r
        return None

    def resync_after(self, symbol: str | None, t_ns: int):
        for r in reversed(self.rt.engine.book_resyncs):
            if r.detected_ns < t_ns:
                break
            if symbol is None or r.symbol == symbol:
                return r
        return None

    def fired_ms(self, fault_id: int) -> int | None:
        for entry in reversed(self.sim.faults.log):
            if entry["id"] == fault_id and entry["event"] == "fired":
                return entry["time"]
        return None

    async def verify(self, depth: int = 1000, timeout: float = 1.0) -> dict:
        """Pause the simulator's market, wait for our books to reach its update ids, compare."""
        sim, e = self.sim, self.rt.engine
        sim.pause_market()
        try:
            # Let the generator's current tick finish (it checks `paused` each tick).
            await asyncio.sleep(0)
            target = {s: sim.market(s).update_id for s in e.symbols}
            reached = await wait_until(
                lambda: all(
                    e.symbols[s].book.synced and e.symbols[s].book.last_update_id == sim.market(s).update_id
                    for s in e.symbols
                ),
                timeout,
            )
            out = {"reached_same_update_id": reached, "symbols": {}}
            for s, st in e.symbols.items():
                book = st.book
                body = sim.depth_snapshot(s, 5000)
                bids, asks = book.top_strings(5000) if book.codec is not None else ([], [])
                cmp = compare_within_horizon(
                    bids, asks, body["bids"], body["asks"], self.horizon.get(s, (None, None)), depth
                )
                cmp.update(
                    ours_id=book.last_update_id, sim_id=body["lastUpdateId"], synced=book.synced, target_id=target[s]
                )
                out["symbols"][s] = cmp
            out["equal"] = reached and all(v["equal"] and v["ours_id"] == v["sim_id"] for v in out["symbols"].values())
            return out
        finally:
            sim.resume_market()

    async def healthy(self, timeout: float = 15.0) -> bool:
        """Stable, and the current epoch synced for the engine's ``replace_healthy_ms``: a stall
        now is a new incident, not the next session turning out no better (which backs off)."""
        e = self.rt.engine
        need = e.config.replace_healthy_ms * 1e6 + 100e6

        def ok() -> bool:
            rec = self.record(e.epoch)
            return self.stable() and rec is not None and rec.synced_ns and now_ns() - rec.synced_ns >= need

        return await wait_until(ok, timeout, step=0.02)

    async def settle(self, timeout: float = 5.0) -> bool:
        """Stable, no armed fault left on the simulator, and still stable a moment later."""
        sim = self.sim
        ok = await wait_until(lambda: not sim.faults.to_json()["active"] and self.stable(), timeout)
        if not ok:
            return False
        epoch = self.engine.epoch
        await asyncio.sleep(0.05)  # pacing only: an epoch change in this window is re-awaited
        return self.engine.epoch == epoch or await wait_until(self.stable, timeout)


async def trial_gap(h: Harness, i: int, timeout: float, **params) -> dict:
    sym = h.config.symbols[i % len(h.config.symbols)]
    e = h.engine
    epoch0 = e.epoch
    inj = now_ns()
    fault = h.sim.inject("gap", symbol=sym, **params)
    found = {}

    def done() -> bool:
        r = h.resync_after(sym, inj)
        if r is None or not r.synced_ns:
            return False
        found["r"] = r
        b = e.symbols[sym].book
        if "synced_seen_ns" not in found:
            found["synced_seen_ns"] = now_ns()
        return b.synced and not b.awaiting_bridge

    ok = await wait_until(done, timeout)
    bridged = now_ns()
    r = found.get("r")
    if not ok or r is None:
        return {"ok": False, "timeout": True, "symbol": sym}
    fired = h.fired_ms(fault["id"])
    trace = h.tracer.window(sym, r.detected_ns, r.synced_ns) if h.tracer is not None else None
    return {
        "ok": True,
        "symbol": sym,
        "cause": r.cause,
        "same_epoch": e.epoch == epoch0,
        "trace": trace,
        "inject_to_synced_ms": (r.synced_ns - inj) / 1e6,
        "detect_to_synced_ms": r.resync_ms,
        "fired_to_synced_ms": (r.synced_ns / 1e6 - fired) if fired else None,
        "inject_to_detect_ms": (r.detected_ns - inj) / 1e6,
        "inject_to_bridged_ms": (bridged - inj) / 1e6,
    }


async def trial_drop(h: Harness, i: int, timeout: float, kind: str = "drop", pre: list | None = None) -> dict:
    e = h.engine
    epoch0 = e.epoch
    for k, p in pre or ():
        h.sim.inject(k, **p)
    inj = now_ns()
    h.sim.inject(kind)
    seen = {}

    def done() -> bool:
        if e.epoch == epoch0:
            return False
        r = h.record(epoch0 + 1)
        if r is None or not r.synced_ns:
            return False
        seen.setdefault("synced_seen", now_ns())
        return h.stable()

    ok = await wait_until(done, timeout)
    bridged = now_ns()
    r = h.record(epoch0 + 1)
    if not ok or r is None or not r.synced_ns:
        return {"ok": False, "timeout": True, "epochs": e.epoch - epoch0}
    last = h.record(e.epoch)
    return {
        "ok": True,
        "cause": r.cause,
        "epochs": e.epoch - epoch0,
        "inject_to_synced_ms": (r.synced_ns - inj) / 1e6,
        "detect_to_synced_ms": r.resync_ms,
        "final_detect_to_synced_ms": last.resync_ms if last is not None else None,
        "inject_to_final_synced_ms": ((last.synced_ns - inj) / 1e6) if last is not None and last.synced_ns else None,
        "inject_to_bridged_ms": (bridged - inj) / 1e6,
        "phases_ms": r.phases_ms(),
        "trace": h.tracer.window(None, r.detected_ns, r.synced_ns) if h.tracer is not None else None,
    }


async def trial_stall(h: Harness, i: int, stall_s: float, timeout: float) -> dict:
    e = h.engine
    tel = e.telemetry
    epoch0 = e.epoch
    inj = now_ns()
    h.sim.inject("stall", duration_s=stall_s)
    last = {"recv": tel.last_market_recv}

    def detected() -> bool:
        if e.epoch != epoch0:
            return True
        last["recv"] = tel.last_market_recv
        return False

    if not await wait_until(detected, stall_s + timeout):
        return {"ok": False, "timeout": True, "phase": "detect"}
    last_recv = last["recv"]
    r = h.record(epoch0 + 1)
    # Since 97a2f7b an epoch is synced only once a live diff bridged its snapshot; with the
    # simulator's global stall that is after the stall, and the silent new session may itself be
    # replaced: take the first epoch after epoch0 that synced.
    synced = {}

    def first_synced() -> bool:
        for rec in h.rt.engine.epochs:
            if rec.epoch > epoch0 and rec.synced_ns:
                synced["r"] = rec
                return True
        return False

    ok = await wait_until(first_synced, stall_s + timeout)
    if not ok:
        return {"ok": False, "timeout": True, "phase": "sync"}
    r_first = r
    r = synced["r"]
    ok = await wait_until(lambda: h.stable() and not h.sim.faults.active("stall"), stall_s + timeout)
    bridged = now_ns()
    final = h.record(e.epoch)
    return {
        "ok": ok,
        "cause": r.cause,
        "epochs": e.epoch - epoch0,
        "last_to_detect_ms": (r_first.requested_ns - last_recv) / 1e6,
        "synced_epoch_offset": r.epoch - epoch0,
        "stall_end_to_synced_ms": (r.synced_ns - inj) / 1e6 - stall_s * 1000,
        "last_to_synced_ms": (r.synced_ns - last_recv) / 1e6,
        "engine_resync_ms": r.resync_ms,
        "inject_to_detect_ms": (r_first.requested_ns - inj) / 1e6,
        "last_to_bridged_ms": (bridged - last_recv) / 1e6,
        "stall_end_to_bridged_ms": (bridged - inj) / 1e6 - stall_s * 1000,
        "final_epoch_resync_ms": final.resync_ms if final is not None else None,
    }


# kind label -> (pre-faults to arm first, trigger fault, trigger params, expected reaction)
def other_specs(symbol: str) -> dict:
    s = {"symbol": symbol}
    return {
        "gap skip=5": ([], "gap", {**s, "skip": 5}, "book"),
        "stale ts (5 s lag, 2 s)": ([], "stale", {"lag_ms": 5000, "duration_s": 2.0}, "any"),
        "latency +200 ms (1 s)": ([], "latency", {"ms": 200, "duration_s": 1.0}, "any"),
        "snapshot_slow 300 ms +gap": ([("snapshot_slow", {**s, "ms": 300, "count": 1})], "gap", s, "book"),
        "snapshot_fail 503 +gap": ([("snapshot_fail", {**s, "count": 1})], "gap", s, "book"),
        "snapshot 429 (Retry-After 1) +gap": (
            [("snapshot_ratelimit", {**s, "count": 1, "retry_after": 1})],
            "gap",
            s,
            "book",
        ),
        "crossed_snapshot +gap": ([("crossed_snapshot", {**s, "count": 1})], "gap", s, "book"),
        "reject_subscribe +drop": ([("reject_subscribe", {"count": 1})], "drop", {}, "epoch"),
        "malformed": ([], "malformed", {**s, "count": 1}, "book"),
        "truncated": ([], "truncated", {**s, "count": 1}, "book"),
        "duplicate": ([], "duplicate", {**s, "count": 1}, "none"),
        "out_of_order": ([], "out_of_order", {**s, "count": 1}, "any"),
        "server_shutdown": ([], "server_shutdown", {}, "epoch"),
        "expire (24 h close)": ([], "expire", {}, "epoch"),
    }


async def trial_other(h: Harness, label: str, spec, timeout: float) -> dict:
    pre, kind, params, expect = spec
    e = h.engine
    epoch0 = e.epoch
    counters0 = dict(e.counters)
    for k, p in pre:
        h.sim.inject(k, **p)
    inj = now_ns()
    h.sim.inject(kind, **params)
    sym = params.get("symbol")

    def reacted() -> bool:
        if expect == "book":
            r = h.resync_after(sym, inj)
            return (r is not None and bool(r.synced_ns)) or e.epoch != epoch0
        if expect == "epoch":
            r = h.record(e.epoch)
            return e.epoch != epoch0 and r is not None and bool(r.synced_ns)
        return True

    ok_react = await wait_until(reacted, timeout)
    ok = ok_react and await h.settle(timeout)
    t_ok = now_ns()
    r_book = h.resync_after(sym, inj) if sym else None
    r_epoch = h.record(epoch0 + 1) if e.epoch != epoch0 else None
    deltas = {
        k: v - counters0.get(k, 0)
        for k, v in e.counters.items()
        if v != counters0.get(k, 0) and k not in ("events", "market_events")
    }
    return {
        "ok": ok,
        "reacted": ok_react,
        "expect": expect,
        "inject_to_recovered_ms": (t_ok - inj) / 1e6 if ok else None,
        "engine_resync_ms": (
            r_book.resync_ms if r_book is not None else (r_epoch.resync_ms if r_epoch is not None else None)
        ),
        "book_resync_cause": r_book.cause if r_book is not None else None,
        "new_epochs": e.epoch - epoch0,
        "epoch_cause": r_epoch.cause if r_epoch is not None else None,
        "counters": deltas,
    }


async def run_ours(args, log) -> dict:
    import gc

    if args.gc_threshold:
        gc.set_threshold(*(int(x) for x in args.gc_threshold.split(",")))
    h = Harness(
        args.market,
        SYMBOLS,
        args.rate,
        args.silence_ms,
        args.seed,
        snapshot_limit=args.snapshot_limit,
        trace=args.trace,
    )
    t0 = time.monotonic()
    await h.start()
    if args.gc_freeze:
        gc.collect()
        gc.freeze()  # everything allocated at startup moves to the permanent generation
    log(
        f"runtime synced in {time.monotonic() - t0:.3f} s on {h.sim.rest_url} ({args.market}); "
        f"gc threshold {gc.get_threshold()}, frozen {gc.get_freeze_count()}, snapshot limit {args.snapshot_limit}"
    )
    kinds = set(args.kinds.split(","))
    res: dict = {"kinds": {}, "verify": {}}

    async def verify(label):
        v = await h.verify()
        res["verify"].setdefault(label, []).append(v)
        if not v["equal"]:
            log(f"  VERIFY FAILED after {label}: {json.dumps(v)[:600]}")
        return v

    # gap
    rows = []
    for i in range(args.faults if "gap" in kinds else 0):
        await h.settle(5)
        rows.append(await trial_gap(h, i, args.timeout))
    res["kinds"]["gap"] = rows
    await h.settle(5)
    if rows:
        await verify("gap")
    log(f"gap: {sum(r['ok'] for r in rows)}/{len(rows)} recovered")

    # drop (paced: the dial budget is 10 / 10 s)
    rows = []
    last_inj = 0.0
    for i in range(args.faults if "drop" in kinds else 0):
        await h.settle(5)
        wait = args.drop_spacing - (time.monotonic() - last_inj)
        if wait > 0:
            await asyncio.sleep(wait)  # pacing, not a correctness wait
        last_inj = time.monotonic()
        rows.append(await trial_drop(h, i, args.timeout))
    res["kinds"]["drop"] = rows
    await h.settle(5)
    if rows:
        await verify("drop")
    log(f"drop: {sum(r['ok'] for r in rows)}/{len(rows)} recovered")

    # stall
    rows = []
    for i in range((args.stall_faults if args.stall_faults is not None else args.faults) if "stall" in kinds else 0):
        await h.settle(args.stall_s + 5)
        await h.healthy(args.stall_s + 10)
        rows.append(await trial_stall(h, i, args.stall_s, args.timeout))
    res["kinds"]["stall"] = rows
    if rows:
        await h.settle(args.stall_s + 5)
        await verify("stall")
    log(f"stall: {sum(r['ok'] for r in rows)}/{len(rows)} recovered")

    # everything else, a few times each, verified after every trial
    for i in range(args.other):
        sym = SYMBOLS[i % len(SYMBOLS)]
        for label, spec in other_specs(sym).items():
            await h.settle(10)
            out = await trial_other(h, label, spec, args.timeout + 3)
            out["verify_equal"] = (await verify(label))["equal"]
            res["kinds"].setdefault(label, []).append(out)
    log(f"other kinds done ({args.other} each)")
    res["counters"] = dict(h.engine.counters)
    res["epochs"] = h.engine.epoch
    res["fatal"] = h.engine.fatal
    res["books_synced_at_end"] = all(s.book.synced for s in h.engine.symbols.values())
    res["sim_stats"] = {
        k: v
        for k, v in h.sim.stats_json().items()
        if k in ("connections_total", "frames_dropped_stall", "rest_requests", "slow_disconnects")
    }
    if h.tracer is not None:
        tr = h.tracer
        res["trace"] = {
            "gc_passes": len(tr.gcs),
            "gc_gen2": sum(1 for *_, g in tr.gcs if g == 2),
            "gc_max_ms": round(max(((b - a) / 1e6 for a, b, _ in tr.gcs), default=0.0), 3),
            "gc_gen2_max_ms": round(max(((b - a) / 1e6 for a, b, g in tr.gcs if g == 2), default=0.0), 3),
            "loop_lag_events_over_2ms": len(tr.lags),
            "loop_lag_max_ms": round(max((x for _, x in tr.lags), default=0.0), 3),
            "fetch_wall_ms": pct([(b - a) / 1e6 for _, a, b in tr.fetches]),
            "ready_handle_ms": pct([(c - b) / 1e6 for _, _, b, c, _ in tr.ready]),
        }
    res["exit_code"] = await h.stop()
    return res


# ============================================================================ peer: python-binance


async def run_peer_python_binance(args, log) -> dict:
    """python-binance DepthCacheManager (spot, diff stream @100ms) against a spot simulator."""
    out: dict = {"peer": "python-binance DepthCacheManager (spot)", "kinds": {}}
    try:
        import binance  # noqa: F401
        from binance import AsyncClient, BinanceSocketManager, DepthCacheManager
    except Exception as exc:  # noqa: BLE001 - pragma: no cover - environment
        return {**out, "error": f"python-binance unavailable: {exc}"}
    from epochbot.sim.server import SimConfig, SimExchange

    logging.getLogger("binance").setLevel(logging.CRITICAL)
    sim = SimExchange(SimConfig(market="spot", symbols=["BTCUSDT"], seed=args.seed))
    await sim.start()
    client = AsyncClient()  # the constructor does not talk to the network; create() would ping Binance
    client.API_URL = sim.rest_url + "/api"
    bm = BinanceSocketManager(client)
    bm.STREAM_URL = sim.ws_url + "/"
    dcm = DepthCacheManager(client, "BTCUSDT", bm=bm, limit=1000, ws_interval=100, conv_type=Decimal)
    inits: list[int] = []
    orig_init = dcm._init_cache

    async def traced_init():
        await orig_init()
        inits.append(now_ns())

    dcm._init_cache = traced_init
    state = {"msgs": 0, "last_msg_ns": 0, "error": None}

    async def pump():
        try:
            async with dcm as sock:
                while True:
                    await sock.recv()
                    state["msgs"] += 1
                    state["last_msg_ns"] = now_ns()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a peer client's failure is recorded in the result
            state["error"] = f"{type(exc).__name__}: {exc}"

    task = asyncio.get_running_loop().create_task(pump())
    m = sim.market("BTCUSDT")

    async def verify() -> dict:
        sim.pause_market()
        try:
            await asyncio.sleep(0)
            reached = await wait_until(lambda: dcm._last_update_id == m.update_id, 1.5)
            dc = dcm.get_depth_cache()
            body = sim.depth_snapshot("BTCUSDT", 1000)
            bids = dc.get_bids() if dc else []
            asks = dc.get_asks() if dc else []
            strict = compare_levels(bids, asks, body["bids"], body["asks"])
            nz = compare_levels(
                [b for b in bids if b[1] != 0], [a for a in asks if a[1] != 0], body["bids"], body["asks"]
            )
            zero_levels = sum(1 for b in bids if b[1] == 0) + sum(1 for a in asks if a[1] == 0)
            return {
                "reached_same_update_id": reached,
                "ours_id": dcm._last_update_id,
                "sim_id": m.update_id,
                "equal_strict": reached and strict["equal"],
                "equal_ignoring_zero_qty": reached and nz["equal"],
                "zero_qty_levels_kept": zero_levels,
                "first_diff": nz.get("first_diff"),
            }
        finally:
            sim.resume_market()

    try:
        if not await wait_until(lambda: len(inits) >= 1 and state["msgs"] > 3, 10):
            return {**out, "error": f"peer did not start: {state['error']}"}
        out["verify_start"] = await verify()
        n = args.peer_faults
        for kind in ("gap", "drop", "stall"):
            rows = []
            for _i in range(n):
                await wait_until(lambda: not sim.faults.to_json()["active"], 10)
                await asyncio.sleep(0.3)  # pacing: let the peer settle (it has no "synced" state to poll)
                k0 = len(inits)
                inj = now_ns()
                if kind == "gap":
                    sim.inject("gap", symbol="BTCUSDT")
                elif kind == "drop":
                    sim.inject("drop")
                else:
                    sim.inject("stall", duration_s=args.stall_s)
                ok = await wait_until(lambda k0=k0: len(inits) > k0, args.peer_timeout)
                row = {"ok": ok, "inject_to_resynced_ms": (inits[k0] - inj) / 1e6 if ok else None}
                if kind == "stall":
                    await wait_until(lambda: not sim.faults.active("stall"), args.stall_s + 1)
                await wait_until(lambda: state["last_msg_ns"] > now_ns() - 150_000_000, 5)
                v = await verify()
                row.update(
                    verify_equal_strict=v["equal_strict"],
                    verify_equal_ignoring_zero=v["equal_ignoring_zero_qty"],
                    zero_qty_levels=v["zero_qty_levels_kept"],
                    reached_same_id=v["reached_same_update_id"],
                )
                rows.append(row)
            out["kinds"][kind] = rows
            log(f"peer python-binance {kind}: {sum(r['ok'] for r in rows)}/{n} recovered within {args.peer_timeout}s")
        out["error"] = state["error"]
        return out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        try:
            await client.close_connection()
        except Exception:  # noqa: BLE001 - closing a third-party client: whatever it raises, the simulator must stop
            pass
        await sim.stop()


# ============================================================================ peer: ccxt.pro


async def run_peer_ccxt(args, log) -> dict:
    out: dict = {"peer": "ccxt.pro binanceusdm watch_order_book", "kinds": {}}
    try:
        import ccxt.pro as ccxtpro
    except ImportError as exc:
        return {**out, "error": f"ccxt not importable: {exc}"}
    from epochbot.sim.server import SimConfig, SimExchange

    sim = SimExchange(SimConfig(market="usdm", symbols=["BTCUSDT"], seed=args.seed))
    await sim.start()
    ex = ccxtpro.binanceusdm(
        {
            "enableRateLimit": False,
            "options": {"fetchMarkets": ["linear"], "fetchCurrencies": False, "adjustForTimeDifference": False},
        }
    )
    out["version"] = getattr(ccxtpro, "__version__", None)
    try:
        api = ex.urls["api"]
        for key in list(api.keys()):
            val = api[key]
            if isinstance(val, str) and "fapi.binance.com" in val:
                api[key] = val.replace("https://fapi.binance.com", sim.rest_url)
        ws = api.get("ws", {})
        for key, val in list(ws.items()):
            if isinstance(val, str) and "fstream" in val:
                ws[key] = (
                    sim.ws_url + "/ws"
                    if not val.rstrip("/").endswith(("public", "market"))
                    else sim.ws_url + "/" + val.rstrip("/").rsplit("/", 1)[1]
                )
        out["ws_urls"] = {k: v for k, v in ws.items() if isinstance(v, str) and "127.0.0.1" in v}
        state = {"n": 0, "nonce": None, "error": None, "last_ns": 0, "book": None}

        async def pump():
            while True:
                try:
                    ob = await ex.watch_order_book("BTC/USDT:USDT", 1000)
                    state["n"] += 1
                    state["nonce"] = ob.get("nonce")
                    state["last_ns"] = now_ns()
                    state["book"] = ob
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a peer client's failure is recorded in the result
                    state["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                    state["errors"] = state.get("errors", 0) + 1
                    await asyncio.sleep(0.05)

        task = asyncio.get_running_loop().create_task(pump())
        m = sim.market("BTCUSDT")
        try:
            if not await wait_until(lambda: state["n"] > 3, 15):
                return {**out, "error": f"ccxt did not produce a book from the simulator: {state['error']}"}

            async def verify():
                sim.pause_market()
                try:
                    reached = await wait_until(lambda: state["nonce"] == m.update_id, 1.5)
                    ob = state["book"]
                    body = sim.depth_snapshot("BTCUSDT", 1000)
                    cmp = compare_levels(
                        [b[:2] for b in ob["bids"]], [a[:2] for a in ob["asks"]], body["bids"], body["asks"]
                    )
                    return {
                        "reached": reached,
                        "equal": reached and cmp["equal"],
                        "nonce": state["nonce"],
                        "sim_id": m.update_id,
                    }
                finally:
                    sim.resume_market()

            out["verify_start"] = await verify()
            for kind in ("gap", "drop", "stall"):
                rows = []
                for _i in range(args.peer_faults):
                    await wait_until(lambda: not sim.faults.to_json()["active"], 10)
                    await asyncio.sleep(0.3)  # pacing
                    errs0 = state.get("errors", 0)
                    inj = now_ns()
                    sim.inject(
                        kind if kind != "gap" else "gap",
                        **(
                            {"symbol": "BTCUSDT"}
                            if kind == "gap"
                            else {"duration_s": args.stall_s}
                            if kind == "stall"
                            else {}
                        ),
                    )

                    # Recovered = a book update after the fault whose nonce matches the live stream again.
                    def recovered(inj: int = inj) -> bool:
                        return (
                            state["last_ns"] > inj
                            and state["nonce"] is not None
                            and abs(m.update_id - state["nonce"]) < 50
                        )

                    base = state["last_ns"]
                    await asyncio.sleep(0.15 if kind != "stall" else args.stall_s)  # let the fault take effect
                    ok = await wait_until(lambda base=base: recovered() and state["last_ns"] > base, args.peer_timeout)
                    row = {
                        "ok": ok,
                        "inject_to_update_ms": (state["last_ns"] - inj) / 1e6 if ok else None,
                        "errors_raised": state.get("errors", 0) - errs0,
                    }
                    v = await verify()
                    row["verify_equal"] = v["equal"]
                    rows.append(row)
                out["kinds"][kind] = rows
                log(
                    f"peer ccxt {kind}: {sum(r['ok'] for r in rows)}/{len(rows)} updating again, "
                    f"{sum(bool(r['verify_equal']) for r in rows)} equal"
                )
            out["last_error"] = state["error"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    except Exception as exc:  # noqa: BLE001 - a peer run's failure is recorded in the result
        out["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        try:
            await ex.close()
        except Exception:  # noqa: BLE001 - closing a third-party client: whatever it raises, the simulator must stop
            pass
        await sim.stop()
    return out


# ============================================================================ report

TARGETS = {
    "gap": ("detect_to_synced_ms", 50.0),
    "drop": ("detect_to_synced_ms", 250.0),
    "stall": ("last_to_synced_ms", None),
}


def summarise(ours: dict, args) -> list[dict]:
    rows = []
    kinds = ours["kinds"]
    stall_target = args.silence_ms + 250.0

    def add(kind, metric, values, target, n_total, note=""):
        st = pct(values)
        passed = None if target is None else (st["p99"] is not None and st["p99"] < target and st["n"] == n_total)
        rows.append(
            {"kind": kind, "metric": metric, **st, "of": n_total, "target_p99": target, "pass": passed, "note": note}
        )

    g = kinds.get("gap", [])
    add(
        "gap",
        "detect->synced",
        [r.get("detect_to_synced_ms") for r in g if r["ok"]],
        50.0,
        len(g),
        "engine BookResync.resync_ms",
    )
    add(
        "gap",
        "fired->synced",
        [r.get("fired_to_synced_ms") for r in g if r["ok"]],
        50.0,
        len(g),
        "from sim emitting the gapped diff (1 ms res.)",
    )
    add(
        "gap",
        "inject->synced",
        [r.get("inject_to_synced_ms") for r in g if r["ok"]],
        None,
        len(g),
        "includes waiting for the next diff",
    )
    add(
        "gap",
        "inject->bridged",
        [r.get("inject_to_bridged_ms") for r in g if r["ok"]],
        None,
        len(g),
        "first live diff validated (2 ms poll)",
    )
    d = kinds.get("drop", [])
    add(
        "drop",
        "detect->synced",
        [r.get("detect_to_synced_ms") for r in d if r["ok"]],
        250.0,
        len(d),
        "engine EpochRecord.resync_ms",
    )
    add(
        "drop",
        "inject->synced",
        [r.get("inject_to_synced_ms") for r in d if r["ok"]],
        250.0,
        len(d),
        "backoff included",
    )
    add("drop", "inject->bridged", [r.get("inject_to_bridged_ms") for r in d if r["ok"]], None, len(d))
    s = kinds.get("stall", [])
    add(
        "stall",
        "last data->detected",
        [r.get("last_to_detect_ms") for r in s if r["ok"]],
        None,
        len(s),
        f"learned gap + venue probe (ceiling {args.silence_ms:.0f} ms)",
    )
    add(
        "stall",
        "last data->synced",
        [r.get("last_to_synced_ms") for r in s if r["ok"]],
        stall_target,
        len(s),
        "new epoch resynchronized (REST)",
    )
    add(
        "stall",
        "stall end->bridged",
        [r.get("stall_end_to_bridged_ms") for r in s if r["ok"]],
        None,
        len(s),
        f"stall {args.stall_s} s, global in the sim",
    )
    for label, trials in kinds.items():
        if label in ("gap", "drop", "stall"):
            continue
        vals = [r.get("inject_to_recovered_ms") for r in trials if r["ok"]]
        eng = [r.get("engine_resync_ms") for r in trials if r.get("engine_resync_ms") is not None]
        ver = sum(1 for r in trials if r.get("verify_equal"))
        causes = sorted({r.get("book_resync_cause") or r.get("epoch_cause") or "-" for r in trials})
        st = pct(vals)
        rows.append(
            {
                "kind": label,
                "metric": "inject->recovered",
                **st,
                "of": len(trials),
                "target_p99": None,
                "pass": st["n"] == len(trials) and ver == len(trials),
                "note": f"engine resync p50 {pct(eng)['p50']} ms; verified {ver}/{len(trials)}; "
                f"{', '.join(causes)[:60]}",
            }
        )
    return rows


def print_table(rows: list[dict], verify: dict, peers: list[dict]) -> None:
    def f(v):
        return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))

    print(f"{'fault kind':34} {'metric':20} {'n':>7} {'p50':>8} {'p99':>8} {'max':>8} {'target':>7} {'pass':>5}  note")
    for r in rows:
        p = "-" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL")
        print(
            f"{r['kind'][:34]:34} {r['metric']:20} {str(r['n']) + '/' + str(r['of']):>7} {f(r['p50']):>8} "
            f"{f(r['p99']):>8} "
            f"{f(r['max']):>8} {f(r['target_p99']):>7} {p:>5}  {r['note']}"
        )
    ok = sum(1 for v in verify.values() for x in v if x["equal"])
    total = sum(len(v) for v in verify.values())
    print(f"\nbook == simulator depth (top 1000, same update id): {ok}/{total} checks equal")
    for peer in peers:
        print(f"\npeer: {peer.get('peer')}  {('ERROR: ' + peer['error']) if peer.get('error') else ''}")
        for kind, trials in peer.get("kinds", {}).items():
            vals = [r.get("inject_to_resynced_ms", r.get("inject_to_update_ms")) for r in trials if r["ok"]]
            st = pct(vals)
            eq = sum(1 for r in trials if r.get("verify_equal_strict", r.get("verify_equal")))
            eqnz = sum(1 for r in trials if r.get("verify_equal_ignoring_zero"))
            extra = (
                f", equal ignoring zero-qty levels {eqnz}/{len(trials)}"
                if "verify_equal_ignoring_zero" in (trials[0] if trials else {})
                else ""
            )
            print(
                f"  {kind:6} recovered {st['n']}/{len(trials)}  p50 {f(st['p50'])} p99 {f(st['p99'])} max "
                f"{f(st['max'])} ms; "
                f"book equal {eq}/{len(trials)}{extra}"
            )


async def main_async(args) -> dict:
    quiet = args.json

    def log(msg):
        print(msg, file=sys.stderr if quiet else sys.stdout, flush=True)

    t0 = time.monotonic()
    ours = await run_ours(args, log)
    peers = []
    if args.peer_faults > 0:
        if "python-binance" in args.peers:
            peers.append(await run_peer_python_binance(args, log))
        if "ccxt" in args.peers:
            peers.append(await run_peer_ccxt(args, log))
    rows = summarise(ours, args)
    result = {
        "bench": "resync",
        "market": args.market,
        "symbols": list(SYMBOLS),
        "faults": args.faults,
        "other": args.other,
        "rate": args.rate or 10.0,
        "silence_ms": args.silence_ms,
        "stall_s": args.stall_s,
        "drop_spacing_s": args.drop_spacing,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "table": rows,
        "verify": {k: [x["equal"] for x in v] for k, v in ours["verify"].items()},
        "verify_failures": {
            k: [x for x in v if not x["equal"]] for k, v in ours["verify"].items() if any(not x["equal"] for x in v)
        },
        "counters": ours["counters"],
        "epochs": ours["epochs"],
        "fatal": ours["fatal"],
        "books_synced_at_end": ours["books_synced_at_end"],
        "exit_code": ours["exit_code"],
        "sim": ours["sim_stats"],
        "peers": peers,
        "raw": ours["kinds"] if args.raw else None,
        "trace": ours.get("trace"),
        "slow_gap_trials": [
            r for r in ours["kinds"].get("gap", []) if r.get("ok") and r["detect_to_synced_ms"] > args.slow_ms
        ],
        "slow_drop_trials": [
            r for r in ours["kinds"].get("drop", []) if r.get("ok") and r["detect_to_synced_ms"] > 5 * args.slow_ms
        ],
        "options": {
            "gc_freeze": args.gc_freeze,
            "gc_threshold": args.gc_threshold,
            "snapshot_limit": args.snapshot_limit,
            "kinds": args.kinds,
        },
    }
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print_table(rows, ours["verify"], peers)
        if ours.get("trace"):
            print(f"\ntrace: {json.dumps(ours['trace'])}")
            for r in result["slow_gap_trials"]:
                print(
                    f"  slow gap {r['symbol']}: detect->synced {r['detect_to_synced_ms']:.1f} ms  "
                    f"{json.dumps(r['trace'])}"
                )
            for r in result["slow_drop_trials"]:
                print(
                    f"  slow drop: detect->synced {r['detect_to_synced_ms']:.1f} ms phases "
                    f"{json.dumps(r['phases_ms'])} {json.dumps(r['trace'])}"
                )
        print(
            f"\nepochs {ours['epochs']}, counters {ours['counters']}, fatal {ours['fatal']}, exit {ours['exit_code']}, "
            f"elapsed {result['elapsed_s']} s"
        )
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faults", type=int, default=50, help="trials per main kind (gap, drop, stall)")
    p.add_argument("--stall-faults", type=int, default=None, help="stall trials (default: --faults)")
    p.add_argument("--other", type=int, default=3, help="trials per other fault kind")
    p.add_argument("--market", choices=("usdm", "spot"), default="usdm")
    p.add_argument("--rate", type=float, default=None, help="sim diff events/s per symbol (default 10 = @100ms)")
    p.add_argument("--silence-ms", type=float, default=1500.0)
    p.add_argument("--stall-s", type=float, default=3.0)
    p.add_argument(
        "--drop-spacing",
        type=float,
        default=2.0,
        help="min seconds between drops: dial budget 10/10 s and REST weight 2400/min (2 x 20 per resync)",
    )
    p.add_argument("--timeout", type=float, default=5.0, help="per-fault recovery timeout (s)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--peers", default="python-binance,ccxt")
    p.add_argument("--peer-faults", type=int, default=5)
    p.add_argument("--peer-timeout", type=float, default=10.0)
    p.add_argument("--kinds", default="gap,drop,stall", help="main kinds to run (comma-separated)")
    p.add_argument("--gc-freeze", action="store_true", help="gc.collect(); gc.freeze() once the runtime has synced")
    p.add_argument("--gc-threshold", default=None, metavar="G0,G1,G2", help="gc.set_threshold for this process")
    p.add_argument("--snapshot-limit", type=int, default=1000, help="EngineConfig.snapshot_limit (REST depth limit)")
    p.add_argument("--trace", action="store_true", help="instrument fetch / handling / GC / loop lag; list slow trials")
    p.add_argument("--slow-ms", type=float, default=20.0, help="a gap trial slower than this is listed with its trace")
    p.add_argument("--raw", action="store_true", help="include every trial in --json output")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = asyncio.run(main_async(args))
    main_rows = [r for r in result["table"] if r["pass"] is not None and r["kind"] in ("gap", "drop", "stall")]
    return 0 if all(r["pass"] for r in main_rows) else 1


if __name__ == "__main__":
    sys.exit(main())

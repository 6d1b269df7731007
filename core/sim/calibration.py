"""Measure a market as a client sees it, for calibrating the simulator against Binance (issue 19).

The same statistics (`stats`), computed by the same code, from a real capture (`real_recordings`,
stamped with receive times) and from the simulator over loopback (`record_client`: subscribed to
``<s>@bookTicker``, ``<s>@aggTrade`` and ``<s>@depth@100ms`` like any client, on USD-M through
the ``/public`` and ``/market`` routes, plus a 1000-level REST snapshot half-way through).

Statistics, per symbol:

* mid moves: |mid(t + h) - mid(t)| / mid(t) in bp for h = 1, 10, 60 s, t on a 1 s grid, from
  the bookTicker mid sampled every 100 ms; p50 and p90;
* busy and quiet stretches: realised volatility (root of the summed squared 1 s moves) per 30 s
  window, p10 and p90 across windows;
* touch spread: sampled every 100 ms (time-weighted), in ticks (p50, mean) and bp;
* touch size: median notional at the best bid/ask (bookTicker);
* trades: prints per second (every @trade or @aggTrade message is one print), prints per 10 s
  window p10/p50/p90, print size p50/p90/p99 in quote notional;
* diffs: levels per diff p50/p90, updates per diff (u - U + 1) p50, diffs per second;
* depth profile (the snapshot): levels and notional within 1, 5, 10 and 50 bp of the mid,
  averaged over both sides, and how far (bp) 1000 levels reach.

On the simulator's virtual clock (``SimConfig.speed`` > 1) rows are stamped with the event time
(spot's bookTicker, which carries none, with its symbol's latest diff: the simulator sends a
symbol's ticker right after its diff); in real time, with the local receive time, as a capture is.
``bench/sim_calibration.py`` prints the real and simulated figures side by side.
"""

from __future__ import annotations

import asyncio
import bisect
import gzip
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

__all__ = ["REAL_TICKS", "ROWS", "Recording", "real_recordings", "record_client", "stats", "direct_recordings", "table"]

from epochbot.sim.market import SymbolMarket, default_spec

# Binance's ticks (real exchangeInfo): spot BTC/ETH 0.01, USD-M BTCUSDT 0.10, ETHUSDT 0.01.
REAL_TICKS = {
    ("spot", "BTCUSDT"): 0.01,
    ("spot", "ETHUSDT"): 0.01,
    ("spot", "NKNUSDT"): 0.0001,
    ("spot", "BLZETH"): 1e-8,
    ("spot", "LRCBTC"): 1e-8,
    ("spot", "RUNEEUR"): 0.001,
    ("usdm", "BTCUSDT"): 0.1,
    ("usdm", "ETHUSDT"): 0.01,
}


@dataclass
class Recording:
    """What a client received for one symbol: times in seconds, numbers as floats."""

    symbol: str
    tick: float
    tickers: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # t, bid, ask, B, A
    trades: list[tuple[float, float, float]] = field(default_factory=list)  # t, price, qty
    diffs: list[tuple[float, int, int]] = field(default_factory=list)  # t, levels, updates
    snapshot: tuple[list[tuple[float, float]], list[tuple[float, float]]] | None = None
    last_event_s: float | None = None

    def add_frame(self, t: float | None, data: dict) -> None:
        """One market event (the ``data`` of a combined-stream frame). ``t`` None: use the event's time."""
        e = data.get("e")
        event_s = data.get("E")
        if t is None:
            if event_s is not None:
                t = event_s / 1000
                self.last_event_s = t
            elif self.last_event_s is not None:
                t = self.last_event_s
            else:
                return
        if e == "depthUpdate":
            self.diffs.append((t, len(data["b"]) + len(data["a"]), data["u"] - data["U"] + 1))
        elif e in ("trade", "aggTrade"):
            self.trades.append((t, float(data["p"]), float(data["q"])))
        elif "b" in data and "a" in data and "B" in data:  # bookTicker (spot has no "e")
            self.tickers.append((t, float(data["b"]), float(data["a"]), float(data["B"]), float(data["A"])))

    def add_snapshot(self, body: dict) -> None:
        if self.snapshot is None:
            bids = [(float(p), float(q)) for p, q in body["bids"]]
            asks = [(float(p), float(q)) for p, q in body["asks"]]
            self.snapshot = (bids, asks)


def _q(xs: Sequence[float], p: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def stats(rec: Recording) -> dict:
    """The calibration statistics of one symbol's recording (see the module docstring)."""
    out: dict = {"symbol": rec.symbol, "tick": rec.tick}
    tk = rec.tickers
    if len(tk) < 2:
        return out
    times = [x[0] for x in tk]
    t0, t1 = times[0], times[-1]
    out["seconds"] = round(t1 - t0, 1)
    mids, spreads = [], []
    n = int((t1 - t0) / 0.1)
    for i in range(n):
        j = bisect.bisect_right(times, t0 + i * 0.1) - 1
        _, b, a, _, _ = tk[j]
        mids.append((a + b) / 2)
        spreads.append((a - b) / rec.tick)
    for h in (1, 10, 60):
        k = h * 10
        moves = [abs(mids[i + k] - mids[i]) / mids[i] * 1e4 for i in range(0, len(mids) - k, 10)]
        out[f"move_{h}s_p50"] = round(_q(moves, 0.5), 3)
        out[f"move_{h}s_p90"] = round(_q(moves, 0.9), 3)
    one_s = [(mids[i + 10] - mids[i]) / mids[i] * 1e4 for i in range(0, len(mids) - 10, 10)]
    windows = [math.sqrt(sum(x * x for x in one_s[i : i + 30])) for i in range(0, len(one_s) - 29, 30)]
    out["rv_30s_p10"] = round(_q(windows, 0.1), 2)
    out["rv_30s_p90"] = round(_q(windows, 0.9), 2)
    mid = mids[len(mids) // 2]
    out["spread_ticks_p50"] = round(_q(spreads, 0.5), 2)
    out["spread_ticks_mean"] = round(sum(spreads) / len(spreads), 2)
    out["spread_bp_p50"] = round(_q(spreads, 0.5) * rec.tick / mid * 1e4, 4)
    out["touch_notional_p50"] = round(_q([x[3] * x[1] for x in tk] + [x[4] * x[2] for x in tk], 0.5))
    tr = rec.trades
    if tr:
        span = max(t1 - t0, 1e-9)
        inside = [x for x in tr if t0 <= x[0] <= t1]
        out["trades_per_s"] = round(len(inside) / span, 2)
        per10 = Counter(int((x[0] - t0) // 10) for x in inside)
        counts = [per10.get(i, 0) for i in range(int(span // 10))]
        out["trades_10s_p10"] = _q(counts, 0.1)
        out["trades_10s_p50"] = _q(counts, 0.5)
        out["trades_10s_p90"] = _q(counts, 0.9)
        notional = [p * q for _, p, q in inside]
        for p in (0.5, 0.9, 0.99):
            out[f"trade_notional_p{round(p * 100)}"] = round(_q(notional, p), 1)
    else:
        out["trades_per_s"] = 0.0
    if rec.diffs:
        out["diff_levels_p50"] = _q([x[1] for x in rec.diffs], 0.5)
        out["diff_levels_p90"] = _q([x[1] for x in rec.diffs], 0.9)
        out["diff_updates_p50"] = _q([x[2] for x in rec.diffs], 0.5)
        out["diffs_per_s"] = round(len(rec.diffs) / max(rec.diffs[-1][0] - rec.diffs[0][0], 1e-9), 2)
    if rec.snapshot is not None:
        bids, asks = rec.snapshot
        smid = (bids[0][0] + asks[0][0]) / 2
        for bp in (1, 5, 10, 50):
            lim = smid * bp / 1e4
            nb = [(p, q) for p, q in bids if smid - p <= lim]
            na = [(p, q) for p, q in asks if p - smid <= lim]
            out[f"depth_{bp}bp_levels"] = round((len(nb) + len(na)) / 2, 1)
            out[f"depth_{bp}bp_notional"] = round(sum(p * q for p, q in nb + na) / 2)
        far_bid, far_ask = bids[min(999, len(bids) - 1)][0], asks[min(999, len(asks) - 1)][0]
        out["depth_1000_levels_bp"] = round((far_ask - far_bid) / smid * 1e4 / 2, 1)
    return out


# ---------------------------------------------------------------------- a real capture
def real_recordings(path: Path, symbols: list[str] | None = None) -> tuple[str, dict[str, Recording]]:
    """Parse a capture (format v1) into per-symbol recordings, stamped with receive times."""
    opener = gzip.open if path.suffix == ".gz" else open
    recs: dict[str, Recording] = {}
    with opener(path, "rt") as f:
        header = json.loads(next(f))
        market = "usdm" if header.get("venue") == "binance-usdm" else "spot"

        def rec_for(sym: str) -> Recording | None:
            if symbols and sym not in symbols:
                return None
            if sym not in recs:
                recs[sym] = Recording(sym, REAL_TICKS.get((market, sym), 0.01))
            return recs[sym]

        for line in f:
            row = json.loads(line)
            if row["kind"] == "ws":
                frame = json.loads(row["data"])
                data = frame.get("data", frame)
                sym = data.get("s") or frame.get("stream", "").split("@")[0].upper()
                rec = rec_for(sym) if sym else None
                if rec is not None:
                    rec.add_frame(row["ts"], data)
            elif row["kind"] == "rest" and "/depth" in row.get("url", ""):
                sym = row["url"].split("symbol=")[1].split("&")[0]
                rec = rec_for(sym)
                if rec is not None:
                    rec.add_snapshot(json.loads(row["data"]))
    return market, recs


# ---------------------------------------------------------------------- the simulator
def sim_tick(market: str, symbol: str, seed: int = 7) -> float:
    spec = default_spec(market, symbol, seed)
    return spec.tick_units / 10**spec.price_decimals


async def record_client(
    rest: str, ws: str, market: str, symbols: list[str], market_seconds: float, *, virtual: bool
) -> dict[str, Recording]:
    """Subscribe like a client and record ``market_seconds`` of market time per symbol."""
    recs = {s: Recording(s, sim_tick(market, s)) for s in symbols}
    low = [s.lower() for s in symbols]
    if market == "usdm":
        urls = [
            ws + "/public/stream?streams=" + "/".join(f"{s}@depth@100ms/{s}@bookTicker" for s in low),
            ws + "/market/stream?streams=" + "/".join(f"{s}@aggTrade" for s in low),
        ]
        depth_path = "/fapi/v1/depth"
    else:
        urls = [ws + "/stream?streams=" + "/".join(f"{s}@depth@100ms/{s}@bookTicker/{s}@aggTrade" for s in low)]
        depth_path = "/api/v3/depth"
    done = asyncio.Event()

    def clock(sym: str, data: dict) -> float | None:
        return None if virtual else time.time()

    def elapsed(sym: str) -> float:
        rec = recs[sym]
        return rec.tickers[-1][0] - rec.tickers[0][0] if rec.tickers else 0.0

    async with aiohttp.ClientSession() as session:

        async def reader(url: str) -> None:
            async with session.ws_connect(url, max_msg_size=0, heartbeat=None) as conn:
                async for msg in conn:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    frame = json.loads(msg.data)
                    data = frame.get("data", frame)
                    sym = data.get("s")
                    if sym not in recs:
                        continue
                    recs[sym].add_frame(clock(sym, data), data)
                    if all(elapsed(s) >= market_seconds for s in symbols):
                        done.set()
                        return

        async def snapshots() -> None:
            # One 1000-level snapshot per symbol, half-way through (market time).
            while not all(elapsed(s) >= market_seconds / 2 for s in symbols):
                await asyncio.sleep(0.05)
            for s in symbols:
                async with session.get(rest + depth_path, params={"symbol": s, "limit": "1000"}) as r:
                    recs[s].add_snapshot(await r.json())

        tasks = [asyncio.create_task(reader(u)) for u in urls] + [asyncio.create_task(snapshots())]
        try:
            await done.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return recs


def direct_recordings(market: str, symbols: list[str], minutes: float, seed: int = 7) -> dict[str, Recording]:
    """The generator alone (no server, no client): the touch after every 100 ms step, every fill.

    Faster than loopback and the same market, for tuning profiles; loopback is the measurement.
    """
    recs = {}
    for s in symbols:
        spec = default_spec(market, s, seed)
        m = SymbolMarket(spec, seed)
        pu, qu = 10**spec.price_decimals, 10**spec.qty_decimals
        rec = Recording(s, spec.tick_units / pu)
        steps = int(minutes * 600)
        for i in range(steps):
            ev = m.next_depth_event(i * 100)
            t = i / 10
            rec.diffs.append((t, len(ev.bids) + len(ev.asks), ev.last_id - ev.first_id + 1))
            rec.trades.extend((t, tr.price / pu, tr.qty / qu) for tr in ev.trades)
            bb, ba = m.best_bid, m.best_ask
            rec.tickers.append((t, bb / pu, ba / pu, m.bid_levels[bb] / qu, m.ask_levels[ba] / qu))
            if i == steps // 2:
                _, bids, asks = m.snapshot(1000)
                rec.snapshot = ([(p / pu, q / qu) for p, q in bids], [(p / pu, q / qu) for p, q in asks])
        recs[s] = rec
    return recs


# ---------------------------------------------------------------------- output
ROWS = [
    ("move_1s_p50", "mid move 1 s p50 (bp)"),
    ("move_1s_p90", "mid move 1 s p90 (bp)"),
    ("move_10s_p50", "mid move 10 s p50 (bp)"),
    ("move_10s_p90", "mid move 10 s p90 (bp)"),
    ("move_60s_p50", "mid move 60 s p50 (bp)"),
    ("move_60s_p90", "mid move 60 s p90 (bp)"),
    ("rv_30s_p10", "30 s realised vol p10 (bp)"),
    ("rv_30s_p90", "30 s realised vol p90 (bp)"),
    ("spread_ticks_p50", "touch spread p50 (ticks)"),
    ("spread_ticks_mean", "touch spread mean (ticks)"),
    ("spread_bp_p50", "touch spread p50 (bp)"),
    ("touch_notional_p50", "touch size p50 (quote)"),
    ("trades_per_s", "trade prints / s"),
    ("trades_10s_p10", "prints per 10 s p10"),
    ("trades_10s_p90", "prints per 10 s p90"),
    ("trade_notional_p50", "print size p50 (quote)"),
    ("trade_notional_p90", "print size p90 (quote)"),
    ("trade_notional_p99", "print size p99 (quote)"),
    ("diff_levels_p50", "levels per diff p50"),
    ("diff_levels_p90", "levels per diff p90"),
    ("diff_updates_p50", "updates per diff p50"),
    ("diffs_per_s", "diffs / s"),
    ("depth_1bp_levels", "levels within 1 bp (per side)"),
    ("depth_10bp_levels", "levels within 10 bp"),
    ("depth_1bp_notional", "notional within 1 bp"),
    ("depth_5bp_notional", "notional within 5 bp"),
    ("depth_10bp_notional", "notional within 10 bp"),
    ("depth_50bp_notional", "notional within 50 bp"),
    ("depth_1000_levels_bp", "1000 levels reach (bp)"),
]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and abs(v) >= 1000:
        return f"{v:,.0f}"
    if isinstance(v, int) and abs(v) >= 1000:
        return f"{v:,}"
    return str(v)


def table(columns: list[tuple[str, dict]]) -> str:
    """The statistics of several recordings side by side, one row per statistic."""
    names = [c[0] for c in columns]
    width = max(len(label) for _, label in ROWS)
    rows = [" " * width + " | " + " | ".join(f"{n:>16}" for n in names)]
    for key, label in ROWS:
        rows.append(f"{label:<{width}} | " + " | ".join(f"{_fmt(c[1].get(key)):>16}" for c in columns))
    return "\n".join(rows)

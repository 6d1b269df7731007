"""Seeded synthetic Binance USD-M diff-depth workload (shared by the throughput benchmarks).

``generate_usdm_depth(n, seed)`` returns a REST depth snapshot (JSON bytes, 1000 levels a side)
and ``n`` combined-stream ``depthUpdate`` frames (bytes) shaped like ``<sym>@depth@100ms`` on
USD-M: prices on a 0.10 tick printed with 2 decimals ("27123.40"), quantities on a 0.001 step
printed with 3 decimals, deletions as "0.000", and a valid ``U``/``u``/``pu`` chain. Price
changes cluster near a random-walk mid (gaussian offsets in ticks, most mass near the top); the
book never crosses: bids stay at or below the mid, asks above it, and when the mid moves the
levels that would cross are deleted in the same message, as a real venue does.

The exact final book ("truth", integer ticks and lots) is kept in a `Workload` so benchmarks can
check what each implementation ended with. The snapshot reflects the book before message 0 and
carries ``lastUpdateId = U`` of message 0, so message 0 is the bridging diff (``U <= id <= u``).

``write_capture(path, n, seed)`` writes the same workload as a capture file
(``shared/captures/FORMAT.md``): header, ``open`` row, first ``ws`` row, the snapshot as a
``rest`` row, then the other ``ws`` rows; ``ts`` grows by 1 ms a row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import orjson

__all__ = ["Workload", "generate_usdm_depth", "make_workload", "write_capture", "price_str", "qty_str"]

PRICE_DECIMALS = 2  # as printed ("27123.40")
TICK_UNITS = 10  # 0.10 in units of 0.01
QTY_DECIMALS = 3  # lots of 0.001
BASE_TS_MS = 1_760_000_000_000
STREAM = "{}@depth@100ms"
WS_URL = "wss://fstream.binance.com/public/stream?streams={}@depth@100ms"
REST_URL = "https://fapi.binance.com/fapi/v1/depth?symbol={}&limit=1000"


def price_str(ticks: int) -> str:
    """Ticks of 0.10 -> "27123.40"."""
    return f"{ticks // 10}.{ticks % 10}0"


def qty_str(lots: int) -> str:
    """Lots of 0.001 -> "1.234"."""
    return f"{lots // 1000}.{lots % 1000:03d}"


@dataclass
class Workload:
    symbol: str
    snapshot: bytes
    frames: list[bytes]
    truth_bids: dict[int, int]  # final book: price ticks (0.10) -> lots (0.001)
    truth_asks: dict[int, int]
    last_update_id: int  # u of the last frame
    level_updates: int  # price levels carried by all frames
    deletions: int  # of which "0.000"
    exchange_ts_ms: list[int] = field(default_factory=list)  # E of each frame

    def truth_units(self) -> tuple[dict[int, int], dict[int, int]]:
        """The final book in units of 0.01 (price) and 0.001 (qty), the scale a snapshot implies."""
        return (
            {p * TICK_UNITS: q for p, q in self.truth_bids.items()},
            {p * TICK_UNITS: q for p, q in self.truth_asks.items()},
        )

    def truth_strings(self) -> tuple[dict[str, str], dict[str, str]]:
        return (
            {price_str(p): qty_str(q) for p, q in self.truth_bids.items()},
            {price_str(p): qty_str(q) for p, q in self.truth_asks.items()},
        )


def _qty(rng: random.Random) -> int:
    # Mostly small resting sizes, some large ones; always at least one lot.
    r = rng.random()
    if r < 0.70:
        return rng.randint(1, 2_000)
    if r < 0.95:
        return rng.randint(2_000, 50_000)
    return rng.randint(50_000, 900_000)


def _offset(rng: random.Random) -> int:
    # Distance from the top in ticks: gaussian, most mass within a few ticks of the mid.
    if rng.random() < 0.6:
        return int(abs(rng.gauss(0.0, 6.0)))
    return int(abs(rng.gauss(0.0, 60.0)))


def make_workload(n_messages: int, seed: int, symbol: str = "BTCUSDT", levels: tuple[int, int] = (10, 40)) -> Workload:
    rng = random.Random(seed)
    mid = 271_234  # ticks: bids <= mid, asks >= mid + 1
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    # 1000 levels a side, dense near the top, sparser further out.
    p = mid
    while len(bids) < 1000:
        bids[p] = _qty(rng)
        p -= 1 + (rng.random() < 0.3) * rng.randint(1, 3)
    p = mid + 1
    while len(asks) < 1000:
        asks[p] = _qty(rng)
        p += 1 + (rng.random() < 0.3) * rng.randint(1, 3)
    b0, a0 = dict(bids), dict(asks)  # the snapshot: the book before message 0

    first_u = 5_000_000_000 + rng.randint(0, 10**6)
    prev_u = first_u - 1 - rng.randint(1, 50)
    snapshot_id = 0
    frames: list[bytes] = []
    e_list: list[int] = []
    level_updates = 0
    deletions = 0
    stream = STREAM.format(symbol.lower())
    dumps = orjson.dumps

    for i in range(n_messages):
        upd_b: dict[int, int] = {}
        upd_a: dict[int, int] = {}
        # Random-walk mid; levels that would cross the new mid are deleted in this message.
        r = rng.random()
        if r < 0.15:
            step = rng.choice((-3, -2, -1, -1, 1, 1, 2, 3))
            old = mid
            mid += step
            if step > 0:  # asks live at >= old + 1: those now <= mid must go
                for q in range(old + 1, mid + 1):
                    if q in asks:
                        upd_a[q] = 0
            else:  # bids live at <= old: those now > mid must go
                for q in range(mid + 1, old + 1):
                    if q in bids:
                        upd_b[q] = 0
        k = rng.randint(*levels)
        while len(upd_b) + len(upd_a) < k:
            is_bid = rng.random() < 0.5
            off = _offset(rng)
            price = mid - off if is_bid else mid + 1 + off
            side = bids if is_bid else asks
            upd = upd_b if is_bid else upd_a
            if price in upd:
                continue
            if rng.random() < 0.05 and price in side and len(side) > 50:
                upd[price] = 0
            else:
                upd[price] = _qty(rng)
        # Apply to the truth.
        for side, upd in ((bids, upd_b), (asks, upd_a)):
            for price, lots in upd.items():
                if lots:
                    side[price] = lots
                else:
                    side.pop(price, None)
                    deletions += 1
        n_levels = len(upd_b) + len(upd_a)
        level_updates += n_levels
        U = prev_u + 1 + rng.randint(0, 3)  # USD-M: U need not be pu + 1; pu is the chain
        u = U + n_levels + rng.randint(0, 20)
        E = BASE_TS_MS + i - 2
        data = {
            "e": "depthUpdate",
            "E": E,
            "T": E - 1,
            "s": symbol,
            "U": U,
            "u": u,
            "pu": prev_u,
            "b": [[price_str(p), qty_str(q)] for p, q in upd_b.items()],
            "a": [[price_str(p), qty_str(q)] for p, q in upd_a.items()],
        }
        frames.append(dumps({"stream": stream, "data": data}))
        e_list.append(E)
        if i == 0:
            snapshot_id = U
        prev_u = u
    assert max(bids) <= mid < min(asks), "workload generator crossed its own book"
    snap = {
        "lastUpdateId": snapshot_id,
        "E": BASE_TS_MS - 1,
        "T": BASE_TS_MS - 2,
        "bids": [[price_str(p), qty_str(q)] for p, q in sorted(b0.items(), reverse=True)],
        "asks": [[price_str(p), qty_str(q)] for p, q in sorted(a0.items())],
    }
    return Workload(symbol, orjson.dumps(snap), frames, bids, asks, prev_u, level_updates, deletions, e_list)


def generate_usdm_depth(
    n_messages: int, seed: int, symbol: str = "BTCUSDT", levels: tuple[int, int] = (10, 40)
) -> tuple[bytes, list[bytes]]:
    """(snapshot JSON bytes, list of frame bytes); see `make_workload` for the truth book."""
    w = make_workload(n_messages, seed, symbol, levels)
    return w.snapshot, w.frames


def write_capture(path: str, n: int, seed: int, symbol: str = "BTCUSDT") -> Workload:
    """Write the workload as a binance-usdm capture; returns the workload (with its truth)."""
    w = make_workload(n, seed, symbol)
    t0 = BASE_TS_MS / 1000.0
    dumps = orjson.dumps
    with open(path, "wb") as f:
        f.write(
            dumps({"capture": 1, "venue": "binance-usdm", "source": f"bench/workload.py synthetic n={n} seed={seed}"})
            + b"\n"
        )
        row = 0

        def ts() -> float:
            return round(t0 + row / 1000.0, 3)

        f.write(dumps({"ts": ts(), "kind": "open", "url": WS_URL.format(symbol.lower()), "data": ""}) + b"\n")
        for i, frame in enumerate(w.frames):
            row += 1
            f.write(dumps({"ts": ts(), "kind": "ws", "data": frame.decode()}) + b"\n")
            if i == 0:
                row += 1
                f.write(
                    dumps({"ts": ts(), "kind": "rest", "url": REST_URL.format(symbol), "data": w.snapshot.decode()})
                    + b"\n"
                )
    return w

"""Does the default quoter trade, and not lose, on the embedded simulator's flow? (issues 13, 19)

Two measurements, both offline and deterministic (virtual time, seeded markets):

1. The simulator's flow (``epochbot.sim.calibration``, the generator alone): how far the mid
   moves over 1 s, 10 s and 60 s (in basis points, the unit fees are charged in), the touch
   spread in ticks, and public trades per second, for the default symbols at the default rate
   (10 diff events/s per symbol). Since issue 19 this market is calibrated to Binance's
   (``bench/sim_calibration.py``).
2. The real `quoter` strategy (default parameters unless ``--params``) quoting against that
   flow with the simulator's own fill rule (`epochbot.sim.matching.PaperVenue.on_market`: a
   resting order fills at its limit price once the book crosses it) and its maker fee, booked
   through the real `Portfolio`; round trips are judged as the circuit breaker judges them
   (`RiskGate.on_round_trip`: ``breaker_losses`` losing trips within the window trip it).

Prints, per seed and symbol: fills, fills per minute, the longest stretch without a fill,
round trips, losing trips, breaker trips, PnL net of fees, the largest position; per seed, the
fills of both symbols per 40 s window (the demo's test: a fill in every window) and the share of
sliding 40 s windows without one. Run:

    python bench/quoter_flow.py --seconds 300 --seeds 7,1,2,3,4,5,6,8
    python bench/quoter_flow.py --params '{"skew_bps_per_size": 0.05, "max_position_sizes": 10, "size_quote": "150"}'

(the second line is the defaults before issue 19).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec
from epochbot.sim.calibration import direct_recordings, stats
from epochbot.sim.market import SymbolMarket, default_spec
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.portfolio import Portfolio
from epochbot.trading.risk import RiskGate, RiskLimits
from epochbot.trading.strategy import MarketView, get_strategy

RATE = 10  # diff events per second per symbol: the embedded simulator's default


@dataclass
class _Fill:
    symbol: str
    side: str
    qty: int
    price: int


def flow(symbol: str, seed: int, seconds: int, market: str = "usdm") -> dict:
    """The flow's statistics (the same code as bench/sim_calibration.py, on the generator alone)."""
    rec = direct_recordings(market, [symbol], seconds / 60, seed)[symbol]
    s = stats(rec)
    keys = ("move_1s_p50", "move_1s_p90", "move_10s_p50", "move_10s_p90", "move_60s_p50", "move_60s_p90")
    return {
        "symbol": symbol,
        "seed": seed,
        "trades_per_s": s["trades_per_s"],
        "spread_ticks_p50": s["spread_ticks_p50"],
        "spread_bp_p50": s["spread_bp_p50"],
        **{k: s[k] for k in keys},
    }


def windows(fill_times: list[float], seconds: int, width: float = 40.0) -> tuple[list[int], int, int]:
    """(fills per consecutive window, sliding windows (10 s steps) without a fill, sliding windows)."""
    fixed = [sum(1 for t in fill_times if k * width <= t < (k + 1) * width) for k in range(int(seconds // width))]
    starts = range(0, int(seconds - width) + 1, 10)
    empty = sum(1 for w in starts if not any(w <= t < w + width for t in fill_times))
    return fixed, empty, len(starts)


def quote(
    symbol: str,
    seed: int,
    seconds: int,
    params: dict,
    maker_fee_bps: int = 2,
    market: str = "usdm",
    start_s: float = 0.0,
) -> dict:
    """The quoter on ``seconds`` of the market, starting ``start_s`` into the seeded session."""
    spec = default_spec(market, symbol, seed)
    m = SymbolMarket(spec, seed)
    for i in range(int(start_s * RATE)):
        m.next_depth_event(i * 100)
    filters = SymbolFilters(
        symbol,
        spec.price_decimals,
        spec.qty_decimals,
        spec.tick_units,
        spec.step_units,
        spec.min_qty_units,
        0,
        market=market,
    )
    portfolio = Portfolio({symbol: filters})
    gate = RiskGate(RiskLimits(), {symbol: filters})
    strategy = get_strategy("quoter", params)
    codec = UnitCodec(spec.price_decimals, spec.qty_decimals)
    resting: dict[str, tuple[str, int, int]] = {}  # tag -> (side, price, qty)
    fills = trips = losing = breaker_trips = 0
    fill_times: list[float] = []
    max_lots = 0
    last_fill_s, longest_gap_s = 0.0, 0.0
    fee_rate = Fraction(maker_fee_bps, 10_000)
    for i in range(seconds * RATE):
        now_ns = i * 100_000_000
        m.next_depth_event(i * 100)
        # The simulator's fill rule: the book now crosses a resting order -> it fills at its price.
        for tag, (side, price, qty) in list(resting.items()):
            crossed = m.best_ask <= price if side == "BUY" else m.best_bid >= price
            if not crossed:
                continue
            del resting[tag]
            fee = filters.notional(price, qty) * fee_rate
            _, trip = portfolio.apply_fill(symbol, side, qty, price, fee, "", now_ns)
            fills += 1
            fill_times.append(now_ns / 1e9)
            longest_gap_s = max(longest_gap_s, now_ns / 1e9 - last_fill_s)
            last_fill_s = now_ns / 1e9
            if trip is not None:
                trips += 1
                losing += trip.losing
                breaker_trips += gate.on_round_trip(trip, now_ns)
            strategy.on_fill(_Fill(symbol, side, qty, price))
        pos = portfolio.position(symbol)
        max_lots = max(max_lots, abs(pos.qty))
        entry = pos.avg_entry * 10**spec.price_decimals if pos.qty else None
        view = MarketView(
            symbol,
            now_ns,
            codec,
            spec.tick_units,
            m.best_bid,
            m.best_ask,
            position=pos.qty,
            mode=Mode.NORMAL,
            entry_price=entry,
        )
        for intent in strategy.on_book(view):
            if intent.qty:
                resting[intent.tag] = (intent.side, intent.price, intent.qty)
            else:
                resting.pop(intent.tag, None)
        if i % RATE == 0:
            strategy.on_timer(now_ns)
    longest_gap_s = max(longest_gap_s, seconds - last_fill_s)
    pos = portfolio.position(symbol)
    mid = Fraction(m.best_bid + m.best_ask, 2)
    return {
        "symbol": symbol,
        "seed": seed,
        "fills": fills,
        "fills_per_min": round(fills / seconds * 60, 1),
        "longest_no_fill_s": round(longest_gap_s, 1),
        "round_trips": trips,
        "losing_trips": losing,
        "breaker_trips": breaker_trips,
        "pnl_net": f"{float(pos.net_pnl(mid)):.4f}",
        "fees": f"{float(pos.fees):.4f}",
        "position": filters.qty_str(pos.qty),
        "max_position_quote": round(float(filters.notional(m.best_bid, max_lots))),
        "fill_times": fill_times,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--seeds", default="7,1,2,3,4,5,6,8")
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    ap.add_argument("--market", choices=("usdm", "spot"), default="usdm")
    ap.add_argument("--params", default="{}", help="quoter parameters as JSON (default: the shipped defaults)")
    ap.add_argument("--no-flow", action="store_true")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    symbols = args.symbols.split(",")
    params = json.loads(args.params)
    print(
        f"quoter on the simulator's flow: {args.market}, {args.seconds}s virtual, rate {RATE}/s, "
        f"params {params or 'defaults'}"
    )
    if not args.no_flow:
        for symbol in symbols:
            print("flow ", json.dumps(flow(symbol, seeds[0], args.seconds, args.market)))
    totals = {"fills": 0, "round_trips": 0, "losing_trips": 0, "breaker_trips": 0}
    pnl = 0.0
    empty = slides = 0
    for seed in seeds:
        times: list[float] = []
        for symbol in symbols:
            r = quote(symbol, seed, args.seconds, params, market=args.market)
            for key in totals:
                totals[key] += r[key]
            pnl += float(r["pnl_net"])
            times += r.pop("fill_times")
            print("quote", json.dumps(r))
        fixed, no_fill, n = windows(sorted(times), args.seconds)
        empty += no_fill
        slides += n
        print(f"seed {seed}: fills per 40 s window {fixed}, sliding 40 s windows without a fill {no_fill}/{n}")
    print(
        f"total: fills {totals['fills']}, round trips {totals['round_trips']} ({totals['losing_trips']} losing), "
        f"breaker trips {totals['breaker_trips']}, PnL net {pnl:.2f}, 40 s windows without a fill {empty}/{slides}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

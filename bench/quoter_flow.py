"""Does the default quoter make money on the embedded simulator's flow? (issue 13, the demo)

Two measurements, both offline and deterministic (virtual time, seeded markets):

1. The simulator's flow: how far the mid moves over 1 s, 10 s and 60 s (in basis points, the
   unit fees are charged in), the touch spread in ticks, and public trades per second, for the
   default symbols at the default rate (10 diff events/s per symbol).
2. The real `quoter` strategy (default parameters unless ``--params``) quoting against that
   flow with the simulator's own fill rule (`epochbot.sim.matching.MatchingEngine.on_market`: a
   resting order fills at its limit price once the book crosses it) and its maker fee, booked
   through the real `Portfolio`; round trips are judged as the circuit breaker judges them
   (`RiskGate.on_round_trip`: ``breaker_losses`` losing trips within the window trip it).

Prints, per seed and symbol: fills, fills per minute, the longest stretch without a fill,
round trips, losing trips, breaker trips, PnL net of fees. Run:

    python bench/quoter_flow.py --seconds 300 --seeds 7,1,2,3,4
    python bench/quoter_flow.py --params '{"half_spread_bps": 0, "exit_edge_bps": -1}'   # the old behaviour
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec
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
    spec = default_spec(market, symbol, seed)
    m = SymbolMarket(spec, seed)
    mids, spreads, trades = [], [], 0
    for i in range(seconds * RATE):
        ev = m.next_depth_event(i * 100)
        trades += len(ev.trades)
        mids.append((m.best_bid + m.best_ask) / 2)
        spreads.append((m.best_ask - m.best_bid) // m.tick)
    out = {
        "symbol": symbol,
        "seed": seed,
        "trades_per_s": round(trades / seconds, 1),
        "spread_ticks_p50": statistics.median(spreads),
    }
    for horizon in (1, 10, 60):
        step = horizon * RATE
        moves = sorted(abs(mids[i + step] - mids[i]) / mids[i] * 1e4 for i in range(0, len(mids) - step, RATE))
        if moves:
            out[f"move_{horizon}s_bps_p50"] = round(moves[len(moves) // 2], 2)
            out[f"move_{horizon}s_bps_p90"] = round(moves[int(len(moves) * 0.9)], 2)
    return out


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
    ap.add_argument("--seeds", default="7,1,2,3,4")
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    ap.add_argument("--params", default="{}", help="quoter parameters as JSON (default: the shipped defaults)")
    ap.add_argument("--no-flow", action="store_true")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    symbols = args.symbols.split(",")
    params = json.loads(args.params)
    print(f"quoter on the simulator's flow: {args.seconds}s virtual, rate {RATE}/s, params {params or 'defaults'}")
    if not args.no_flow:
        for symbol in symbols:
            print("flow ", json.dumps(flow(symbol, seeds[0], args.seconds)))
    total_breakers = total_fills = 0
    for seed in seeds:
        for symbol in symbols:
            r = quote(symbol, seed, args.seconds, params)
            total_breakers += r["breaker_trips"]
            total_fills += r["fills"]
            print("quote", json.dumps(r))
    print(f"total: fills {total_fills}, breaker trips {total_breakers}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

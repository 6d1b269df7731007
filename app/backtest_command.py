"""`epochbot backtest`: a strategy over a capture, or over a seeded simulator session.

The strategy code is the live one (`core.trading`); fills are simulated (takers at the opposite
best, makers when a public trade prints through the quote). The report gives PnL, fees, trades,
drawdown, time in each trading mode, and a digest that two identical runs share.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile


def add_parser(sub) -> None:
    p = sub.add_parser("backtest", help="run a strategy over a capture or a seeded simulator session")
    p.add_argument("capture", nargs="?", help="capture file; omit to record a seeded simulator session")
    p.add_argument("--strategy", required=True, help="strategy name (quoter, momentum)")
    p.add_argument("--params", default="{}", help='strategy parameters as JSON, e.g. \'{"half_spread_ticks": 3}\'')
    p.add_argument("--seconds", type=float, default=300.0, help="length of the seeded session (default 300)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--market", choices=("usdm", "spot"), default="usdm")
    p.add_argument("--symbols", default="BTCUSDT", help="symbols of the seeded session (comma separated)")
    p.add_argument("--taker-fee-bps", type=int, default=4)
    p.add_argument("--maker-fee-bps", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.capture import CaptureFormatError
    from core.trading.backtest import FillModel, run_backtest_capture
    from core.trading.strategy import StrategyError, get_strategy

    try:
        params = json.loads(args.params)
        if not isinstance(params, dict):
            raise ValueError("must be a JSON object")
        strategy = get_strategy(args.strategy, params)
    except (ValueError, StrategyError) as exc:
        print(f"backtest: --strategy/--params: {exc}", file=sys.stderr)
        return 2
    fills = FillModel(taker_fee_bps=args.taker_fee_bps, maker_fee_bps=args.maker_fee_bps)
    path = args.capture
    if path is None:
        from core.sim.recording import record_session

        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        tmp = tempfile.NamedTemporaryFile(prefix="epochbot-session-", suffix=".jsonl", delete=False)
        with tmp:
            record_session(tmp, market=args.market, symbols=symbols, seed=args.seed, seconds=args.seconds)
        path = tmp.name
    try:
        report = run_backtest_capture(path, strategy, fills)
    except FileNotFoundError:
        print(f"backtest: no such capture file: {path}", file=sys.stderr)
        return 2
    except CaptureFormatError as exc:
        print(f"backtest: {path}: {exc}", file=sys.stderr)
        return 2
    out = report.as_dict()
    out["digest"] = report.digest()
    out["source"] = args.capture or f"seeded session seed={args.seed} seconds={args.seconds:g} market={args.market}"
    if args.json:
        print(json.dumps(out))
    else:
        print(f"backtest {args.strategy} over {out['source']}")
        for key in ("pnl", "realized", "unrealized", "fees", "max_drawdown", "trades", "round_trips", "orders_placed"):
            print(f"  {key:<14} {out[key]}")
        print(f"  {'positions':<14} {out['positions']}")
        print(f"  {'time in mode':<14} " + ", ".join(f"{k} {v / 1000:.1f}s" for k, v in out["mode_time_ms"].items()))
        print(f"  {'digest':<14} {out['digest']}")
    return 0

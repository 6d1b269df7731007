"""`epochbot backtest`: a strategy over a capture, or over a seeded simulator session.

The strategy code is the live one (`epochbot.trading`); fills are simulated (takers at the opposite
best, makers when a public trade prints through the quote). The report (text by default,
``--json`` for one object) gives, in the quote asset and rounded for reading: net PnL, realised,
unrealised, fees; trades, round trips, win rate, max drawdown, Sharpe; final positions in base
units; a per-symbol table; every refusal reason with its count; time in each trading mode; an
equity curve drawn in the terminal; and a digest that two identical runs share.

``--csv DIR`` writes ``trades.csv`` (every fill), ``round_trips.csv``, ``equity.csv`` (the net
PnL at every change) and ``symbols.csv``. A progress bar (rich) goes to stderr when it is a
terminal. Bad arguments exit 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

EXIT_USAGE = 2
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


def add_parser(sub) -> None:
    p = sub.add_parser("backtest", help="run a strategy over a capture or a seeded simulator session")
    p.add_argument("capture", nargs="?", help="capture file; omit to record a seeded simulator session")
    p.add_argument("--strategy", required=True, help="strategy name (quoter, momentum)")
    p.add_argument("--params", default="{}", help="strategy parameters as JSON, e.g. '{\"half_spread_ticks\": 3}'")
    p.add_argument("--seconds", default="300", help="length of the seeded session (default 300)")
    p.add_argument("--seed", type=int, default=7, help="simulator seed (default 7)")
    p.add_argument("--market", choices=("usdm", "spot"), default="usdm")
    p.add_argument(
        "--symbols", default="BTCUSDT", help="symbols of the seeded session (comma separated, e.g. BTCUSDT,ETHUSDT)"
    )
    p.add_argument("--taker-fee-bps", default="4", help="taker fee in basis points (default 4)")
    p.add_argument("--maker-fee-bps", default="2", help="maker fee in basis points (default 2)")
    p.add_argument(
        "--csv",
        dest="csv_dir",
        default=None,
        metavar="DIR",
        help="also write trades, round trips, equity and per-symbol CSV files here",
    )
    p.add_argument("--no-chart", action="store_true", help="text report without the equity curve")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


class UsageError(ValueError):
    """A bad argument: one line, exit 2."""


def _non_negative(name: str, text: str) -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise UsageError(f"{name}: {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise UsageError(f"{name}: must be a finite number >= 0, got {text}")
    return value


def validate(args: argparse.Namespace) -> tuple[Decimal, Decimal, float, list[str]]:
    taker = _non_negative("--taker-fee-bps", args.taker_fee_bps)
    maker = _non_negative("--maker-fee-bps", args.maker_fee_bps)
    seconds = _non_negative("--seconds", args.seconds)
    if seconds == 0:
        raise UsageError("--seconds: must be > 0")
    if seconds > 7 * 86_400:
        raise UsageError("--seconds: at most 604800 (one week) of seeded session")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        raise UsageError("--symbols: give at least one symbol, e.g. BTCUSDT")
    for symbol in symbols:
        if symbol != symbol.upper() and _SYMBOL.match(symbol.upper()):
            raise UsageError(f"--symbols: {symbol!r}: symbols are upper case, e.g. {symbol.upper()}")
        if not _SYMBOL.match(symbol):
            raise UsageError(f"--symbols: {symbol!r} is not a symbol (2-30 characters A-Z and 0-9, e.g. BTCUSDT)")
    if len(set(symbols)) != len(symbols):
        raise UsageError("--symbols: a symbol is listed twice")
    if args.capture is not None:
        path = Path(args.capture)
        if path.is_dir():
            raise UsageError(f"{args.capture} is a directory: give one capture file (JSON lines)")
        if not path.exists():
            raise UsageError(f"no such capture file: {args.capture}")
    if args.csv_dir is not None:
        out = Path(args.csv_dir)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--csv: {args.csv_dir} exists and is not a directory")
    return taker, maker, float(seconds), symbols


def run(args: argparse.Namespace) -> int:
    from epochbot.model.capture import CaptureFormatError
    from epochbot.offline.backtest import FillModel, run_backtest_capture
    from epochbot.trading.strategy import StrategyError, get_strategy

    try:
        taker, maker, seconds, symbols = validate(args)
        try:
            params = json.loads(args.params)
        except ValueError as exc:
            raise UsageError(f"--params: not JSON: {exc}") from None
        if not isinstance(params, dict):
            raise UsageError("--params: must be a JSON object")
        try:
            strategy = get_strategy(args.strategy, params)
        except (ValueError, StrategyError) as exc:
            raise UsageError(f"--strategy/--params: {exc}") from None
    except UsageError as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fills = FillModel(taker_fee_bps=taker, maker_fee_bps=maker)
    path = args.capture
    tmp_path = None
    with _Progress(enabled=sys.stderr.isatty() and not args.json) as progress:
        if path is None:
            from epochbot.sim.recording import record_session

            progress.phase("recording seeded session")
            tmp = tempfile.NamedTemporaryFile(prefix="epochbot-session-", suffix=".jsonl", delete=False)
            with tmp:
                try:
                    record_session(tmp, market=args.market, symbols=symbols, seed=args.seed, seconds=seconds)
                except (ValueError, KeyError) as exc:
                    os.unlink(tmp.name)
                    print(f"backtest: seeded session: {exc}", file=sys.stderr)
                    return EXIT_USAGE
            path = tmp_path = tmp.name
        progress.phase("backtest")
        try:
            report = run_backtest_capture(path, strategy, fills, progress=progress.update)
        except FileNotFoundError:
            print(f"backtest: no such capture file: {path}", file=sys.stderr)
            return EXIT_USAGE
        except IsADirectoryError:
            print(f"backtest: {path} is a directory: give one capture file (JSON lines)", file=sys.stderr)
            return EXIT_USAGE
        except CaptureFormatError as exc:
            print(f"backtest: {path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except UnicodeDecodeError as exc:
            print(f"backtest: {path}: not a capture (binary data: {exc.reason})", file=sys.stderr)
            return EXIT_USAGE
        finally:
            if tmp_path is not None:
                os.unlink(tmp_path)
    out = report.as_dict()
    out["digest"] = report.digest()
    out["source"] = (
        args.capture
        or f"seeded session seed={args.seed} seconds={seconds:g} market={args.market} symbols={','.join(symbols)}"
    )
    if args.csv_dir is not None:
        try:
            written = write_csv(report, Path(args.csv_dir))
        except OSError as exc:
            print(f"backtest: --csv: {exc.strerror or exc}: {args.csv_dir}", file=sys.stderr)
            return 1
        out["csv"] = [str(p) for p in written]
    if args.json:
        print(json.dumps(out))
    else:
        print_report(args.strategy, report, out, chart=not args.no_chart)
    return 0


# ------------------------------------------------------------------------------ progress


class _Progress:
    """A rich progress bar on stderr (only on a terminal); a no-op otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            bar = self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )
            bar.__enter__()
        return self

    def phase(self, name: str) -> None:
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(name, total=None)

    def update(self, done: int, total: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total or None)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


# ------------------------------------------------------------------------------ output


def _r(value, places: int = 2) -> str:
    """Round a Decimal (or decimal string) for reading; tiny non-zero amounts keep their digits."""
    if value is None:
        return "n/a"
    d = Decimal(str(value))
    q = d.quantize(Decimal(1).scaleb(-places))
    if q == 0 and d != 0:
        return f"{d.normalize():f}"
    return f"{q:f}"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def print_report(strategy: str, report, out: dict, *, chart: bool = True, file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, highlight=False, soft_wrap=False, width=max(100, Console().width))
    q = report.quote_asset or "quote"
    st = report.stats()
    console.print(f"backtest [bold]{strategy}[/] over {out['source']}")
    span = (report.end_ns - report.start_ns) / 1e9 if report.end_ns and report.start_ns else 0.0
    console.print(f"  {report.events} events over {span:.0f} s")
    summary = Table(show_header=False, box=None, padding=(0, 2))
    summary.add_column(justify="left")
    summary.add_column(justify="right")
    rows = [
        ("net PnL", f"{_r(report.pnl)} {q}"),
        ("realised", f"{_r(report.realized)} {q}"),
        ("unrealised", f"{_r(report.unrealized)} {q}"),
        ("fees", f"{_r(report.fees)} {q}"),
        (
            "max drawdown",
            f"{_r(st.max_drawdown)} {q}"
            + (f" at {_iso(st.max_drawdown_at_ns)[11:19]}" if st.max_drawdown_at_ns else ""),
        ),
        ("trades (fills)", str(report.trades)),
        ("round trips", f"{st.round_trips} ({st.wins} won, {st.losses} lost)"),
        ("win rate", "n/a" if st.win_rate is None else f"{_r(st.win_rate * 100, 1)} %"),
        ("best / worst trip", "n/a" if st.best_trip is None else f"{_r(st.best_trip)} / {_r(st.worst_trip)} {q}"),
        (
            "Sharpe (annualised)",
            "n/a (too few periods or no variation)"
            if st.sharpe is None
            else f"{st.sharpe} ({st.sharpe_period_s} s periods)",
        ),
        ("orders placed", str(report.orders_placed)),
        ("time in mode", ", ".join(f"{k} {v / 1e9:.1f} s" for k, v in report.mode_time_ns.items()) or "n/a"),
    ]
    for key, value in rows:
        summary.add_row(key, value)
    console.print(summary)

    positions = report.position_strings()
    console.print("  positions: " + (", ".join(f"{s} {v}" for s, v in positions.items()) or "none"))

    per = report.per_symbol()
    if per:
        table = Table(title=f"per symbol ({q})", title_justify="left")
        for col in ("symbol", "fills", "volume", "round trips", "win rate", "fees", "net PnL", "position"):
            table.add_column(col, justify="left" if col == "symbol" else "right")
        for row in per:
            table.add_row(
                row["symbol"],
                str(row["fills"]),
                _r(row["volume"]),
                str(row["round_trips"]),
                "n/a" if row["win_rate"] is None else f"{_r(row['win_rate'] * 100, 1)} %",
                _r(row["fees"]),
                _r(row["net_pnl"]),
                row["position"],
            )
        console.print(table)

    refusals = sorted(report.refusals.items(), key=lambda kv: (-kv[1], kv[0]))
    if refusals:
        console.print(f"  refusals ({sum(v for _, v in refusals)}):")
        for reason, count in refusals:
            console.print(f"    {count:>8}  {reason}")
    else:
        console.print("  refusals: none")
    if chart:
        for line in equity_chart(report.equity, width=min(100, max(40, console.width - 20)), height=10, unit=q):
            console.print(line, markup=False)
    console.print(f"  digest {out['digest']}")
    if out.get("csv"):
        console.print("  csv: " + ", ".join(out["csv"]))


def equity_chart(equity, *, width: int = 72, height: int = 10, unit: str = "") -> list[str]:
    """The equity curve as text: one column per time bucket (last value in it), rows from the
    maximum down to the minimum, with the axis values on the left and the zero line marked."""
    if len(equity) < 2:
        return ["  equity: not enough points for a curve"]
    t0, t1 = equity[0][0], equity[-1][0]
    span = max(1, t1 - t0)
    cols: list[float | None] = [None] * width
    for ts, value in equity:  # floats only for drawing: the numbers printed come from Decimals
        col = min(width - 1, int((ts - t0) * width / span))
        cols[col] = float(value)
    last = float(equity[0][1])
    values: list[float] = []  # every column, an empty one carrying the value before it
    for v in cols:
        last = last if v is None else v
        values.append(last)
    lo, hi = min(min(values), 0.0), max(max(values), 0.0)
    if math.isclose(lo, hi):
        hi = lo + 1.0
    step = (hi - lo) / (height - 1)
    zero_row = round((hi - 0.0) / step)
    rows = []
    for r in range(height):
        level_hi = hi - (r - 0.5) * step
        level_lo = hi - (r + 0.5) * step
        chars = []
        for v in values:
            if level_lo < v <= level_hi or (r == height - 1 and v <= level_hi and v >= lo):
                chars.append("█" if v >= 0 else "▒")
            elif r == zero_row:
                chars.append("─")
            else:
                chars.append(" ")
        label = hi - r * step
        rows.append(f"  {label:>12.4f} │{''.join(chars)}")
    first, final = _iso(t0)[11:19], _iso(t1)[11:19]
    rows.append(f"  {'':>12} └{first}{' ' * max(1, width - len(first) - len(final))}{final}")
    return [f"  equity (net PnL, {unit})", *rows]


def write_csv(report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    filters = report.filters
    quote = report.quote_asset
    trades = out / "trades.csv"
    with open(trades, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "time",
                "ts_ns",
                "symbol",
                "side",
                "qty",
                "price",
                "notional",
                "fee",
                "fee_asset",
                "maker",
                "client_order_id",
                "trade_id",
            ]
        )
        for f in report.fills:
            spec = filters.get(f.symbol)
            qty = spec.qty_str(f.qty) if spec else str(f.qty)
            price = spec.price_str(f.price) if spec else str(f.price)
            notional = format(Decimal(qty) * Decimal(price), "f")
            w.writerow(
                [
                    _iso(f.ts_ns),
                    f.ts_ns,
                    f.symbol,
                    f.side,
                    qty,
                    price,
                    notional,
                    format(Decimal(f.fee), "f"),
                    f.fee_asset or quote,
                    "true" if f.is_maker else "false",
                    f.client_order_id,
                    f.trade_id,
                ]
            )
    trips = out / "round_trips.csv"
    from epochbot.trading.money import decimal_str

    with open(trips, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["opened", "closed", "symbol", "pnl", "won"])
        for t in report.trips:
            w.writerow(
                [
                    _iso(t.opened_ns) if t.opened_ns else "",
                    _iso(t.closed_ns),
                    t.symbol,
                    decimal_str(t.pnl, 18),
                    "true" if t.pnl > 0 else "false",
                ]
            )
    equity = out / "equity.csv"
    with open(equity, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "ts_ns", f"net_pnl_{quote or 'quote'}"])
        for ts, value in report.equity:
            w.writerow([_iso(ts), ts, decimal_str(value, 18)])
    symbols = out / "symbols.csv"
    with open(symbols, "w", newline="") as fh:
        w = csv.writer(fh)
        cols = ["symbol", "fills", "volume", "round_trips", "win_rate", "fees", "net_pnl", "position"]
        w.writerow(cols)
        for row in report.per_symbol():
            w.writerow(
                [
                    "" if row[c] is None else (format(row[c], "f") if isinstance(row[c], Decimal) else row[c])
                    for c in cols
                ]
            )
    return [trades, trips, equity, symbols]

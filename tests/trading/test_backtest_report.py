"""Backtest statistics and the `backtest` command's report, CSV export and argument errors.

The statistics are recomputed here from the exported CSV files (the fills and the equity series)
with independent code, so a wrong formula in the product cannot agree with itself.
"""

from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from fractions import Fraction

import pytest

from epochbot.app import cli
from epochbot.app.commands.backtest import equity_chart
from epochbot.offline.backtest import FillModel, run_backtest
from epochbot.trading.stats import max_drawdown, sharpe
from tests.trading.test_backtest import FILTERS, synthetic_market


def read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_json_report_carries_statistics_equal_to_the_independent_ones(tmp_path, capsys):
    code = cli.main(
        [
            "backtest",
            "--strategy",
            "quoter",
            "--seconds",
            "90",
            "--seed",
            "3",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            # One size at most: every exit closes a round trip (the default ladder of up to 60 sizes
            # is rarely flat again within 90 s of the calibrated market).
            "--params",
            '{"max_position_sizes": 1}',
            "--csv",
            str(tmp_path),
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    trades, equity, trips, symbols = (
        read(tmp_path / f) for f in ("trades.csv", "equity.csv", "round_trips.csv", "symbols.csv")
    )
    assert code == 0 and trips, "the seeded run should complete round trips"

    peak, worst = Decimal(0), Decimal(0)
    for row in equity:
        value = Decimal(row["net_pnl_USDT"])
        peak, worst = max(peak, value), max(worst, max(peak, value) - value)
    stats = out["statistics"]
    assert Decimal(stats["max_drawdown"]) == worst
    assert out["trades"] == len(trades)
    assert stats["round_trips"] == len(trips) == out["round_trips"]
    wins = sum(1 for t in trips if t["won"] == "true")
    assert Decimal(stats["win_rate"]) == (Decimal(wins) / len(trips)).quantize(Decimal("0.0001"))
    assert Decimal(equity[-1]["net_pnl_USDT"]) == Decimal(out["pnl"])

    # Fees and net PnL per symbol from the trade list.
    for row in symbols:
        mine = [t for t in trades if t["symbol"] == row["symbol"]]
        fees = sum(Decimal(t["fee"]) for t in mine)
        assert int(row["fills"]) == len(mine) and Decimal(row["fees"]) == fees
        cash = sum((-1 if t["side"] == "BUY" else 1) * Decimal(t["notional"]) for t in mine)
        if Decimal(row["position"]) == 0:
            assert Decimal(row["net_pnl"]) == cash - fees
    assert sum(Decimal(r["fees"]) for r in symbols) == Decimal(out["fees"])
    # Positions in base units, every symbol.
    assert set(out["positions"]) == {"BTCUSDT", "ETHUSDT"} and all(
        "." in v or v == "0" for v in out["positions"].values()
    )


def test_sharpe_is_the_annualised_mean_over_the_sample_deviation_of_per_period_changes():
    second = 1_000_000_000
    equity = [
        (0, Fraction(0)),
        (1 * second, Fraction(1)),
        (2 * second, Fraction(3)),
        (3 * second, Fraction(2)),
        (4 * second, Fraction(6)),
    ]
    changes = [1.0, 2.0, -1.0, 4.0]
    mean = sum(changes) / 4
    sd = math.sqrt(sum((c - mean) ** 2 for c in changes) / 3)

    got = sharpe(equity, 1)

    assert float(got) == pytest.approx(mean / sd * math.sqrt(365 * 86400), rel=1e-3)
    assert max_drawdown(equity) == (Fraction(1), 3 * second)


def test_refusals_are_counted_without_a_cap():
    # A strategy that asks for the impossible on every view: every ask is refused.
    from epochbot.trading.strategy import OrderIntent
    from tests.trading.test_backtest import Scripted

    class Greedy(Scripted):
        def on_book(self, view):
            return [OrderIntent("BTCUSDT", "BUY", 1, view.best_bid, tif="GTC", reduce_only=True)]

    report = run_backtest(synthetic_market(steps=1500), Greedy(), FillModel(), filters=FILTERS)

    assert sum(report.refusals.values()) > 1000


def test_the_text_report_is_rounded_with_currency_positions_refusals_and_a_curve(capsys):
    code = cli.main(["backtest", "--strategy", "quoter", "--seconds", "60", "--seed", "3"])
    text = capsys.readouterr().out

    assert code == 0
    assert "net PnL" in text and " USDT" in text and "win rate" in text and "max drawdown" in text and "Sharpe" in text
    assert "positions: BTCUSDT " in text and "refusals" in text and "equity (net PnL, USDT)" in text
    assert "per symbol (USDT)" in text
    assert "{" not in text  # no Python dicts


def test_the_equity_chart_spans_the_values_and_marks_the_zero_line():
    second = 1_000_000_000
    lines = equity_chart(
        [(0, Fraction(0)), (5 * second, Fraction(-2)), (10 * second, Fraction(1))], width=20, height=5, unit="USDT"
    )

    assert lines[0] == "  equity (net PnL, USDT)"
    assert "1.0000" in lines[1] and "-2.0000" in lines[5] and "─" in "".join(lines)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seconds", "-5"], "--seconds"),
        (["--seconds", "nan"], "--seconds"),
        (["--taker-fee-bps", "-1"], "--taker-fee-bps"),
        (["--maker-fee-bps", "x"], "--maker-fee-bps"),
        (["--symbols", "btcusdt"], "upper case"),
        (["--symbols", "BTC/USDT"], "not a symbol"),
        (["--symbols", "BTCUSDT,BTCUSDT"], "twice"),
        (["--params", "[1]"], "--params"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    code = cli.main(["backtest", "--strategy", "quoter", *argv])
    err = capsys.readouterr().err

    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_a_directory_or_a_missing_file_is_a_clear_error(tmp_path, capsys):
    codes = [
        cli.main(["backtest", str(tmp_path), "--strategy", "quoter"]),
        cli.main(["backtest", str(tmp_path / "nope.jsonl"), "--strategy", "quoter"]),
    ]
    err = capsys.readouterr().err

    assert codes == [2, 2] and "is a directory" in err and "no such capture file" in err and "Traceback" not in err

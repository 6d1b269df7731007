"""Backtest statistics, exact where money is involved (Decimal), from an equity series and trips.

* Equity is the portfolio's net PnL (realised + unrealised at the mid + funding - quote fees) in
  the quote asset; the series holds one point per change, so the maximum drawdown computed from
  it is the largest fall from a running peak at any event.
* A round trip is flat -> flat (or a flip); it wins when its PnL net of fees is > 0.
* Sharpe: the equity is sampled on a fixed grid (``period_s``, the last value at or before each
  grid point), the per-period PnL changes give mean / sample standard deviation, annualised by
  sqrt(periods per 365-day year) (crypto trades around the clock). None with fewer than two
  periods or no variation. PnL-based (there is no capital base), so compare it between runs of
  the same size, not with equity-fund Sharpe ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import pairwise

from epochbot.trading.money import to_decimal

__all__ = ["EquityStats", "max_drawdown", "sharpe", "summarise"]

YEAR_S = 365 * 86_400


@dataclass(frozen=True, slots=True)
class EquityStats:
    max_drawdown: Decimal
    max_drawdown_at_ns: int
    peak: Decimal
    trough: Decimal
    sharpe: Decimal | None
    sharpe_period_s: int
    win_rate: Decimal | None  # 0..1
    wins: int
    losses: int
    round_trips: int
    best_trip: Decimal | None
    worst_trip: Decimal | None


def max_drawdown(equity: Sequence[tuple[int, Fraction]]) -> tuple[Fraction, int]:
    """(largest peak-to-trough fall, when it was reached). The start (0) counts as a peak."""
    peak = Fraction(0)
    worst, at = Fraction(0), 0
    for ts, value in equity:
        peak = max(peak, value)
        if peak - value > worst:
            worst, at = peak - value, ts
    return worst, at


def _grid(equity: Sequence[tuple[int, Fraction]], period_ns: int) -> list[Fraction]:
    if not equity:
        return []
    start, end = equity[0][0], equity[-1][0]
    out, i, value = [], 0, Fraction(0)
    t = start
    while t <= end:
        while i < len(equity) and equity[i][0] <= t:
            value = equity[i][1]
            i += 1
        out.append(value)
        t += period_ns
    if out and out[-1] != equity[-1][1]:
        out.append(equity[-1][1])
    return out


def sharpe(equity: Sequence[tuple[int, Fraction]], period_s: int) -> Decimal | None:
    samples = _grid(equity, period_s * 1_000_000_000)
    changes = [b - a for a, b in pairwise(samples)]
    n = len(changes)
    if n < 2:
        return None
    mean = sum(changes, Fraction(0)) / n
    var = sum(((c - mean) ** 2 for c in changes), Fraction(0)) / (n - 1)
    if var == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 28
        ratio = to_decimal(mean, 20) / to_decimal(var, 28).sqrt()
        return (ratio * (Decimal(YEAR_S) / Decimal(period_s)).sqrt()).quantize(Decimal("0.01"))


def summarise(
    equity: Sequence[tuple[int, Fraction]], trip_pnls: Sequence[Fraction], period_s: int | None = None
) -> EquityStats:
    dd, at = max_drawdown(equity)
    values = [v for _, v in equity] or [Fraction(0)]
    if period_s is None:
        span_s = (equity[-1][0] - equity[0][0]) / 1e9 if len(equity) > 1 else 0
        period_s = 60 if span_s >= 3600 else 1
    wins = sum(1 for p in trip_pnls if p > 0)
    n = len(trip_pnls)
    return EquityStats(
        max_drawdown=to_decimal(dd, 18),
        max_drawdown_at_ns=at,
        peak=to_decimal(max(max(values), Fraction(0)), 18),
        trough=to_decimal(min(min(values), Fraction(0)), 18),
        sharpe=sharpe(equity, period_s),
        sharpe_period_s=period_s,
        win_rate=(Decimal(wins) / Decimal(n)).quantize(Decimal("0.0001")) if n else None,
        wins=wins,
        losses=n - wins,
        round_trips=n,
        best_trip=to_decimal(max(trip_pnls), 18) if n else None,
        worst_trip=to_decimal(min(trip_pnls), 18) if n else None,
    )

"""Positions and PnL per symbol, exact: lots signed, average entry as a `Fraction`.

Average-cost accounting: buying into a long (or selling into a short) moves the average entry
to the quantity-weighted mean; reducing realises ``(exit - entry) * closed`` on the closed part;
crossing through zero closes the old position entirely and opens the remainder at the fill
price. Fees in the quote asset are accumulated separately (``fees``) and subtracted in
``net_pnl``; fees charged in another asset (BNB, or the base asset on spot buys) are kept per
asset in ``other_fees`` and *not* converted (there is no price for them here).

A *round trip* is the span from a flat position until it is flat again (or flips); its PnL
(realised minus quote fees) feeds the circuit breaker.

USD-M funding: at each settlement the position pays ``qty * mark * rate`` (longs pay a
positive rate, shorts receive it). Spot positions have no funding; settling one is an error.

The identity that the backtest checks: for every symbol,
``realized + unrealized(mark) == -sum(signed fill notional) + qty * mark`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from epochbot.model.records import FundingRecord
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.money import as_fraction, decimal_str
from epochbot.views.snapshot import PositionView

__all__ = ["FundingRecord", "Portfolio", "Position", "RoundTrip"]


@dataclass(frozen=True, slots=True)
class RoundTrip:
    symbol: str
    opened_ns: int
    closed_ns: int
    pnl: Fraction  # realised minus quote fees over the trip

    @property
    def losing(self) -> bool:
        return self.pnl < 0


@dataclass(slots=True)
class Position:
    symbol: str
    filters: SymbolFilters
    qty: int = 0  # signed lots
    avg_entry: Fraction = Fraction(0)  # price (quote per base), exact
    realized: Fraction = Fraction(0)
    fees: Fraction = Fraction(0)  # quote-asset fees paid
    funding: Fraction = Fraction(0)
    other_fees: dict[str, Fraction] = field(default_factory=dict)  # asset -> amount
    cash_flow: Fraction = Fraction(0)  # -sum(signed notional): the reconciliation check
    trip_opened_ns: int = 0
    trip_pnl: Fraction = Fraction(0)
    fills: int = 0

    def unrealized(self, mark_units: int | Fraction) -> Fraction:
        mark = Fraction(mark_units) / Fraction(10**self.filters.price_decimals)
        return (mark - self.avg_entry) * self.filters.qty(self.qty)

    def net_pnl(self, mark_units: int | Fraction | None = None) -> Fraction:
        """Realised + unrealised + funding - quote fees."""
        total = self.realized + self.funding - self.fees
        if mark_units is not None and self.qty:
            total += self.unrealized(mark_units)
        return total


class Portfolio:
    """Positions of every symbol; mutated only by the strategy loop."""

    def __init__(self, filters: dict[str, SymbolFilters]) -> None:
        self.filters = filters
        self.positions: dict[str, Position] = {}
        self.funding_history: list[FundingRecord] = []

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol, self.filters[symbol])
        return pos

    def qty(self, symbol: str) -> int:
        pos = self.positions.get(symbol)
        return pos.qty if pos else 0

    def apply_fill(
        self,
        symbol: str,
        side: str,
        qty: int,
        price: int,
        fee: Decimal | Fraction | int = 0,
        fee_asset: str = "",
        ts_ns: int = 0,
    ) -> tuple[Fraction, RoundTrip | None]:
        """Book one execution. Returns (realised PnL minus quote fee of this fill, finished trip)."""
        if qty <= 0:
            raise ValueError(f"fill quantity must be positive, got {qty}")
        pos = self.position(symbol)
        f = pos.filters
        signed = qty if side == "BUY" else -qty
        px = f.price(price)
        fee_q = Fraction(0)
        if fee:
            if fee_asset:
                pos.other_fees[fee_asset] = pos.other_fees.get(fee_asset, Fraction(0)) + as_fraction(fee)
            else:
                fee_q = as_fraction(fee)
                pos.fees += fee_q
        pos.cash_flow -= f.notional(price, signed)
        pos.fills += 1
        if pos.qty == 0:
            pos.trip_opened_ns = ts_ns
            pos.trip_pnl = Fraction(0)
        realized = Fraction(0)
        old = pos.qty
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            # Opening or adding: weighted average entry.
            pos.avg_entry = (pos.avg_entry * abs(old) + px * abs(signed)) / abs(new)
        else:
            closed = min(abs(signed), abs(old))
            direction = 1 if old > 0 else -1
            realized = (px - pos.avg_entry) * f.qty(closed) * direction
            if abs(signed) > abs(old):
                pos.avg_entry = px  # flipped: the remainder opens at the fill price
            elif new == 0:
                pos.avg_entry = Fraction(0)
        pos.realized += realized
        pos.qty = new
        pos.trip_pnl += realized - fee_q
        trip = None
        if old != 0 and (new == 0 or (old > 0) != (new > 0)):
            trip = RoundTrip(symbol, pos.trip_opened_ns, ts_ns, pos.trip_pnl)
            pos.trip_opened_ns = ts_ns
            pos.trip_pnl = Fraction(0)
        return realized - fee_q, trip

    def apply_funding(self, symbol: str, rate: Decimal, mark_price: int, ts_ns: int) -> FundingRecord:
        """Settle USD-M funding on the current position: amount = -qty * mark * rate."""
        pos = self.position(symbol)
        if pos.filters.market != "usdm":
            raise ValueError(f"{symbol}: funding applies to USD-M positions only")
        amount = -pos.filters.notional(mark_price, pos.qty) * as_fraction(rate)
        pos.funding += amount
        record = FundingRecord(symbol, ts_ns, rate, mark_price, pos.qty, amount)
        self.funding_history.append(record)
        return record

    def views(self, marks: Mapping[str, int | Fraction] | None = None) -> tuple[PositionView, ...]:
        marks = marks or {}
        out = []
        for symbol in sorted(self.positions):
            pos = self.positions[symbol]
            mark = marks.get(symbol)
            out.append(
                PositionView(
                    symbol,
                    pos.filters.qty_str(pos.qty),
                    decimal_str(pos.avg_entry, pos.filters.price_decimals + 2),
                    decimal_str(pos.unrealized(mark), 8) if (mark is not None and pos.qty) else "0",
                    decimal_str(pos.realized - pos.fees + pos.funding, 8),
                )
            )
        return tuple(out)

"""A symbol's scale and Binance trading filters, in integer units.

Built from exchangeInfo (PRICE_FILTER tickSize, LOT_SIZE stepSize/minQty/maxQty,
MIN_NOTIONAL/NOTIONAL minNotional) or directly in tests. ``market`` is ``"spot"`` or ``"usdm"``
(USD-M linear contracts: one contract is one unit of base, so the PnL math is the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from epochbot.model.numeric import UnitCodec, decimals_of, parse_units

__all__ = ["SymbolFilters"]


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    symbol: str
    price_decimals: int
    qty_decimals: int
    tick: int = 1  # price units per tick
    step: int = 1  # lots per step
    min_qty: int = 0  # lots
    max_qty: int = 0  # lots, 0 = no limit
    min_notional: Decimal = Decimal(0)  # quote
    market: str = "spot"  # "spot" | "usdm"

    @classmethod
    def from_strings(
        cls,
        symbol: str,
        tick_size: str,
        step_size: str,
        min_qty: str = "0",
        max_qty: str = "0",
        min_notional: str = "0",
        market: str = "spot",
    ) -> SymbolFilters:
        pd, qd = decimals_of(tick_size), decimals_of(step_size)
        return cls(
            symbol=symbol,
            price_decimals=pd,
            qty_decimals=qd,
            tick=parse_units(tick_size, pd) or 1,
            step=parse_units(step_size, qd) or 1,
            min_qty=parse_units(min_qty, qd),
            max_qty=parse_units(max_qty, qd),
            min_notional=Decimal(min_notional),
            market=market,
        )

    @property
    def codec(self) -> UnitCodec:
        return UnitCodec(self.price_decimals, self.qty_decimals)

    def price(self, units: int) -> Fraction:
        return Fraction(units, 10**self.price_decimals)

    def qty(self, lots: int) -> Fraction:
        return Fraction(lots, 10**self.qty_decimals)

    def notional(self, price_units: int, lots: int) -> Fraction:
        """Exact quote value of ``lots`` at ``price_units``."""
        return Fraction(price_units * lots, 10 ** (self.price_decimals + self.qty_decimals))

    def price_str(self, units: int) -> str:
        return self.codec.price_str(units)

    def qty_str(self, lots: int) -> str:
        return self.codec.qty_str(lots)

"""Exact money helpers: integer units <-> Fraction/Decimal without ever touching a float.

A notional ``price_units * qty_lots`` is an integer in units of ``10**-(pd + qd)`` quote; every
cash flow of a fill is therefore a terminating decimal. Averages (entry price) are rationals
(`Fraction`); sums like realized + unrealized PnL come back to terminating decimals, and
`to_decimal` converts them exactly when they terminate (and rounds half-even only when they do not).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

__all__ = ["Money", "as_fraction", "to_decimal", "units_value", "decimal_str"]

Money = Fraction  # quote-currency amounts inside the trading core


def units_value(units: int, decimals: int) -> Fraction:
    """Integer units of 10**-decimals -> exact value."""
    return Fraction(units, 10**decimals)


def as_fraction(value: Fraction | Decimal | int | str) -> Fraction:
    """Exact conversion of a Decimal, int, Fraction or plain decimal string."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):  # pragma: no cover - guard
        raise TypeError("floats are not money")
    if isinstance(value, str):
        value = Decimal(value)
    return Fraction(value)


def to_decimal(value: Fraction | int | Decimal, places: int = 18) -> Decimal:
    """Exact Decimal when the rational terminates; otherwise rounded half-even to ``places``."""
    if isinstance(value, Decimal):
        return value
    f = Fraction(value)
    den = f.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den == 1:
        scale = max(twos, fives)
        return Decimal(f.numerator * 10**scale // f.denominator).scaleb(-scale)
    with localcontext() as ctx:
        ctx.prec = 60
        return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(Decimal(1).scaleb(-places))


def decimal_str(value: Fraction | int | Decimal, places: int = 8) -> str:
    """Display string: exact if it fits in ``places`` decimals, else rounded to them."""
    d = to_decimal(value, places)
    if d.as_tuple().exponent < -places:  # type: ignore[operator]
        d = d.quantize(Decimal(1).scaleb(-places))
    text = format(d.normalize(), "f") if d != 0 else "0"
    return text

"""Exact decimal <-> integer-unit conversion for prices and quantities.

Binance sends prices and quantities as decimal strings ("0.35130000", "27123.40", "0.000").
Inside the book every value is an integer number of *units*, where a unit is 10**-decimals of
the symbol's price (or quantity) scale. The scale comes from the symbol's filters (tickSize,
stepSize) or is inferred from the strings of a snapshot. Binary floats never appear.

Parsing is the hot path of the engine, so a `UnitCodec` memoises the strings it has seen in a
bounded dict whose ``__missing__`` does the careful parse; a hit costs one C-level dict lookup.
"""

from __future__ import annotations

from epochbot.model.errors import DataError

__all__ = [
    "DecimalFormatError",
    "UnitCodec",
    "decimals_of",
    "format_units",
    "parse_units",
]


class DecimalFormatError(DataError):
    """A price or quantity string is not a plain non-negative decimal, or is finer than its scale."""


def decimals_of(text: str) -> int:
    """Number of significant fractional digits of a decimal string ("0.01000000" -> 2)."""
    if "." not in text:
        return 0
    frac = text.split(".", 1)[1].rstrip("0")
    return len(frac)


def parse_units(text: str, decimals: int) -> int:
    """Parse a plain decimal string into integer units of 10**-decimals, exactly.

    Raises DecimalFormatError for signs, exponents, junk, or digits finer than the scale
    (a price off the symbol's tick grid is a data error, not something to round).
    """
    if not isinstance(text, str) or not text:
        raise DecimalFormatError(f"not a decimal string: {text!r}")
    whole, dot, frac = text.partition(".")
    if not (whole.isdigit() and whole.isascii()) or (dot and frac and not (frac.isdigit() and frac.isascii())):
        raise DecimalFormatError(f"not a plain decimal: {text!r}")
    if len(frac) > decimals:
        extra = frac[decimals:]
        if extra.strip("0"):
            raise DecimalFormatError(f"{text!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    return int(whole + frac.ljust(decimals, "0"))


def format_units(units: int, decimals: int) -> str:
    """Integer units back to the shortest plain decimal string ("0.00006547", "303", "-1.5")."""
    sign = "-" if units < 0 else ""
    units = abs(units)
    if decimals == 0:
        return f"{sign}{units}"
    digits = str(units).rjust(decimals + 1, "0")
    whole, frac = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


class _UnitCache(dict[str, int]):
    """str -> units memo; a miss parses carefully and remembers (bounded by clearing)."""

    __slots__ = ("decimals", "limit")

    def __init__(self, decimals: int, limit: int) -> None:
        super().__init__()
        self.decimals = decimals
        self.limit = limit

    def __missing__(self, text: str) -> int:
        # Fast path for the venue's canonical form: ASCII digits, a dot, exactly `decimals`
        # fractional digits ("27123.40", "0.554"); anything else takes the careful parse.
        whole, dot, frac = text.partition(".") if type(text) is str else ("", "", "")
        if dot and len(frac) == self.decimals and whole.isdigit() and frac.isdigit() and text.isascii():
            units = int(whole + frac)
        else:
            units = parse_units(text, self.decimals)
        if len(self) >= self.limit:
            self.clear()
        self[text] = units
        return units


class UnitCodec:
    """Converts one symbol's price and quantity strings to integer ticks/lots and back.

    ``price[text]`` and ``qty[text]`` are dict lookups (C speed on a hit); ``price_str`` and
    ``qty_str`` format units for reports. Both scales are fixed for the symbol's lifetime.
    """

    __slots__ = ("price_decimals", "qty_decimals", "price", "qty")

    def __init__(self, price_decimals: int, qty_decimals: int, cache_limit: int = 1 << 16) -> None:
        if price_decimals < 0 or qty_decimals < 0:
            raise ValueError("decimals must be non-negative")
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        self.price: dict[str, int] = _UnitCache(price_decimals, cache_limit)
        self.qty: dict[str, int] = _UnitCache(qty_decimals, cache_limit)

    @classmethod
    def from_filters(cls, tick_size: str, step_size: str) -> UnitCodec:
        """From exchangeInfo's PRICE_FILTER tickSize and LOT_SIZE stepSize."""
        return cls(decimals_of(tick_size), decimals_of(step_size))

    @classmethod
    def infer(cls, levels: list[list[str]] | list[tuple[str, str]]) -> UnitCodec:
        """From the strings of a snapshot when no exchangeInfo is known.

        Uses the full printed precision (Binance pads to the symbol's precision), so any later
        string of the same symbol parses exactly.
        """
        pd = qd = 0
        for price, qty in levels:
            pd = max(pd, len(price.partition(".")[2]))
            qd = max(qd, len(qty.partition(".")[2]))
        return cls(pd, qd)

    def price_str(self, units: int) -> str:
        return format_units(units, self.price_decimals)

    def qty_str(self, units: int) -> str:
        return format_units(units, self.qty_decimals)

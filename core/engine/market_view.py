"""What the engine publishes to the trading half: a frozen view of one book, and one trade.

The engine builds these from its live books (`MarketView.from_book` copies the top levels; the
live book is never handed out) and hands them to the trader through `epochbot.engine.trader_port`; strategies
read them. They are defined here, beside the engine and below trading, so the engine needs
nothing from `epochbot.trading` to publish them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec

if TYPE_CHECKING:
    from epochbot.book.book import OrderBook

__all__ = ["MarketView", "TradeTick"]

Side = Literal["BUY", "SELL"]


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One public trade, parsed: ``taker_side`` is BUY when the buyer took liquidity."""

    symbol: str
    price: int
    qty: int
    taker_side: Side
    ts_ns: int


@dataclass(frozen=True, slots=True)
class MarketView:
    """What a strategy may know about one symbol at ``ts_ns``; built by the engine side.

    ``bids``/``asks`` are the top levels (price units, lots), best first.
    """

    symbol: str
    ts_ns: int
    codec: UnitCodec
    tick: int
    best_bid: int | None
    best_ask: int | None
    bids: tuple[tuple[int, int], ...] = ()
    asks: tuple[tuple[int, int], ...] = ()
    position: int = 0  # signed lots
    mode: Mode = Mode.NORMAL
    trustworthy: bool = True  # the book is synced
    # Average entry price of the open position in price units (exact), None when flat/unknown.
    entry_price: Fraction | None = None

    @property
    def two_mid(self) -> int | None:
        """bid + ask in price units (twice the mid: an integer, no rounding)."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_bid + self.best_ask

    @property
    def mid(self) -> Fraction | None:
        """Exact mid in price units."""
        two = self.two_mid
        return None if two is None else Fraction(two, 2)

    @classmethod
    def from_book(
        cls, book: OrderBook, *, position: int = 0, mode: Mode = Mode.NORMAL, ts_ns: int = 0, depth: int = 5
    ) -> MarketView:
        """Copy the top of a `epochbot.book.book.OrderBook` (the live book is never handed out)."""
        bids, asks = book.top(depth) if (book.bids or book.asks) else ([], [])
        return cls(
            symbol=book.symbol,
            ts_ns=ts_ns,
            codec=book.codec or UnitCodec(0, 0),
            tick=book.tick or 1,
            best_bid=book.best_bid,
            best_ask=book.best_ask,
            bids=tuple(bids),
            asks=tuple(asks),
            position=position,
            mode=mode,
            trustworthy=book.synced,
        )

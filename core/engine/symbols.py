"""What the engine keeps per symbol: its book, the state of its repair, its latest market data.

`SymbolState` is shared by the engine's parts (the facade adds symbols; `epochbot.engine.repair`
keeps the snapshot request and resync fields; `epochbot.engine.trading` shows the book and trades
to the trader); the snapshot builder and reports read it. ``Symbols`` is the table of them, one
dict owned by the facade and handed to every part that needs it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from epochbot.book.book import OrderBook
from epochbot.model import events as ev
from epochbot.model.records import BookResync

__all__ = ["SymbolState", "Symbols"]


@dataclass(slots=True)
class SymbolState:
    """One symbol: the book and its repair bookkeeping, the last trades and tickers."""

    book: OrderBook
    snapshot_request: int = 0  # outstanding snapshot request id (0: none)
    snapshot_requested_ns: int = 0
    bad_snapshots: int = 0  # unusable snapshots (or failed fetches) in a row
    resync: BookResync | None = None  # the book resync in progress, if any
    trades: deque[ev.AggTrade] = field(default_factory=deque)  # the last `trade_history`
    ticker: ev.BookTicker | None = None
    mark: ev.MarkPrice | None = None
    kline: ev.Kline | None = None
    liquidations: int = 0
    overflow_logged: bool = False  # "buffer full" said once per wait for a snapshot


Symbols = dict[str, SymbolState]

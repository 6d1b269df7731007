"""Paper-trading matching engine for the embedded Binance simulator (spot and USD-M).

`PaperVenue` (``venue.py``) is the whole engine's face; its parts, each with its own tests:
``validate.py`` (request parameters to an order), ``algo.py`` (USD-M conditional orders of the
Algo Service: parameters, triggers), ``settings.py`` (USD-M leverage, margin type, position and
Multi-Assets modes), ``countdown.py`` (the ``countdownCancelAll`` dead-man switch), ``book.py``
(sweeping the visible market and the crossing pool for resting orders), ``ledger.py`` (accounts,
balances, locks, margin, positions, liquidation prices), ``render.py`` (Binance's JSON and
user-data events), ``records.py`` (the records).
"""

from epochbot.sim.matching.records import (
    DEFAULT_STARTING_BALANCES,
    FIRST_ORDER_ID,
    FIRST_TRADE_ID,
    LEVERAGE,
    BookView,
    SymbolFilters,
)
from epochbot.sim.matching.venue import PaperVenue

__all__ = [
    "BookView",
    "DEFAULT_STARTING_BALANCES",
    "PaperVenue",
    "SymbolFilters",
    "FIRST_ORDER_ID",
    "FIRST_TRADE_ID",
    "LEVERAGE",
]

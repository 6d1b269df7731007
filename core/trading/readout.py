"""What the trader's read-only helpers see of it: a protocol, so they need not import the trader.

`epochbot.trading.state_view` (the published trading view), `epochbot.trading.describe` (log
lines for orders and fills) and `epochbot.trading.alerts` (breaker and latch alerts) read a
`Trader`; the trader imports them. Typing them against this protocol instead of the class keeps
the package free of import cycles (type-only ones included).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Protocol

from epochbot.model import trade_events as tev
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.orders import OrderManager
from epochbot.trading.portfolio import Portfolio
from epochbot.trading.risk import RiskGate

__all__ = ["TraderReadout"]


class TraderReadout(Protocol):
    """The trader's state as its helpers read it (never written through this)."""

    @property
    def now_ns(self) -> int: ...
    @property
    def filters(self) -> Mapping[str, SymbolFilters]: ...
    @property
    def orders(self) -> OrderManager: ...
    @property
    def portfolio(self) -> Portfolio: ...
    @property
    def risk(self) -> RiskGate: ...
    @property
    def fills(self) -> list[tev.Fill]: ...
    def marks(self) -> Mapping[str, Fraction]: ...

    def already_booked(self, fill: tev.Fill) -> bool: ...

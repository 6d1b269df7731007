"""The engine's side of the trading half: what it calls on a trader, and nothing more.

The engine drives an optional trader (`epochbot.trading.trader.Trader` is the one epochbot ships)
from its single loop, so live, replay and backtest place the same orders for the same input. It
knows the trader only through this protocol: views and trades in (`epochbot.engine.market_view`),
trading events in (`epochbot.model.trade_events`), the mode and the operator's pause, cancel-all
and flatten in, commands out (`epochbot.model.events`), log lines the trader wants written
(``notices``, plus `describe_event` / `describe_command` for what the engine logs about trading
traffic), and the trader's share of the engine's state hash (`feed_hash`: its orders and
positions, so a replay that reaches other orders has another hash). The engine imports nothing
from `epochbot.trading`; `epochbot.engine.trading.TraderBridge` is the only caller.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from epochbot.engine.market_view import MarketView, TradeTick
from epochbot.model.digest import Digest
from epochbot.model.events import Command
from epochbot.model.modes import Mode
from epochbot.model.trade_events import TradingEvent

__all__ = ["LogLine", "TraderPort"]

LogLine = tuple[str, str, dict[str, object]]  # (level, message, fields)


@runtime_checkable
class TraderPort(Protocol):
    """What `epochbot.engine.engine.Engine` needs from a trader. Every hook returns the commands it causes."""

    notices: list[LogLine]  # lines to log; the engine drains them after every call

    def on_view(self, view: MarketView) -> list[Command]: ...

    def on_trade(self, trade: TradeTick) -> list[Command]: ...

    def on_timer(self, now_ns: int) -> list[Command]: ...

    def on_event(self, event: TradingEvent) -> list[Command]:
        """A trading event (venue answer, user-data message, symbol status)."""
        ...

    def set_mode(self, mode: Mode, now_ns: int) -> list[Command]: ...

    def pause(self, paused: bool) -> None:
        """The operator paused (or resumed) the strategy: no new orders while paused."""
        ...

    def cancel_all(self, symbol: str | None, now_ns: int) -> list[Command]: ...

    def flatten(self, symbol: str | None, now_ns: int) -> tuple[list[Command], list[str]]:
        """Commands, and the symbols whose positions they close."""
        ...

    def settle_funding(
        self, symbol: str, funding_ts_ms: int, rate: str, mark: str, recv_ts: int
    ) -> list[Command] | None:
        """A funding time passed with ``rate`` and ``mark`` in force (venue text): settle the
        position. None when nothing was settled (flat, not USD-M, unreadable figures)."""
        ...

    def alerts(self) -> list[LogLine]:
        """Risk events not yet reported (a breaker tripped, a loss limit latched): logged as
        they are found, after every trading event and funding settlement."""
        ...

    def describe_event(self, event: TradingEvent) -> LogLine:
        """How the engine logs a trading event it hands over."""
        ...

    def describe_command(self, command: Command) -> LogLine | None:
        """How the engine logs a command the trader produced (None: not logged)."""
        ...

    def feed_hash(self, h: Digest) -> None:
        """Feed the orders and positions into the engine's state digest (deterministically)."""
        ...

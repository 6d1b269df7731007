"""The engine's side of trading: what it shows the trader and what it logs about trading.

The engine drives an optional trader (`epochbot.engine.trader_port.TraderPort`) from its single loop: the
books that changed since the last tick as `MarketView`s, public trades as `TradeTick`s, funding
that fell due (`epochbot.engine.market_history.FundingDue`), trading events from the venue, and the
operator's cancel-all / flatten. Every command the trader returns is logged (through the
trader's own descriptions) and returned to the driver.

A mixin of `epochbot.engine.engine.Engine` (the state it reads and writes is the engine's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from epochbot.engine.market_view import MarketView, TradeTick
from epochbot.model import events as ev
from epochbot.model import trade_events as tev

_NO_COMMANDS: tuple = ()
_MS = 1_000_000

if TYPE_CHECKING:
    from epochbot.engine.engine import _SymbolState

__all__ = ["TradingBridge"]


class TradingBridge:
    """Part of `epochbot.engine.engine.Engine` (a mixin: no state of its own)."""

    def _settle_funding(self, due) -> list:
        """A funding time passed (`epochbot.engine.market_history.FundingDue`): the trader settles it."""
        commands = self.trader.settle_funding(due.symbol, due.funding_ts_ms, due.rate, due.mark, due.recv_ts)
        if commands is not None:
            self.counters["funding_settlements"] += 1
            self.log_trader_alerts()
        self._log_orders(commands or _NO_COMMANDS)
        return commands or _NO_COMMANDS

    def _strategy_tick(self, now: int) -> list:
        """Show the strategy every book that changed since the last tick, then its timer."""
        trader = self.trader
        commands: list = []
        dirty, self._dirty = self._dirty, set()
        for symbol in sorted(dirty):
            book = self.symbols[symbol].book
            if book.synced:
                view = MarketView.from_book(book, ts_ns=now)
                commands.extend(trader.on_view(view))
        commands.extend(trader.on_timer(now))
        self._log_orders(commands)
        return commands

    def _trade_to_strategy(self, state: _SymbolState, trade: ev.AggTrade, now: int):
        codec = state.book.codec
        try:
            tick = TradeTick(
                trade.symbol,
                codec.price[trade.price],
                codec.qty[trade.qty],
                "SELL" if trade.buyer_is_maker else "BUY",
                trade.trade_ts * _MS,
            )
        except (ValueError, TypeError) as exc:
            self._log("warn", "unusable trade skipped", symbol=trade.symbol, error=str(exc))
            return _NO_COMMANDS
        commands = self.trader.on_trade(tick)
        self._log_orders(commands)
        return commands

    def _on_trading(self, event, now: int):
        if self.trader is None:
            self._log("warn", "trading event without a trader", event=type(event).__name__)
            return _NO_COMMANDS
        if type(event) is tev.AccountStreamState:
            self.account_stream_down_since = None if event.up else (self.account_stream_down_since or now)
            self._log(
                "info" if event.up else "warn",
                "account stream up" if event.up else "account stream down",
                stream_epoch=event.stream_epoch,
                reason=event.reason,
            )
            return _NO_COMMANDS
        if type(event) is tev.SymbolStatus:
            self._log(
                "info" if event.status == "TRADING" else "warn",
                "symbol status",
                symbol=event.symbol,
                status=event.status,
            )
            commands = self.trader.on_event(event)
            self._log_orders(commands)
            return commands
        if type(event) is tev.Fill:
            key = f"fills_via_{event.via or 'query'}"
            self.counters[key] = self.counters.get(key, 0) + 1
        level, msg, fields = self.trader.describe_event(event)
        self._log(level, msg, **fields)
        commands = self.trader.on_event(event)
        self.log_trader_alerts()
        self._log_orders(commands)
        return commands

    def log_trader_alerts(self) -> None:
        """Breaker trips and loss-limit latches are warnings in the log (cause, until-time)."""
        if self.trader is None:
            return
        for level, msg, fields in self.trader.alerts():
            self._log(level, msg, **fields)

    def _log_orders(self, commands) -> None:
        trader = self.trader
        if trader is None:
            return
        notices = trader.notices
        if notices:
            for level, msg, fields in notices:
                self._log(level, msg, **fields)
            notices.clear()
        for command in commands:
            line = trader.describe_command(command)
            if line is not None:
                self._log(line[0], line[1], **line[2])

    def _on_cancel_all(self, event: ev.OperatorCancelAll, now: int):
        return self._operator_trading("cancel all", event, now)

    def _on_flatten(self, event: ev.OperatorFlatten, now: int):
        return self._operator_trading("flatten", event, now)

    def _operator_trading(self, action: str, event, now: int):
        """Operator cancel-all / flatten (epochbot.trading.trader): pause first if asked."""
        if self.trader is None:
            self._log("error", f"operator {action}: no trading configured")
            return _NO_COMMANDS
        if event.symbol is not None and event.symbol not in self.symbols:
            self._log("error", f"operator {action}: unknown symbol", symbol=event.symbol)
            return _NO_COMMANDS
        if event.pause and not self.paused:
            self._on_pause(ev.OperatorPause(paused=True), now)
        if action == "flatten":
            commands, targets = self.trader.flatten(event.symbol, now)
            self._log(
                "warn",
                "operator: flatten",
                symbol=event.symbol or "all",
                positions=",".join(targets) or "none",
                orders=len(commands),
            )
        else:
            commands = self.trader.cancel_all(event.symbol, now)
            self._log("warn", "operator: cancel all", symbol=event.symbol or "all", cancels=len(commands))
        self._log_orders(commands)
        return commands

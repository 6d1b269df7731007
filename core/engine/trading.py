"""The bridge to the trader: what the engine shows it, and what the engine logs about trading.

The engine drives an optional trader (`epochbot.engine.trader_port.TraderPort`) from its single
loop through one `TraderBridge`: the books that changed since the last tick as `MarketView`s
(the facade adds a symbol to ``changed`` on every applied diff), public trades as `TradeTick`s,
funding that fell due (`epochbot.engine.market_history.FundingDue`), trading events from the
venue, mode changes, and the operator's pause, cancel-all and flatten. Every command the trader
returns is logged (through the trader's own descriptions) and returned to the driver; commands
the trader produces while the engine handles a control event (a mode change, a strategy tick)
wait in ``outbox`` until the facade returns them with that event's commands.

With no trader attached the bridge still holds the operator's pause and answers trading events
and operator trading actions with a log line.
"""

from __future__ import annotations

from collections.abc import Iterable

from epochbot.engine.log import EngineLog
from epochbot.engine.market_history import FundingDue
from epochbot.engine.market_view import MarketView, TradeTick
from epochbot.engine.modes import ModeChange
from epochbot.engine.symbols import Symbols
from epochbot.engine.trader_port import TraderPort
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.digest import Digest
from epochbot.model.numeric import UnitCodec

__all__ = ["TraderBridge"]

_NO_COMMANDS: tuple[ev.Command, ...] = ()
_MS = 1_000_000


class TraderBridge:
    """The engine's one way to the trader (see the module docstring)."""

    def __init__(
        self, symbols: Symbols, log: EngineLog, counters: dict[str, int], trader: TraderPort | None = None
    ) -> None:
        self.trader = trader  # attached later by the runtime (the facade's ``trader`` setter)
        self._symbols = symbols
        self._log = log.write
        self._counters = counters
        self.changed: set[str] = set()  # symbols whose book changed since the strategy last looked
        self.outbox: list[ev.Command] = []  # commands produced while handling a control event
        self.paused = False  # the operator's pause (held even without a trader)
        self.account_stream_down_since: int | None = None  # set while the account stream is down

    def _attached(self) -> TraderPort:
        trader = self.trader
        if trader is None:  # the facade checks before it calls: a defect, not a data error
            raise RuntimeError("no trader attached")
        return trader

    # ------------------------------------------------------------------ market data in

    def strategy_tick(self, now: int) -> list[ev.Command]:
        """Show the strategy every book that changed since the last tick, then its timer."""
        trader = self._attached()
        commands: list[ev.Command] = []
        changed = sorted(self.changed)
        self.changed.clear()
        for symbol in changed:
            book = self._symbols[symbol].book
            if book.synced:
                view = MarketView.from_book(book, ts_ns=now)
                commands.extend(trader.on_view(view))
        commands.extend(trader.on_timer(now))
        self.log_orders(commands)
        return commands

    def trade(self, trade: ev.AggTrade, codec: UnitCodec) -> ev.Commands:
        """A public trade of a symbol whose scale is known, shown to the strategy."""
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
        commands = self._attached().on_trade(tick)
        self.log_orders(commands)
        return commands

    def settle_funding(self, due: FundingDue) -> ev.Commands:
        """A funding time passed: the trader settles it."""
        commands = self._attached().settle_funding(due.symbol, due.funding_ts_ms, due.rate, due.mark, due.recv_ts)
        if commands is not None:
            self._counters["funding_settlements"] += 1
            self.log_alerts()
        self.log_orders(commands or _NO_COMMANDS)
        return commands or _NO_COMMANDS

    def mode_changed(self, change: ModeChange) -> None:
        """The effective mode changed: the trader's answer waits in ``outbox``."""
        if self.trader is not None:
            self.outbox.extend(self.trader.set_mode(change.mode, change.at_ns))

    # ------------------------------------------------------------------ trading events

    def on_event(self, event: tev.TradingEvent, now: int) -> ev.Commands:
        """A trading event from the venue (order answers, user data, account stream, status)."""
        trader = self.trader
        if trader is None:
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
            commands = trader.on_event(event)
            self.log_orders(commands)
            return commands
        if type(event) is tev.Fill:
            key = f"fills_via_{event.via or 'query'}"
            self._counters[key] = self._counters.get(key, 0) + 1
        level, msg, fields = trader.describe_event(event)
        self._log(level, msg, **fields)
        commands = trader.on_event(event)
        self.log_alerts()
        self.log_orders(commands)
        return commands

    def log_alerts(self) -> None:
        """Breaker trips and loss-limit latches are warnings in the log (cause, until-time)."""
        if self.trader is None:
            return
        for level, msg, fields in self.trader.alerts():
            self._log(level, msg, **fields)

    def log_orders(self, commands: Iterable[ev.Command]) -> None:
        """The trader's notices, then a line per command it produced (as it describes them)."""
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

    # ------------------------------------------------------------------ the operator

    def pause(self, paused: bool) -> None:
        self.paused = paused
        if self.trader is not None:
            self.trader.pause(paused)
        self._log("warn", "strategy paused" if paused else "strategy resumed")

    def cancel_all(self, event: ev.OperatorCancelAll, now: int) -> ev.Commands:
        return self._operator("cancel all", event, now)

    def flatten(self, event: ev.OperatorFlatten, now: int) -> ev.Commands:
        return self._operator("flatten", event, now)

    def _operator(self, action: str, event: ev.OperatorCancelAll | ev.OperatorFlatten, now: int) -> ev.Commands:
        """Operator cancel-all / flatten (epochbot.trading.trader): pause first if asked."""
        trader = self.trader
        if trader is None:
            self._log("error", f"operator {action}: no trading configured")
            return _NO_COMMANDS
        if event.symbol is not None and event.symbol not in self._symbols:
            self._log("error", f"operator {action}: unknown symbol", symbol=event.symbol)
            return _NO_COMMANDS
        if event.pause and not self.paused:
            self.pause(True)
        commands: list[ev.Command]
        if action == "flatten":
            commands, targets = trader.flatten(event.symbol, now)
            self._log(
                "warn",
                "operator: flatten",
                symbol=event.symbol or "all",
                positions=",".join(targets) or "none",
                orders=len(commands),
            )
        else:
            commands = trader.cancel_all(event.symbol, now)
            self._log("warn", "operator: cancel all", symbol=event.symbol or "all", cancels=len(commands))
        self.log_orders(commands)
        return commands

    # ------------------------------------------------------------------ the state hash

    def feed_hash(self, h: Digest) -> None:
        """The trader's orders and positions, when there is a trader."""
        if self.trader is not None:
            self.trader.feed_hash(h)

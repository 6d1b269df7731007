"""The trading half of the strategy loop: strategy -> gates -> orders -> venue answers -> PnL.

`Trader` glues the pure components together and is what the runtime (and the backtest) drive:

    market view / trade / mode change / timer ──► strategy ──► intents
    intents ──► slot replacement ──► RiskGate.check ──► OrderManager.place ──► PlaceOrder
    venue answers (epochbot.model.trade_events) ──► OrderManager ──► Portfolio ──► RiskGate state
                                                   └──► QueryOrder (unknown outcomes)

Slot replacement: an intent for ``(symbol, tag)`` whose slot still has working orders first
cancels them and waits (``pending``) until the venue confirms they are gone; only then is the
new order gated and placed. So a re-quote never has two orders of one slot live, and the
reduce-only arithmetic never has to guess whether a cancel will win against a fill.

Nothing here performs I/O or reads a clock: ``now_ns`` comes from views and events. The
runtime persists what `drain_records` returns (order transitions, fills, funding, risk
snapshots after every realised trade).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from epochbot.model import trade_events as tev
from epochbot.model.digest import Digest
from epochbot.model.events import CancelOrder, Command, PlaceOrder
from epochbot.model.modes import Mode
from epochbot.model.records import RiskSnapshot
from epochbot.trading.alerts import RiskAlerts
from epochbot.trading.describe import LogLine, describe_command, describe_event
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.orders import ManagedOrder, OrderManager, OrderRefused
from epochbot.trading.portfolio import Portfolio, RoundTrip
from epochbot.trading.risk import RiskGate, RiskLimits, RiskState
from epochbot.trading.state_view import trading_view
from epochbot.trading.strategy import MarketView, OrderIntent, Strategy, TradeTick

if TYPE_CHECKING:
    from epochbot.model.records import Candle

__all__ = ["Refusal", "RiskSnapshot", "Trader"]


@dataclass(frozen=True, slots=True)
class Refusal:
    ts_ns: int
    intent: OrderIntent
    reason: str


class Trader:
    def __init__(
        self,
        strategy: Strategy,
        filters: dict[str, SymbolFilters],
        *,
        session: int = 0,
        limits: RiskLimits | None = None,
        risk_state: RiskState | None = None,
        start_seq: int = 0,
        mode: Mode = Mode.NORMAL,
    ) -> None:
        self.strategy = strategy
        self.filters = filters
        self.symbol_status: dict[str, str] = {}  # exchangeInfo status; absent = TRADING
        self.orders = OrderManager(session, filters=filters, start_seq=start_seq)
        self.portfolio = Portfolio(filters)
        self.risk = RiskGate(limits or RiskLimits(), filters, risk_state)
        self.mode = mode
        self.paused = False
        self.now_ns = 0
        self.views_by_symbol: dict[str, MarketView] = {}
        self.pending: dict[tuple[str, str], OrderIntent] = {}
        self.refusals: deque[Refusal] = deque(maxlen=1000)
        self.records: list[object] = []  # records for storage (epochbot.model.records, fills)
        self.fills: list[tev.Fill] = []
        self._seen_trades: set[tuple[str, str]] = set()
        self._seen_order: deque[tuple[str, str]] = deque()
        self.keep_fills = 0  # 0: keep every fill in memory (backtests); the runtime bounds it
        self.refusal_counts: dict[str, int] = {}  # reason (before its first ":") -> count, never capped
        self.round_trips: list[
            RoundTrip
        ] = []  # finished round trips (epochbot.trading.portfolio.RoundTrip), bounded like fills
        self.fill_count = 0  # fills booked this session (restored ones not counted)
        self.order_outcomes: dict[str, int] = {}  # terminal state -> orders of this session
        self.flattening: set[str] = set()  # symbols with an operator flatten not yet placed
        self.flatten_orders: set[str] = set()  # client ids of operator flatten orders
        self.notices: list[LogLine] = []  # (level, message, fields) for the log
        self.risk_alerts: RiskAlerts | None = None  # what was last reported; made on first use

    # ----------------------------------------------------------------------------- inputs

    def on_view(self, view: MarketView) -> list[Command]:
        self.now_ns = max(self.now_ns, view.ts_ns)
        view = _with(
            view, position=self.portfolio.qty(view.symbol), mode=self.mode, entry_price=self._entry_units(view.symbol)
        )
        self.views_by_symbol[view.symbol] = view
        return self._apply(self.strategy.on_book(view))

    def _entry_units(self, symbol: str) -> Fraction | None:
        pos = self.portfolio.positions.get(symbol)
        if pos is None or not pos.qty:
            return None
        return pos.avg_entry * Fraction(10**pos.filters.price_decimals)

    def on_trade(self, trade: TradeTick) -> list[Command]:
        self.now_ns = max(self.now_ns, trade.ts_ns)
        return self._apply(self.strategy.on_trade(trade))

    def set_mode(self, mode: Mode, now_ns: int) -> list[Command]:
        self.now_ns = max(self.now_ns, now_ns)
        if mode is self.mode:
            return []
        self.mode = mode
        commands: list[Command] = [*self._mode_cancels()]
        commands += self._apply(self.strategy.on_mode_change(mode))
        return commands

    def on_timer(self, now_ns: int) -> list[Command]:
        self.now_ns = max(self.now_ns, now_ns)
        commands = list(self.orders.on_timer(now_ns))
        commands += self._mode_cancels()
        commands += self._apply(self.strategy.on_timer(now_ns))
        return commands

    def warm_up(self, symbol: str, candles: Sequence[Candle]) -> list[Command]:
        """Hand the strategy the closed candles fetched at start (oldest first). A strategy
        without ``on_history`` (one not built on ``BaseStrategy``) is simply not told."""
        hook = getattr(self.strategy, "on_history", None)
        if hook is None or not candles:
            return []
        return self._apply(hook(symbol, list(candles)))

    def on_event(self, event: Any) -> list[Command]:
        """A venue answer (see `epochbot.model.trade_events`)."""
        self.now_ns = max(self.now_ns, event.ts_ns)
        if type(event) is tev.FundingSettlement:
            record = self.portfolio.apply_funding(event.symbol, event.rate, event.mark_price, event.ts_ns)
            self.risk.on_pnl(record.amount, event.ts_ns)
            self.records.append(record)
            self.records.append(RiskSnapshot(event.ts_ns, self.risk.snapshot(event.ts_ns)))
            return []
        if type(event) is tev.SymbolStatus:
            self.symbol_status[event.symbol] = event.status
            return self._drain_pending() if event.status == "TRADING" else []
        fresh_fill = type(event) is tev.Fill and self._first_sight(event)
        commands = list(self.orders.on_event(event))
        intents: list[OrderIntent] = []
        if fresh_fill:
            self._book_fill(event)
            intents += self.strategy.on_fill(event)
        self._take_journal()
        commands += self._mode_cancels()
        commands += self._apply(intents)
        commands += self._drain_pending()
        commands += self._drain_flatten()
        return commands

    def settle_funding(
        self, symbol: str, funding_ts_ms: int, rate: str, mark: str, recv_ts: int
    ) -> list[Command] | None:
        """USD-M funding derived from the mark price stream (`epochbot.engine.market_history` says when a
        funding time has passed and which rate and mark were in force): the position pays or
        receives ``qty * mark * rate``. Returns the commands it causes, or None when nothing was
        settled (not USD-M, flat, unreadable figures).

        This is the stream-derived figure, used alike in paper and live trading and what is
        recorded; Binance's ACCOUNT_UPDATE (reason FUNDING_FEE) on the user-data stream is the
        venue's authoritative amount (it may differ by the mark's rounding to price units and
        the exact mark at the settlement instant). A flat position settles nothing."""
        filters = self.filters.get(symbol)
        if filters is None or filters.market != "usdm" or self.portfolio.qty(symbol) == 0:
            return None
        try:
            rate_d = Decimal(rate)
            units = Decimal(mark).scaleb(filters.price_decimals).to_integral_value(ROUND_HALF_EVEN)
        except (ArithmeticError, ValueError):
            self.notices.append(
                (
                    "warn",
                    "funding skipped: unreadable mark price or rate",
                    {"symbol": symbol, "mark": mark, "rate": rate},
                )
            )
            return None
        settlement = tev.FundingSettlement(
            symbol=symbol, rate=rate_d, mark_price=int(units), ts_ns=funding_ts_ms * 1_000_000, recv_ts=recv_ts
        )
        first_notice = len(self.notices)
        commands = self.on_event(settlement)
        self.notices.insert(
            first_notice,
            (
                "info",
                "funding settled (stream-derived)",
                {
                    "symbol": symbol,
                    "funding_ts_ms": funding_ts_ms,
                    "rate": rate,
                    "mark": mark,
                    "qty": self.portfolio.qty(symbol),
                    "amount": str(self.portfolio.funding_history[-1].amount),
                },
            ),
        )
        return commands

    # ----------------------------------------------------------------------------- log lines

    def alerts(self) -> list[LogLine]:
        """Breaker trips and loss-limit latches not yet reported (`epochbot.trading.alerts`)."""
        if self.risk_alerts is None:
            self.risk_alerts = RiskAlerts()
        return self.risk_alerts.poll(self)

    def describe_event(self, event: Any) -> LogLine:
        """How the engine logs a venue answer, before it is applied (`epochbot.trading.describe`)."""
        return describe_event(self, event)

    def describe_command(self, command: Command) -> LogLine | None:
        return describe_command(self, command)

    # ----------------------------------------------------------------------------- restart

    def restore_fills(self, fills: Iterable[tev.Fill]) -> int:
        """Rebuild positions and PnL from the stored fills of earlier runs (oldest first).

        The portfolio only: the risk state comes from its own snapshot (it already counted
        these fills), nothing is journaled again and the strategy is not told. Each trade id is
        remembered so the same execution arriving again (stream replay, trade-history import)
        is not booked twice. Returns how many fills were applied.
        """
        applied = 0
        for fill in fills:
            if not self._first_sight(fill):
                continue
            self.portfolio.apply_fill(
                fill.symbol, fill.side, fill.qty, fill.price, fill.fee, fill.fee_asset, fill.ts_ns
            )
            self.now_ns = max(self.now_ns, fill.ts_ns)
            applied += 1
        return applied

    def import_fill(self, fill: tev.Fill) -> bool:
        """Book a fill the venue made but storage never received (found in its trade history).

        Like a live fill (portfolio, risk PnL and breaker, persisted with a risk snapshot) but
        without asking the strategy for intents: this runs at startup, before any market view.
        The order manager is told if it knows the order. False when the trade was booked already.
        """
        if not self._first_sight(fill):
            return False
        self.now_ns = max(self.now_ns, fill.ts_ns)
        if fill.client_order_id in self.orders.orders:
            self.orders.on_event(fill)
            self._take_journal()
        self._book_fill(fill)
        return True

    def already_booked(self, fill: tev.Fill) -> bool:
        """True for a fill whose trade was booked already (same symbol and trade id)."""
        return bool(fill.trade_id) and (fill.symbol, fill.trade_id) in self._seen_trades

    def _first_sight(self, fill: tev.Fill) -> bool:
        """False for a fill already booked (same symbol and trade id: a replayed stream)."""
        if not fill.trade_id:
            return True
        key = (fill.symbol, fill.trade_id)
        if key in self._seen_trades:
            return False
        self._seen_trades.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > 100_000:
            self._seen_trades.discard(self._seen_order.popleft())
        return True

    def _book_fill(self, fill: tev.Fill) -> None:
        delta, trip = self.portfolio.apply_fill(
            fill.symbol, fill.side, fill.qty, fill.price, fill.fee, fill.fee_asset, fill.ts_ns
        )
        self.fills.append(fill)
        if self.keep_fills and len(self.fills) > 2 * self.keep_fills:  # storage keeps them all
            del self.fills[: len(self.fills) - self.keep_fills]
        self.fill_count += 1
        self.records.append(fill)
        self.risk.on_pnl(delta, fill.ts_ns)
        if trip is not None:
            self.round_trips.append(trip)
            if self.keep_fills and len(self.round_trips) > 2 * self.keep_fills:
                del self.round_trips[: len(self.round_trips) - self.keep_fills]
            self.risk.on_round_trip(trip, fill.ts_ns)
        self.records.append(RiskSnapshot(fill.ts_ns, self.risk.snapshot(fill.ts_ns)))

    def _take_journal(self) -> None:
        journal = self.orders.drain_journal()
        for row in journal:
            if row.state in ("FILLED", "CANCELED", "REJECTED", "EXPIRED") and row.prev_state != row.state:
                self.order_outcomes[row.state] = self.order_outcomes.get(row.state, 0) + 1
        self.records.extend(journal)

    # ----------------------------------------------------------------------------- operator

    def cancel_all(self, symbol: str | None, now_ns: int) -> list[Command]:
        """Operator: cancel every working order (of ``symbol``, or all symbols).

        Pending slot re-quotes of those symbols are dropped too, so nothing the strategy wanted
        before the command is placed after it. Orders whose outcome is UNKNOWN cannot be
        cancelled by client id until reconciled; they are left to reconciliation.
        """
        self.now_ns = max(self.now_ns, now_ns)
        self.pending = {k: v for k, v in self.pending.items() if symbol is not None and k[0] != symbol}
        commands: list[Command] = []
        for order in self.orders.working(symbol):
            cancel = self.orders.cancel(order.client_order_id, self.now_ns)
            if cancel is not None:
                commands.append(cancel)
        return commands

    def flatten(self, symbol: str | None, now_ns: int) -> tuple[list[Command], list[str]]:
        """Operator: close the position of ``symbol`` (or every symbol) with a reduce-only
        MARKET order. The symbol's working orders are cancelled first; the market order is
        sized from the position when the venue has confirmed they are gone (fills racing the
        cancels are counted), so it can never overshoot through zero. Returns (commands,
        symbols being flattened)."""
        self.now_ns = max(self.now_ns, now_ns)
        symbols = [symbol] if symbol is not None else sorted(s for s, p in self.portfolio.positions.items() if p.qty)
        targets = [s for s in symbols if self.portfolio.qty(s) != 0 or self.orders.working(s)]
        commands: list[Command] = []
        for sym in targets:
            commands += self.cancel_all(sym, now_ns)
            self.flattening.add(sym)
        commands += self._drain_flatten()
        return commands, targets

    def _drain_flatten(self) -> list[Command]:
        commands: list[Command] = []
        for sym in sorted(self.flattening):
            if self.orders.working(sym):
                continue  # wait for the cancels (or reconciliation) to finish
            self.flattening.discard(sym)
            qty = self.portfolio.qty(sym)
            if qty == 0:
                continue
            intent = OrderIntent(
                sym, "SELL" if qty > 0 else "BUY", abs(qty), None, "MARKET", None, True, "operator-flatten"
            )
            command = self._place(intent)
            f = self.filters.get(sym)
            fields = {"symbol": sym, "side": intent.side, "qty": f.qty_str(intent.qty) if f else str(intent.qty)}
            if command is not None:
                self.flatten_orders.add(command.client_order_id)
                commands.append(command)
                self.notices.append(
                    (
                        "warn",
                        f"flatten: {intent.side} {fields['qty']} {sym} at market (reduce-only)",
                        {**fields, "client_order_id": command.client_order_id},
                    )
                )
            else:
                reason = self.refusals[-1].reason if self.refusals else "refused"
                self.notices.append(("error", f"flatten of {sym} refused: {reason}", {**fields, "reason": reason}))
        return commands

    # ----------------------------------------------------------------------------- intents

    def _apply(self, intents: list[OrderIntent]) -> list[Command]:
        if self.paused:
            # The operator paused the strategy: its wishes are dropped, while reconciliation,
            # mode-driven cancels and venue answers go on.
            return []
        if self.flattening:  # no new strategy orders on a symbol being flattened
            intents = [i for i in intents if i.symbol not in self.flattening]
        commands: list[Command] = []
        for intent in intents:
            if intent.tag:
                key = (intent.symbol, intent.tag)
                live = self.orders.by_tag(intent.symbol, intent.tag)
                if intent.qty and len(live) == 1 and _same_order(live[0], intent):
                    self.pending.pop(key, None)
                    continue  # already working exactly as desired (a strategy refresh)
                if live:
                    for order in live:
                        cancel = self.orders.cancel(order.client_order_id, self.now_ns)
                        if cancel is not None:
                            commands.append(cancel)
                    if intent.qty:
                        self.pending[key] = intent
                    else:
                        self.pending.pop(key, None)
                    continue
                self.pending.pop(key, None)
                if intent.qty == 0:
                    continue
            elif intent.qty == 0:
                continue
            command = self._place(intent)
            if command is not None:
                commands.append(command)
        commands += self._drain_pending()
        return commands

    def pause(self, paused: bool) -> None:
        """Operator pause: the strategy's wishes are dropped, including the re-quotes waiting
        for a cancel (`pending`); reconciliation, mode-driven cancels and venue answers go on."""
        self.paused = paused
        if paused:
            self.pending.clear()

    def _drain_pending(self) -> list[Command]:
        commands: list[Command] = []
        for key, intent in list(self.pending.items()):
            if not self.orders.by_tag(*key):
                del self.pending[key]
                command = self._place(intent)
                if command is not None:
                    commands.append(command)
        return commands

    def _place(self, intent: OrderIntent) -> PlaceOrder | None:
        status = self.symbol_status.get(intent.symbol, "TRADING")
        if status != "TRADING":  # the venue would refuse it: new orders only while TRADING
            self.refusals.append(Refusal(self.now_ns, intent, f"symbol status {status}"))
            return None
        view = self.views_by_symbol.get(intent.symbol)
        reference = None
        if view is not None:
            reference = view.best_ask if intent.side == "BUY" else view.best_bid
        decision = self.risk.check(
            intent,
            mode=self.mode,
            position=self.portfolio.qty(intent.symbol),
            working=self.orders.working(intent.symbol),
            reference_price=reference,
            now_ns=self.now_ns,
        )
        if not decision.ok:
            self._refused(intent, decision.reason)
            return None
        try:
            return self.orders.place(intent, self.now_ns)
        except OrderRefused as exc:
            self._refused(intent, str(exc))
            return None

    def _refused(self, intent: OrderIntent, reason: str) -> None:
        self.refusals.append(Refusal(self.now_ns, intent, reason))  # the recent ones, with detail
        key = reason.split(":", 1)[0]
        self.refusal_counts[key] = self.refusal_counts.get(key, 0) + 1

    def _mode_cancels(self) -> list[CancelOrder]:
        out = []
        for coid in self.risk.mode_cancels(self.mode, self.orders.working()):
            cancel = self.orders.cancel(coid, self.now_ns)
            if cancel is not None:
                out.append(cancel)
        if self.mode in (Mode.CANCEL_MAKERS, Mode.HALTED):
            self.pending = {k: v for k, v in self.pending.items() if v.is_taker and self.mode is not Mode.HALTED}
        return out

    # ----------------------------------------------------------------------------- outputs

    def drain_records(self) -> list[object]:
        """Everything to persist, oldest first, including order transitions not yet moved to
        ``records`` (a "sent" row must reach storage before its order is transmitted)."""
        out, self.records = self.records, []
        journal = self.orders.drain_journal()
        if journal:
            out.extend(journal)
        return out

    def feed_hash(self, h: Digest) -> None:
        """The engine's state hash (`epochbot.engine.trader_port.TraderPort`): every order and every
        symbol's position, in a fixed order, so a replay that reaches other orders hashes apart."""
        for o in sorted(self.orders.orders.values(), key=lambda o: o.client_order_id):
            h.update(
                f"{o.client_order_id}|{o.symbol}|{o.side}|{o.state.value}|{o.price}|{o.qty}|{o.filled_qty}|".encode()
            )
        for symbol in sorted(self.filters):
            h.update(f"{symbol}={self.portfolio.qty(symbol)}|".encode())

    def marks(self) -> dict[str, Fraction]:
        return {s: v.mid for s, v in self.views_by_symbol.items() if v.mid is not None}

    def views(self) -> dict[str, Any]:
        """For `epochbot.views.snapshot.SnapshotBuilder.build(engine, trading=trader)`."""
        marks = self.marks()
        return {
            "orders": self.orders.views(),
            "positions": self.portfolio.views(marks),
            "risk": self.risk.view(self.now_ns),
            "trading": trading_view(self),
        }


def _same_order(order: ManagedOrder, intent: OrderIntent) -> bool:
    return (
        not order.cancel_requested_ns
        and not order.cancel_wanted
        and order.filled_qty == 0
        and (order.side, order.order_type, order.price, order.qty, order.tif, order.reduce_only)
        == (intent.side, intent.order_type, intent.price, intent.qty, intent.tif, intent.reduce_only)
    )


def _with(view: MarketView, **changes: Any) -> MarketView:
    from dataclasses import replace

    return replace(view, **changes)

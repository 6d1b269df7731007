"""Deterministic backtests: the live engine and `Trader` driven by recorded or synthetic events.

`run_backtest` feeds every event to a real `epochbot.engine.engine.Engine` (which maintains the books
exactly as live), builds a `MarketView` whenever a symbol's top of book may have changed, and
runs the strategy through the same `Trader` (gates, order manager, portfolio) used live. The
venue is `SimulatedVenue`, which answers instantly and deterministically:

* taker orders (MARKET, or a limit that crosses: IOC/FOK/GTC) fill in full at the opposite best
  and pay ``taker_fee_bps``; an IOC/FOK that does not cross expires; a post-only order (GTX,
  LIMIT_MAKER) that would cross is rejected (-2010);
* resting orders fill in full at their own price, paying ``maker_fee_bps``, when a public
  trade prints *through* them (a buy when a trade prints below its price, a sell above).

The top of book is the engine's book when it is synced, else the last bookTicker (synthetic
streams need not carry depth). The trading mode is either fixed (``initial_mode``, changed by
`epochbot.model.events.OperatorSetMode` events in the stream) or follows the engine's confidence-driven
mode (``follow_engine_mode``, natural for captures).

`BacktestReport.pnl` is the portfolio's net PnL at the final mids, and it reconciles exactly:
``sum(-signed fill notional) - fees + position * final mid == pnl`` (see `reconcile`).

A capture (``epochbot.model.capture`` format) is driven the way `epochbot.offline.replay` does it: ``open`` rows
start a session, ``ws`` rows are decoded frames, ``rest`` depth rows answer the engine's snapshot
requests in recorded order and ``exchangeInfo`` rows fix the symbol filters.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from urllib.parse import parse_qs, urlsplit

from epochbot.book.book import OrderBook, VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.capture import CaptureError, LineStream, read_capture
from epochbot.model.modes import Mode
from epochbot.model.numeric import DecimalFormatError, UnitCodec, parse_units
from epochbot.offline.replay import ManualClock
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.money import to_decimal
from epochbot.trading.orders import ManagedOrder
from epochbot.trading.risk import RiskLimits
from epochbot.trading.state_view import quote_asset
from epochbot.trading.strategy import MarketView, Strategy, TradeTick
from epochbot.trading.trader import Trader
from epochbot.venues.binance.exchange_info import ExchangeInfoError, parse_exchange_info
from epochbot.venues.binance.wire import Ack, FrameError, ServerShutdown, decode_frame, decode_snapshot

__all__ = ["BacktestReport", "FillModel", "SimulatedVenue", "run_backtest", "run_backtest_capture"]


@dataclass(frozen=True, slots=True)
class FillModel:
    taker_fee_bps: Decimal = Decimal("4")
    maker_fee_bps: Decimal = Decimal("1")

    def fee(self, notional: Fraction, maker: bool) -> Fraction:
        bps = self.maker_fee_bps if maker else self.taker_fee_bps
        return notional * Fraction(bps) / 10_000


@dataclass
class BacktestReport:
    pnl: Decimal
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    max_drawdown: Decimal
    fills: list[tev.Fill]
    round_trips: int
    positions: dict[str, int]
    marks: dict[str, Fraction]
    mode_time_ns: dict[str, int]
    orders_placed: int
    refusals: dict[str, int]
    events: int
    filters: dict[str, SymbolFilters] = field(default_factory=dict)
    equity: list[tuple[int, Fraction]] = field(default_factory=list)  # (ts_ns, net PnL) at every change
    trips: list = field(default_factory=list)  # epochbot.trading.portfolio.RoundTrip, in order
    quote_asset: str = ""
    start_ns: int = 0
    end_ns: int = 0

    @property
    def trades(self) -> int:
        return len(self.fills)

    def stats(self, period_s: int | None = None):
        """Standard statistics (epochbot.trading.stats.EquityStats) from the equity series and trips."""
        from epochbot.trading.stats import summarise

        return summarise(self.equity, [t.pnl for t in self.trips], period_s)

    def position_strings(self) -> dict[str, str]:
        """Final positions in base units (decimal strings), every traded symbol."""
        return {
            s: (self.filters[s].qty_str(q) if s in self.filters else str(q)) for s, q in sorted(self.positions.items())
        }

    def per_symbol(self) -> list[dict]:
        """One row per traded symbol: fills, volume, trips, win rate, realised, fees, net PnL."""
        rows = []
        symbols = sorted({f.symbol for f in self.fills} | set(self.positions))
        for sym in symbols:
            f = self.filters.get(sym)
            fills = [x for x in self.fills if x.symbol == sym]
            trips = [t for t in self.trips if t.symbol == sym]
            volume = sum((f.notional(x.price, x.qty) for x in fills), Fraction(0)) if f else Fraction(0)
            fees = sum((Fraction(x.fee) for x in fills if not x.fee_asset), Fraction(0))
            cash = Fraction(0)
            for x in fills:
                cash -= f.notional(x.price, x.qty if x.side == "BUY" else -x.qty) if f else 0
            qty = self.positions.get(sym, 0)
            mark = self.marks.get(sym)
            value = (
                (Fraction(mark) / 10**f.price_decimals * f.qty(qty))
                if (f and qty and mark is not None)
                else Fraction(0)
            )
            wins = sum(1 for t in trips if t.pnl > 0)
            rows.append(
                {
                    "symbol": sym,
                    "fills": len(fills),
                    "volume": to_decimal(volume, 8),
                    "round_trips": len(trips),
                    "win_rate": (Decimal(wins) / Decimal(len(trips))).quantize(Decimal("0.0001")) if trips else None,
                    "fees": to_decimal(fees, 8),
                    "net_pnl": to_decimal(cash - fees + value, 8),
                    "position": f.qty_str(qty) if f else str(qty),
                }
            )
        return rows

    def reconcile(self) -> Decimal:
        """PnL recomputed from the fills alone: -signed notional - fees + position * mark."""
        total = Fraction(0)
        for fill in self.fills:
            f = self.filters[fill.symbol]
            signed = fill.qty if fill.side == "BUY" else -fill.qty
            total -= f.notional(fill.price, signed)
            if not fill.fee_asset:
                total -= Fraction(fill.fee)
        for symbol, qty in self.positions.items():
            if qty:
                total += self.marks[symbol] / 10 ** self.filters[symbol].price_decimals * self.filters[symbol].qty(qty)
        return to_decimal(total)

    def digest(self) -> str:
        """A hash of everything the run produced, for determinism checks."""
        h = hashlib.sha256()
        for fill in self.fills:
            h.update(
                f"{fill.ts_ns}|{fill.client_order_id}|{fill.side}|{fill.qty}|{fill.price}|{fill.fee}|{fill.is_maker}\n".encode()
            )
        h.update(f"{self.pnl}|{self.fees}|{self.max_drawdown}|{sorted(self.mode_time_ns.items())}".encode())
        return h.hexdigest()

    def as_dict(self) -> dict:
        return {
            "pnl": format(self.pnl, "f"),
            "realized": format(self.realized, "f"),
            "unrealized": format(self.unrealized, "f"),
            "fees": format(self.fees, "f"),
            "max_drawdown": format(self.max_drawdown, "f"),
            "trades": self.trades,
            "round_trips": self.round_trips,
            "positions": self.position_strings(),
            "mode_time_ms": {k: v / 1e6 for k, v in self.mode_time_ns.items()},
            "orders_placed": self.orders_placed,
            "refusals": dict(self.refusals),
            "events": self.events,
            "quote_asset": self.quote_asset,
            "statistics": _stats_dict(self.stats()),
            "per_symbol": [
                {k: (format(v, "f") if isinstance(v, Decimal) else v) for k, v in row.items()}
                for row in self.per_symbol()
            ],
        }


def _stats_dict(st) -> dict:
    def d(v):
        return None if v is None else format(v, "f")

    return {
        "max_drawdown": d(st.max_drawdown),
        "peak": d(st.peak),
        "trough": d(st.trough),
        "sharpe": d(st.sharpe),
        "sharpe_period_s": st.sharpe_period_s,
        "win_rate": d(st.win_rate),
        "wins": st.wins,
        "losses": st.losses,
        "round_trips": st.round_trips,
        "best_trip": d(st.best_trip),
        "worst_trip": d(st.worst_trip),
    }


class SimulatedVenue:
    """Instant, deterministic order handling against a top of book and public trades."""

    def __init__(self, fill_model: FillModel, filters: dict[str, SymbolFilters]) -> None:
        self.fill_model = fill_model
        self.filters = filters
        self.resting: dict[str, ManagedOrder] = {}  # client id -> order (read-only use)
        self._trade_seq = 0

    def place(self, order: ManagedOrder, bid: int | None, ask: int | None, now: int) -> list:
        coid = order.client_order_id
        opposite = ask if order.side == "BUY" else bid
        limit = order.price  # None for MARKET
        crosses = opposite is not None and (
            order.order_type == "MARKET"
            or (limit is not None and (limit >= opposite if order.side == "BUY" else limit <= opposite))
        )
        post_only = order.order_type == "LIMIT_MAKER" or order.tif == "GTX"
        if post_only and crosses:
            return [
                tev.OrderRejected(
                    client_order_id=coid, code=-2010, msg="Order would immediately match and take.", ts_ns=now
                )
            ]
        if crosses and opposite is not None:
            return [
                tev.OrderAccepted(client_order_id=coid, status="FILLED", ts_ns=now),
                self._fill(order, opposite, False, now),
            ]
        if order.order_type == "MARKET" or order.tif in ("IOC", "FOK"):
            return [tev.OrderAccepted(client_order_id=coid, status="EXPIRED", ts_ns=now)]
        self.resting[coid] = order
        return [tev.OrderAccepted(client_order_id=coid, status="NEW", ts_ns=now)]

    def cancel(self, coid: str, now: int) -> list:
        if self.resting.pop(coid, None) is None:
            return [tev.CancelRejected(client_order_id=coid, code=-2011, msg="Unknown order sent.", ts_ns=now)]
        return [tev.OrderUpdate(client_order_id=coid, status="CANCELED", ts_ns=now)]

    def query(self, coid: str, order: ManagedOrder | None, now: int) -> list:
        if order is None:
            return [tev.OrderQueryResult(client_order_id=coid, found=False, ts_ns=now)]
        return [
            tev.OrderQueryResult(
                client_order_id=coid, found=True, status=order.state.value, filled_qty=order.filled_qty, ts_ns=now
            )
        ]

    def on_trade(self, symbol: str, price: int, now: int) -> list:
        out = []
        for coid, order in sorted(self.resting.items(), key=lambda kv: (kv[1].created_ns, kv[0])):
            limit = order.price
            if order.symbol != symbol or limit is None:  # only limit orders rest
                continue
            through = price < limit if order.side == "BUY" else price > limit
            if through:
                del self.resting[coid]
                out.append(self._fill(order, limit, True, now))
        return out

    def _fill(self, order: ManagedOrder, price: int, maker: bool, now: int) -> tev.Fill:
        self._trade_seq += 1
        f = self.filters[order.symbol]
        qty = order.remaining
        fee = to_decimal(self.fill_model.fee(f.notional(price, qty), maker))
        return tev.Fill(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side="BUY" if order.side == "BUY" else "SELL",
            qty=qty,
            price=price,
            fee=fee,
            is_maker=maker,
            trade_id=f"sim-{self._trade_seq}",
            ts_ns=now,
        )


class _SessionStart:
    """Marker from a capture's ``open`` row."""

    __slots__ = ("url", "ts")

    def __init__(self, url: str, ts: int) -> None:
        self.url, self.ts = url, ts


class _Run:
    def __init__(self, strategy, fill_model, filters, limits, initial_mode, follow_engine_mode, venue_rules, timer_ms):
        self.clock = ManualClock()
        self.engine = Engine(
            EngineConfig(venue=venue_rules, track_new_symbols=True, snapshot_on_subscribe=False), self.clock
        )
        self.filters: dict[str, SymbolFilters] = dict(filters or {})
        self.trader = Trader(strategy, self.filters, limits=limits or RiskLimits(), mode=initial_mode)
        self.venue = SimulatedVenue(fill_model, self.filters)
        self.follow = follow_engine_mode
        self.mode = initial_mode if not follow_engine_mode else self.engine.mode
        self.trader.mode = self.mode
        self.mode_time: dict[str, int] = defaultdict(int)
        self.mode_since: int | None = None
        self.peak = Fraction(0)
        self.max_dd = Fraction(0)
        self.equity: list[tuple[int, Fraction]] = []
        self.start_ns = 0
        self.events = 0
        self.timer_ns = timer_ms * 1_000_000
        self.next_timer: int | None = None
        self.answers: dict[str, deque] = defaultdict(deque)
        self.tops: dict[str, tuple[int | None, int | None]] = {}

    # ------------------------------------------------------------------ driving

    def feed(self, event) -> None:
        now = getattr(event, "recv_ts", 0) or getattr(event, "ts", 0) or self.clock.now
        if now < self.clock.now:
            now = self.clock.now  # recorded clocks can step back; time here never does
        self._advance_time(now)
        if type(event) is _SessionStart:
            self._engine(
                self.engine.begin_session("capture: connection opened")
                if (self.engine.epoch == 0 or self.engine.session_open)
                else ()
            )
            self._engine(self.engine.handle(ev.SessionOpened(epoch=self.engine.epoch, recv_ts=now, url=event.url)))
            self._engine(self.engine.handle(ev.SubscriptionConfirmed(epoch=self.engine.epoch, recv_ts=now)))
            return
        if type(event) is ev.SnapshotReady and event.request_id == 0:
            self.answers[event.symbol].append(event)
            self._deliver_answers()
            return
        if type(event) is ev.SymbolSpec and event.symbol not in self.filters:
            self.filters[event.symbol] = SymbolFilters.from_strings(
                event.symbol, event.tick_size, event.step_size, min_notional=event.min_notional
            )
        if event.kind == "market" or event.kind == "control":
            self.events += 1
            self._engine(self.engine.handle(event))
        if type(event) is ev.OperatorSetMode and not self.follow:
            from epochbot.model.modes import parse_mode

            self._set_mode(parse_mode(event.mode), now)
        elif self.follow:
            self._set_mode(self.engine.mode, now)
        symbol = getattr(event, "symbol", None)
        if type(event) is ev.AggTrade:
            self._on_trade(event, now)
        elif symbol and type(event) in (ev.DepthDiff, ev.BookTicker, ev.SnapshotReady):
            self._on_top(symbol, now)
        self._mark(now)

    def _engine(self, commands) -> None:
        for command in commands or ():
            if type(command) is ev.FetchSnapshot:
                self._deliver_answers()

    def _deliver_answers(self) -> None:
        for symbol, queue in self.answers.items():
            state = self.engine.symbols.get(symbol)
            if queue and state is not None and state.snapshot_request:
                answer = queue.popleft()
                answer = ev.SnapshotReady(
                    epoch=self.engine.epoch,
                    recv_ts=self.clock.now,
                    symbol=symbol,
                    request_id=state.snapshot_request,
                    last_update_id=answer.last_update_id,
                    bids=answer.bids,
                    asks=answer.asks,
                    exchange_ts=answer.exchange_ts,
                )
                self._engine(self.engine.handle(answer))
                self._on_top(symbol, self.clock.now)

    def _advance_time(self, now: int) -> None:
        if self.mode_since is not None:
            self.mode_time[self.mode.value] += now - self.mode_since
        self.mode_since = now
        self.clock.now = now
        if self.timer_ns:
            if self.next_timer is None:
                self.next_timer = now + self.timer_ns
            while now >= self.next_timer:
                # The engine's own timer: confidence and the trading mode evolve as live.
                self.clock.now = self.next_timer
                self._engine(self.engine.handle(ev.TimerTick(recv_ts=self.next_timer)))
                if self.follow:
                    self._set_mode(self.engine.mode, self.next_timer)
                self._run(self.trader.on_timer(self.next_timer))
                self.next_timer += self.timer_ns
            self.clock.now = now

    def _set_mode(self, mode: Mode, now: int) -> None:
        if mode is not self.mode:
            self.mode = mode
            self._run(self.trader.set_mode(mode, now))

    def _filters_for(self, symbol: str) -> SymbolFilters | None:
        f = self.filters.get(symbol)
        if f is None:
            book = self.engine.symbols[symbol].book if symbol in self.engine.symbols else None
            if book is None or book.codec is None:
                return None
            f = self.filters[symbol] = SymbolFilters(
                symbol, book.codec.price_decimals, book.codec.qty_decimals, tick=book.tick or 1
            )
        return f

    def _top(self, symbol: str) -> tuple[int | None, int | None, OrderBook | None]:
        state = self.engine.symbols.get(symbol)
        if state is None:
            return None, None, None
        if state.book.synced:
            return state.book.best_bid, state.book.best_ask, state.book
        t = state.ticker
        f = self._filters_for(symbol)
        if t is None or f is None:
            return None, None, None
        try:
            return parse_units(t.bid_price, f.price_decimals), parse_units(t.ask_price, f.price_decimals), None
        except DecimalFormatError:
            return None, None, None

    def _on_top(self, symbol: str, now: int) -> None:
        f = self._filters_for(symbol)
        if f is None:
            return
        bid, ask, book = self._top(symbol)
        if bid is None or ask is None:
            return
        self.tops[symbol] = (bid, ask)
        if book is not None:
            view = MarketView.from_book(book, ts_ns=now)
        else:
            view = MarketView(
                symbol, now, UnitCodec(f.price_decimals, f.qty_decimals), f.tick, bid, ask, ((bid, 0),), ((ask, 0),)
            )
        self._run(self.trader.on_view(view))

    def _on_trade(self, trade: ev.AggTrade, now: int) -> None:
        f = self._filters_for(trade.symbol)
        if f is None:
            return
        try:
            price = parse_units(trade.price, f.price_decimals)
            qty = parse_units(trade.qty, f.qty_decimals)
        except DecimalFormatError:
            return
        self._process(self.venue.on_trade(trade.symbol, price, now))
        self._run(
            self.trader.on_trade(TradeTick(trade.symbol, price, qty, "SELL" if trade.buyer_is_maker else "BUY", now))
        )

    def _run(self, commands) -> None:
        work = deque(commands)
        while work:
            command = work.popleft()
            now = self.clock.now
            if type(command) is ev.PlaceOrder:
                order = self.trader.orders.orders[command.client_order_id]
                bid, ask = self.tops.get(order.symbol, (None, None))
                answers = self.venue.place(order, bid, ask, now)
            elif type(command) is ev.CancelOrder:
                answers = self.venue.cancel(command.client_order_id, now)
            elif type(command) is tev.QueryOrder:
                answers = self.venue.query(
                    command.client_order_id, self.trader.orders.orders.get(command.client_order_id), now
                )
            else:
                continue
            for answer in answers:
                work.extend(self.trader.on_event(answer))

    def _process(self, answers) -> None:
        for answer in answers:
            self._run(self.trader.on_event(answer))

    def _mark(self, now: int) -> None:
        marks = self.trader.marks()
        equity = sum((pos.net_pnl(marks.get(sym)) for sym, pos in self.trader.portfolio.positions.items()), Fraction(0))
        if not self.start_ns:
            self.start_ns = now
        if not self.equity or self.equity[-1][1] != equity:
            self.equity.append((now, equity))
        self.peak = max(self.peak, equity)
        self.max_dd = max(self.max_dd, self.peak - equity)

    def report(self) -> BacktestReport:
        trader = self.trader
        marks = trader.marks()
        realized = unrealized = fees = pnl = Fraction(0)
        positions = {}
        for sym, pos in trader.portfolio.positions.items():
            mark = marks.get(sym)
            realized += pos.realized
            fees += pos.fees
            if pos.qty and mark is not None:
                unrealized += pos.unrealized(mark)
            pnl += pos.net_pnl(mark)
            positions[sym] = pos.qty
        trips = self._trips
        return BacktestReport(
            pnl=to_decimal(pnl),
            realized=to_decimal(realized),
            unrealized=to_decimal(unrealized),
            fees=to_decimal(fees),
            max_drawdown=to_decimal(self.max_dd),
            fills=list(trader.fills),
            round_trips=trips,
            positions=positions,
            marks=marks,
            mode_time_ns=dict(self.mode_time),
            orders_placed=trader.orders.counters["placed"],
            refusals=dict(trader.refusal_counts),
            events=self.events,
            filters=dict(self.filters),
            equity=self._equity_to_end(),
            trips=list(trader.round_trips),
            quote_asset=quote_asset(self.filters),
            start_ns=self.start_ns,
            end_ns=self.clock.now,
        )

    def _equity_to_end(self) -> list[tuple[int, Fraction]]:
        """The equity series, closed with its last value at the end of the run (so curves and
        per-period statistics cover the whole run, not only up to the last change)."""
        out = list(self.equity)
        if out and self.clock.now > out[-1][0]:
            out.append((self.clock.now, out[-1][1]))
        return out

    @property
    def _trips(self) -> int:
        count = 0
        qty: dict[str, int] = defaultdict(int)
        for fill in self.trader.fills:
            old = qty[fill.symbol]
            new = old + (fill.qty if fill.side == "BUY" else -fill.qty)
            if old and (new == 0 or (old > 0) != (new > 0)):
                count += 1
            qty[fill.symbol] = new
        return count


def run_backtest(
    events: Iterable,
    strategy: Strategy,
    fill_model: FillModel | None = None,
    *,
    filters: dict[str, SymbolFilters] | None = None,
    limits: RiskLimits | None = None,
    initial_mode: Mode = Mode.NORMAL,
    follow_engine_mode: bool = False,
    venue: VenueRules = VenueRules.SPOT,
    timer_ms: int = 1000,
) -> BacktestReport:
    """Run ``strategy`` over engine events (market events, control events, `OperatorSetMode`).

    A `epochbot.model.events.SnapshotReady` with ``request_id == 0`` is a recorded answer: it is handed
    to the engine when the engine asks for that symbol's snapshot.
    """
    run = _Run(strategy, fill_model or FillModel(), filters, limits, initial_mode, follow_engine_mode, venue, timer_ms)
    for event in events:
        run.feed(event)
    return run.report()


def run_backtest_capture(
    path: str,
    strategy: Strategy,
    fill_model: FillModel | None = None,
    *,
    filters: dict[str, SymbolFilters] | None = None,
    limits: RiskLimits | None = None,
    follow_engine_mode: bool = True,
    initial_mode: Mode = Mode.NORMAL,
    timer_ms: int = 1000,
    progress=None,
) -> BacktestReport:
    """Backtest over a capture file, driven like `epochbot.offline.replay` (malformed rows are skipped).

    ``progress(done_bytes, total_bytes)`` is called now and then (every 2,048 events).
    """
    with open(path, "rb") as raw:
        # A ``.gz`` capture is read through gzip; progress is measured on the file itself.
        stream: LineStream = gzip.GzipFile(fileobj=raw) if str(path).endswith(".gz") else raw
        header, rows = read_capture(stream)
        rules = VenueRules.SPOT if header.venue == "binance-spot" else VenueRules.USDM
        run = _Run(
            strategy, fill_model or FillModel(), filters, limits, initial_mode, follow_engine_mode, rules, timer_ms
        )
        total = _size(raw)
        for n, event in enumerate(_capture_events(rows, run.engine)):
            run.feed(event)
            if progress is not None and not n & 2047:
                progress(raw.tell(), total)
        if progress is not None:
            progress(total, total)
        return run.report()


def _size(stream) -> int:
    import os

    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError):
        return 0


def _capture_events(rows: Iterator, engine: Engine) -> Iterator:
    for row in rows:
        if type(row) is CaptureError:
            continue
        now = int(row.ts * 1e9)
        if row.kind == "open":
            yield _SessionStart(row.url, now)
        elif row.kind == "close":
            yield ev.Disconnected(epoch=engine.epoch, recv_ts=now, reason=row.data or "closed")
        elif row.kind == "ws":
            try:
                event = decode_frame(row.data, engine.epoch, now)
            except FrameError:
                continue
            if event is None or type(event) in (Ack, ServerShutdown):
                continue
            yield event
        elif row.kind == "rest":
            parts = urlsplit(row.url)
            if parts.path.endswith("/depth"):
                symbol = (parse_qs(parts.query).get("symbol") or [""])[0].upper()
                try:
                    last_id, bids, asks, exch_ts = decode_snapshot(row.data)
                except FrameError:
                    continue
                if symbol:
                    yield ev.SnapshotReady(
                        epoch=engine.epoch,
                        recv_ts=now,
                        symbol=symbol,
                        request_id=0,
                        last_update_id=last_id,
                        bids=bids,
                        asks=asks,
                        exchange_ts=exch_ts,
                    )
            elif parts.path.endswith("/exchangeInfo"):
                try:
                    info = parse_exchange_info(row.data)
                except ExchangeInfoError:
                    continue  # as a malformed depth row: the book infers its scale from the snapshot
                for listed in info.filters.values():
                    yield listed.spec(recv_ts=now)

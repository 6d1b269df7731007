"""Immutable pictures of the world for readers outside the strategy loop.

The loop builds a `WorldSnapshot` at a fixed rate (10-20 Hz) and publishes it by replacing one
reference; the dashboard, the headless status line, ``/status`` and ``/metrics`` only ever read
the latest snapshot. Nothing here refers to a live engine object: every field is a str, a number,
a tuple or a frozen dataclass, so a reader on another thread can never see a half-updated book.

Prices and sizes are decimal strings for display plus integer units where a widget needs to
scale something (depth bars); floats appear only in timings and the confidence score.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from epochbot.engine.confidence import Reason
from epochbot.engine.telemetry import EMPTY_STATS, LatencyStats
from epochbot.model.numeric import format_units

__all__ = [
    "BookResyncView",
    "BookSnapshot",
    "BookSummary",
    "BreakerView",
    "FillView",
    "PnLView",
    "TradingView",
    "EpochView",
    "LatencyView",
    "LevelView",
    "LogView",
    "ModeView",
    "OrderView",
    "PositionView",
    "RiskView",
    "SnapshotBuilder",
    "percentiles",
    "TradeView",
    "WorldSnapshot",
    "percentiles",
]


@dataclass(frozen=True, slots=True)
class LevelView:
    price: str
    qty: str
    cum: str
    qty_units: int
    cum_units: int


@dataclass(frozen=True, slots=True)
class TradeView:
    ts_ms: int
    price: str
    qty: str
    side: str  # "buy" (taker bought) | "sell"


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    symbol: str
    state: str  # empty | buffering | synced | invalid
    last_update_id: int
    bids: tuple[LevelView, ...]
    asks: tuple[LevelView, ...]
    best_bid: str | None
    best_ask: str | None
    spread: str | None
    mid: str | None
    gaps: int
    resyncs: int
    problem: str
    silence_ms: float
    trades: tuple[TradeView, ...] = ()
    mark_price: str | None = None
    funding_rate: str | None = None
    # The last closed range bars, oldest first: (close_ts_ms, open, high, low, close) strings.
    range_bars: tuple[tuple[int, str, str, str, str], ...] = ()
    # Display precision: fractional digits of the symbol's tick and step (-1: not known yet).
    price_decimals: int = -1
    qty_decimals: int = -1
    # Recent mids for the price pane, oldest first: (ts_ns, mid) strings, one per publish.
    mid_history: tuple[tuple[int, str], ...] = ()

    @property
    def trustworthy(self) -> bool:
        return self.state == "synced"


@dataclass(frozen=True, slots=True)
class BookSummary:
    """One line of the market overview: rebuilt for every symbol at every snapshot (cheap:
    integers, no level formatting; the reader formats prices with ``price_decimals``)."""

    symbol: str
    state: str
    best_bid: int | None  # price units
    best_ask: int | None
    price_decimals: int  # -1: scale not known yet
    last_update_id: int
    resyncs: int
    gaps: int
    silence_ms: float
    awaiting_weight: bool = False  # its snapshot waits for request weight (core/runtime/budget.py)


@dataclass(frozen=True, slots=True)
class EpochView:
    epoch: int
    cause: str
    opened_at_ns: int
    closed_at_ns: int
    close_cause: str
    resync_ms: float | None
    phases_ms: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class BookResyncView:
    symbol: str
    cause: str
    epoch: int
    at_ns: int
    resync_ms: float | None


@dataclass(frozen=True, slots=True)
class LatencyView:
    transport: LatencyStats
    queue: LatencyStats
    silence_ms: float
    silence_by_symbol: Mapping[str, float]
    # Recent samples (oldest first), one per published snapshot, for sparklines.
    transport_history: tuple[float, ...] = ()
    queue_history: tuple[float, ...] = ()
    silence_history: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class ModeView:
    mode: str
    source: str
    cause: str
    at_ns: int
    operator_floor: str
    paused: bool
    history: tuple[tuple[str, int, str, str], ...] = ()  # (mode, at_ns, cause, source), newest last


@dataclass(frozen=True, slots=True)
class OrderView:
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    price: str
    qty: str
    filled: str
    status: str
    updated_ns: int


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    qty: str
    entry_price: str
    unrealized_pnl: str
    realized_pnl: str


@dataclass(frozen=True, slots=True)
class RiskView:
    session_pnl: str = "0"
    daily_pnl: str = "0"
    breakers: Mapping[str, str] = field(default_factory=dict)  # symbol -> "ok" | "tripped until ..."
    limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FillView:
    """One execution of our order, in decimal strings (quote-asset fee unless ``fee_asset``)."""

    ts_ns: int
    client_order_id: str
    symbol: str
    side: str  # BUY | SELL
    qty: str
    price: str
    fee: str
    fee_asset: str  # "" = the quote asset
    is_maker: bool
    trade_id: str


@dataclass(frozen=True, slots=True)
class BreakerView:
    """A circuit breaker: a symbol's, or the portfolio's ``session-loss`` / ``daily-loss`` latch."""

    name: str  # symbol, or "session-loss" | "daily-loss"
    tripped: bool
    cause: str  # "" while not tripped
    until_ns: int  # 0 when not tripped or latched until the session/day ends


@dataclass(frozen=True, slots=True)
class PnLView:
    """Money in the quote asset, decimal strings. ``net`` = realized + unrealized + funding - fees;
    ``session``/``daily`` are the risk gate's realised-net-of-fees sums (they feed the loss limits)."""

    quote_asset: str = ""
    session: str = "0"
    daily: str = "0"
    realized: str = "0"
    unrealized: str = "0"
    fees: str = "0"
    funding: str = "0"
    net: str = "0"


@dataclass(frozen=True, slots=True)
class TradingView:
    """Everything the operator needs about trading, in one place (None on a snapshot = no trader).

    ``working_orders`` are only the orders that may still execute; ``orders_by_outcome`` counts
    every order of this session by its latest terminal state (FILLED, CANCELED, REJECTED,
    EXPIRED) plus ``placed``; ``fill_count`` counts this session's fills, ``recent_fills`` the
    last ones, newest first.
    """

    pnl: PnLView = field(default_factory=PnLView)
    breakers: tuple[BreakerView, ...] = ()
    working_orders: tuple[OrderView, ...] = ()
    fill_count: int = 0
    recent_fills: tuple[FillView, ...] = ()
    orders_by_outcome: Mapping[str, int] = field(default_factory=dict)
    refusals: int = 0
    refusal_reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def tripped(self) -> tuple[BreakerView, ...]:
        return tuple(b for b in self.breakers if b.tripped)


@dataclass(frozen=True, slots=True)
class LogView:
    ts_ns: int
    level: str
    epoch: int
    msg: str
    fields: str


@dataclass(frozen=True, slots=True)
class WorldSnapshot:
    seq: int
    at_ns: int
    venue: str
    epoch: int
    session_open: bool
    confidence: float
    reasons: tuple[Reason, ...]
    confidence_history: tuple[float, ...]
    mode: ModeView
    books: tuple[BookSnapshot, ...]
    epochs: tuple[EpochView, ...]
    book_resyncs: tuple[BookResyncView, ...]
    latency: LatencyView
    ttcr_ms: Mapping[str, float]
    counters: Mapping[str, int]
    orders: tuple[OrderView, ...] = ()
    positions: tuple[PositionView, ...] = ()
    risk: RiskView = field(default_factory=RiskView)
    log: tuple[LogView, ...] = ()
    fatal: str | None = None
    # Whole-run aggregates (the headless report): {"p50", "p99", "max"} in ms, and the lowest
    # confidence seen since the first resynchronisation.
    queue_delay_run: Mapping[str, float] = field(default_factory=dict)
    transport_latency_run: Mapping[str, float] = field(default_factory=dict)
    confidence_min: float = 1.0
    all_epochs: tuple[EpochView, ...] = ()
    state_hash: str = ""  # Engine.state_hash(): the same function the replay report uses
    # Every symbol, current at every snapshot (``books`` may lag for unfocused books when there
    # are many: see SnapshotBuilder). Sorted by symbol like ``books``.
    summary: tuple[BookSummary, ...] = ()
    weight_used: int = 0  # the request-weight planner's view of this minute
    weight_cap: int = 0
    # Trading state (positions/PnL/breakers/orders/fills); None when no trader runs.
    trading: TradingView | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(b.symbol for b in self.books)

    def book(self, symbol: str) -> BookSnapshot | None:
        for b in self.books:
            if b.symbol == symbol:
                return b
        return None


def percentiles(values) -> dict[str, float]:
    """count, p50, p99 and max of ``values`` (ms, rounded to the microsecond), as reports show them."""
    data = sorted(values)
    if not data:
        return {"count": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    n = len(data)

    def q(p: float) -> float:
        return round(data[min(n - 1, max(0, -(-int(p * n * 1000) // 1000) - 1))], 3)

    return {"count": n, "p50": q(0.50), "p99": q(0.99), "max": round(data[-1], 3)}


class SnapshotBuilder:
    """Builds snapshots from an engine; keeps the short histories that feed the sparklines.

    Called only from the strategy loop (it reads engine state).

    Many symbols: a full `BookSnapshot` (formatted levels, trades, range bars) costs ~0.2 ms,
    so rebuilding 500 of them 20 times a second would stall the loop for 100 ms at a time.
    Each build therefore re-makes the `BookSnapshot` of at most ``books_per_build`` changed
    books (round-robin, so every book is refreshed within ``symbols / books_per_build``
    builds) plus every changed book in ``focus`` (the symbols a reader shows in full, e.g. the
    dashboard's selected one; replace the frozenset from any thread) and every book whose
    state changed (synced or not is never stale); the others keep their previous one.
    ``summary`` (state, best prices, resyncs, silence) is current for every symbol at every build.
    """

    def __init__(
        self, venue: str, depth: int = 20, history: int = 120, log_lines: int = 200, books_per_build: int = 4
    ) -> None:
        self.venue = venue
        self.books_per_build = books_per_build
        self.focus: frozenset[str] = frozenset()
        self._book_cache: dict[str, tuple[tuple, BookSnapshot]] = {}
        self._sorted: tuple[str, ...] = ()
        self._rr = 0
        self._log_cache: dict[int, tuple[object, LogView]] = {}
        self.depth = depth
        self.log_lines = log_lines
        self.seq = 0
        self._transport: deque[float] = deque(maxlen=history)
        self._queue: deque[float] = deque(maxlen=history)
        self._silence: deque[float] = deque(maxlen=history)
        self._confidence: deque[float] = deque(maxlen=history)
        self._mids: dict[str, deque] = {}  # symbol -> (ts_ns, mid) once a second, for the price pane
        self._mids_view: dict[str, tuple] = {}
        self._hash = ""
        self._hash_at = 0

    MID_EVERY_NS = 1_000_000_000
    MID_SAMPLES = 600  # ten minutes

    def _mid_history(self, symbol: str, state, now: int) -> tuple:
        book = state.book
        samples = self._mids.get(symbol)
        if samples is None:
            samples = self._mids[symbol] = deque(maxlen=self.MID_SAMPLES)
        if (
            book.synced
            and book.codec is not None
            and book.best_bid is not None
            and book.best_ask is not None
            and (not samples or now - samples[-1][0] >= self.MID_EVERY_NS)
        ):
            samples.append((now, format_units((book.best_bid + book.best_ask) * 5, book.codec.price_decimals + 1)))
            self._mids_view[symbol] = tuple(samples)
        return self._mids_view.get(symbol, ())

    # Hashing every book costs ~1 ms per 1000-level book: ``state_hash`` is recomputed at most
    # this often (and on every ``exact`` build, e.g. the final one the report is made from).
    hash_interval_ns = 5_000_000_000

    def _log_views(self, records) -> tuple[LogView, ...]:
        """The last ``log_lines`` records as views, each formatted once (not at every build)."""
        n = len(records)
        recent = [records[i] for i in range(max(0, n - self.log_lines), n)]
        cache = self._log_cache
        fresh: dict[int, tuple[object, LogView]] = {}
        out = []
        for r in recent:
            hit = cache.get(id(r))
            view = hit[1] if hit is not None and hit[0] is r else _log_view(r)
            fresh[id(r)] = (r, view)
            out.append(view)
        self._log_cache = fresh
        return tuple(out)

    def build(self, engine, trading=None, *, exact: bool = False) -> WorldSnapshot:
        now = engine.clock()
        if exact or not self._hash or now - self._hash_at >= self.hash_interval_ns:
            self._hash, self._hash_at = engine.state_hash(), now
        now_s = now // 1_000_000_000
        tel = engine.telemetry
        transport = tel.transport.stats(now_s) if tel.transport.total else EMPTY_STATS
        queue = tel.queue.stats(now_s) if tel.queue.total else EMPTY_STATS
        silence_ms = round(tel.silence_ns(now) / 1e6, 3) if engine.session_open else 0.0
        self._transport.append(transport.last)
        self._queue.append(queue.last)
        self._silence.append(silence_ms)
        self._confidence.append(engine.confidence.score)
        self.seq += 1

        books = []
        summary = []
        silence_by_symbol = {}
        if len(self._sorted) != len(engine.symbols):
            self._sorted = tuple(sorted(engine.symbols))
        order = self._sorted
        resync_counts: dict[str, int] = {}
        for r in engine.book_resyncs:
            resync_counts[r.symbol] = resync_counts.get(r.symbol, 0) + 1
        waiting = set(getattr(engine, "budget_waiting", ()))
        cache = self._book_cache
        focus = self.focus
        n = len(order)
        budget = (
            self.books_per_build if n > self.books_per_build and not exact else n
        )  # exact (final report): every book
        start = self._rr % n if n else 0
        symbols = engine.symbols
        silence_ns = tel.silence_ns
        last_range_bar = engine.market.last_range_bar
        summaries: dict[str, BookSummary] = {}
        for i in range(n):  # round-robin from `start`: who gets this build's rebuild budget
            symbol = order[(start + i) % n]
            state = symbols[symbol]
            book = state.book
            book_state = book.state.value
            resyncs = resync_counts.get(symbol, 0)
            sil = round(silence_ns(now, symbol) / 1e6, 3)
            silence_by_symbol[symbol] = sil
            codec = book.codec
            summaries[symbol] = BookSummary(
                symbol,
                book_state,
                book.best_bid,
                book.best_ask,
                codec.price_decimals if codec is not None else -1,
                book.last_update_id,
                resyncs,
                book.gaps,
                sil,
                symbol in waiting,
            )
            mids = self._mid_history(symbol, state, now)
            trades = state.trades
            last_bar = last_range_bar(symbol)
            key = (
                book_state,
                book.last_update_id,
                book.gaps,
                resyncs,
                id(trades[-1]) if trades else 0,
                id(state.mark),
                id(last_bar) if last_bar is not None else 0,
                book.last_problem,
                id(codec),
                mids[-1][0] if mids else 0,
            )
            cached = cache.get(symbol)
            if cached is not None and cached[0] == key:
                continue
            # A change of state (synced <-> not) is never deferred: readers decide on it.
            state_changed = cached is not None and cached[1].state != book_state
            if cached is None or state_changed or symbol in focus or budget > 0:
                if symbol not in focus and cached is not None and not state_changed:
                    budget -= 1
                    self._rr = (start + i + 1) % n
                cache[symbol] = (key, _book_snapshot(state, self.depth, sil, engine, resyncs, mids))
        books = [cache[symbol][1] for symbol in order]
        summary = [summaries[symbol] for symbol in order]
        silence_by_symbol = {symbol: silence_by_symbol[symbol] for symbol in order}
        modes = engine.modes
        last_change = modes.history[-1]
        mode = ModeView(
            mode=modes.effective.value,
            source=last_change.source,
            cause=last_change.cause,
            at_ns=last_change.at_ns,
            operator_floor=modes.operator.value,
            paused=engine.paused,
            history=tuple((c.mode.value, c.at_ns, c.cause, c.source) for c in list(modes.history)[-50:]),
        )
        epochs_all = tuple(
            EpochView(
                r.epoch, r.cause, r.opened_ns or r.requested_ns, r.closed_ns, r.close_cause, r.resync_ms, r.phases_ms()
            )
            for r in engine.epochs[-1000:]
        )
        epochs = epochs_all[-50:]
        resync_views = tuple(
            BookResyncView(r.symbol, r.cause, r.epoch, r.detected_ns, r.resync_ms)
            for r in list(engine.book_resyncs)[-50:]
        )
        log = self._log_views(engine.log)
        extra = trading.views() if trading is not None else {}
        return WorldSnapshot(
            seq=self.seq,
            at_ns=now,
            venue=self.venue,
            epoch=engine.epoch,
            session_open=engine.session_open,
            confidence=engine.confidence.score,
            reasons=engine.confidence.reasons,
            confidence_history=tuple(self._confidence),
            mode=mode,
            books=tuple(books),
            epochs=epochs,
            book_resyncs=resync_views,
            latency=LatencyView(
                transport,
                queue,
                silence_ms,
                silence_by_symbol,
                tuple(self._transport),
                tuple(self._queue),
                tuple(self._silence),
            ),
            ttcr_ms=percentiles(engine.ttcr_ms),
            counters=dict(engine.counters),
            orders=extra.get("orders", ()),
            positions=extra.get("positions", ()),
            risk=extra.get("risk", RiskView()),
            log=log,
            fatal=engine.fatal,
            queue_delay_run=tel.queue.run_stats().as_dict(),
            transport_latency_run=tel.transport.run_stats().as_dict(),
            confidence_min=engine.confidence_min,
            all_epochs=epochs_all,
            state_hash=self._hash,
            summary=tuple(summary),
            weight_used=getattr(engine, "budget_used", 0),
            weight_cap=getattr(engine, "budget_cap", 0),
            trading=extra.get("trading"),
        )


def _log_view(r) -> LogView:
    return LogView(r.ts_ns, r.level, r.epoch, r.msg, " ".join(f"{k}={v}" for k, v in r.fields.items()))


def _book_snapshot(
    state, depth: int, silence_ms: float, engine, resyncs: int | None = None, mid_history: tuple = ()
) -> BookSnapshot:
    book = state.book
    codec = book.codec
    bids: tuple[LevelView, ...] = ()
    asks: tuple[LevelView, ...] = ()
    best_bid = best_ask = spread = mid = None
    if codec is not None and (book.bids or book.asks):
        top_bids, top_asks = book.top(depth)
        bids = _levels(top_bids, codec)
        asks = _levels(top_asks, codec)
        if book.best_bid is not None:
            best_bid = codec.price_str(book.best_bid)
        if book.best_ask is not None:
            best_ask = codec.price_str(book.best_ask)
        if book.best_bid is not None and book.best_ask is not None:
            spread = codec.price_str(book.best_ask - book.best_bid)
            # mid may need one more decimal than the tick: (a+b)/2 exactly
            total = book.best_ask + book.best_bid
            mid = format_units(total * 5, codec.price_decimals + 1)
    trades = tuple(
        TradeView(t.trade_ts, t.price, t.qty, "sell" if t.buyer_is_maker else "buy") for t in reversed(state.trades)
    )[:20]
    mark = state.mark
    return BookSnapshot(
        symbol=book.symbol,
        state=book.state.value,
        last_update_id=book.last_update_id,
        bids=bids,
        asks=asks,
        best_bid=best_bid,
        best_ask=best_ask,
        spread=spread,
        mid=mid,
        gaps=book.gaps,
        resyncs=sum(1 for r in engine.book_resyncs if r.symbol == book.symbol) if resyncs is None else resyncs,
        problem=book.last_problem,
        silence_ms=silence_ms,
        trades=trades,
        mark_price=mark.mark_price if mark else None,
        funding_rate=mark.funding_rate if mark else None,
        range_bars=engine.market.range_bar_views(book.symbol, RANGE_BARS_IN_SNAPSHOT),
        price_decimals=codec.price_decimals if codec is not None else -1,
        qty_decimals=codec.qty_decimals if codec is not None else -1,
        mid_history=mid_history,
    )


RANGE_BARS_IN_SNAPSHOT = 50


# Longest first: "FDUSD" must win over "USD"-anything, "USDT" over "USD".
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BRL", "BTC", "ETH", "BNB")


def quote_asset(symbols) -> str:
    """The quote asset of the traded symbols (e.g. ``USDT``); ``"quote"`` when they differ or
    are unknown (money is then still exact, only its unit is not named)."""
    found = set()
    for symbol in symbols:
        asset = next((q for q in QUOTE_ASSETS if symbol.endswith(q) and len(symbol) > len(q)), "")
        found.add(asset)
    if len(found) == 1:
        (asset,) = found
        return asset or "quote"
    return "quote" if found else ""


def _levels(levels: list[tuple[int, int]], codec) -> tuple[LevelView, ...]:
    out = []
    cum = 0
    for price, qty in levels:
        cum += qty
        out.append(LevelView(codec.price_str(price), codec.qty_str(qty), codec.qty_str(cum), qty, cum))
    return tuple(out)

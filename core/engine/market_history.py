"""Market data the engine keeps beside its books: closed candles, range bars, the funding clock.

Theory of operation
-------------------
The engine owns the books; everything else it remembers about a symbol's market that is not
needed to keep a book correct lives here, fed by the engine from the same events in the same
order (so live, replay and backtest agree):

* Candles: closed klines per symbol, ordered by open time, one per open time (a newer copy
  wins), the last ``candle_history`` kept, one interval per symbol. The runtime merges backfilled
  history with `add_candles`; closed klines from the stream are also queued in
  ``pending_candles`` for storage when the runtime asks for that (``None``: not kept).
* Range bars: a bar opens at the first trade after the previous bar closed and closes on the
  trade whose price is at least ``threshold_bps`` away from the bar's open (integer arithmetic:
  ``|p - open| * 10000 >= bps * open``). Only the last ``keep`` closed bars are retained; the
  formatted views are what the snapshot shows.
* Funding clock (USD-M): each mark price event names the next funding time. When an event names
  a later time than the previous one, the settlement at the previous time has happened, with
  the rate and mark of the last event before it (what was in force). `on_mark_price` returns that
  `FundingDue` once per funding time; settling a position against it is the trader's business.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from epochbot.model.events import AggTrade, Kline, MarkPrice
from epochbot.model.numeric import UnitCodec
from epochbot.model.records import Candle

__all__ = ["FundingDue", "MarketHistory", "RangeBar", "RangeBarBuilder", "RangeBarView"]

# A closed range bar as the snapshot shows it: (close_ts_ms, open, high, low, close), the prices as
# decimal strings.
RangeBarView = tuple[int, str, str, str, str]


@dataclass(frozen=True, slots=True)
class RangeBar:
    open_ts: int
    close_ts: int
    open: int  # price units
    high: int
    low: int
    close: int
    volume: int  # lots
    trades: int


class RangeBarBuilder:
    """Range bars from a trade stream, with bounded memory (the last ``keep`` bars)."""

    def __init__(self, threshold_bps: int, keep: int = 1000) -> None:
        if threshold_bps <= 0:
            raise ValueError("threshold_bps must be positive")
        self.threshold_bps = threshold_bps
        self.bars: deque[RangeBar] = deque(maxlen=keep)
        self._open: list[int] | None = None  # [open_ts, open, high, low, volume, trades, last, last_ts]

    def on_trade(self, price: int, qty: int, ts: int) -> RangeBar | None:
        """Add one trade; returns the bar it closed, if any."""
        bar = self._open
        if bar is None:
            self._open = [ts, price, price, price, qty, 1, price, ts]
            return None
        bar[2] = max(bar[2], price)
        bar[3] = min(bar[3], price)
        bar[4] += qty
        bar[5] += 1
        bar[6], bar[7] = price, ts
        opened = bar[1]
        if abs(price - opened) * 10_000 >= self.threshold_bps * opened:
            done = RangeBar(bar[0], ts, opened, bar[2], bar[3], price, bar[4], bar[5])
            self.bars.append(done)
            self._open = None
            return done
        return None

    @property
    def forming(self) -> RangeBar | None:
        bar = self._open
        return None if bar is None else RangeBar(bar[0], bar[7], bar[1], bar[2], bar[3], bar[6], bar[4], bar[5])


@dataclass(frozen=True, slots=True)
class FundingDue:
    """A funding time has passed: ``rate`` and ``mark`` (venue text) were in force at it."""

    symbol: str
    funding_ts_ms: int
    rate: str
    mark: str
    recv_ts: int


@dataclass(slots=True)
class _SymbolHistory:
    candles: deque[Candle] = field(default_factory=deque)  # closed Candles, oldest first (bounded)
    range_bars: RangeBarBuilder | None = None
    range_codec: UnitCodec | None = None  # the codec range_bars' units are in
    range_bar_views: deque[RangeBarView] = field(default_factory=deque)
    funding_next_ts: int = 0  # the previous MarkPrice event's next funding time (ms)
    funding_rate: str = ""  # ... and its rate and mark: what is in force until that time
    funding_mark: str = ""


class MarketHistory:
    """Candles, range bars and the funding clock of every symbol (see the module docstring)."""

    def __init__(self, candle_history: int = 1000, range_bar_bps: int = 10, range_bar_keep: int = 200) -> None:
        self.candle_history = candle_history
        self.range_bar_bps = range_bar_bps
        self.range_bar_keep = range_bar_keep
        # Closed candles to persist (the runtime drains it when storage exists; None: not kept).
        self.pending_candles: list[Candle] | None = None
        self._symbols: dict[str, _SymbolHistory] = {}

    def _state(self, symbol: str) -> _SymbolHistory:
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = _SymbolHistory(candles=deque(maxlen=self.candle_history))
        return state

    def add_symbol(self, symbol: str) -> None:
        self._state(symbol)

    # ------------------------------------------------------------------ candles

    def add_candles(self, symbol: str, candles: Iterable[Candle]) -> int:
        """Merge closed candles into the symbol's history: ordered by open time, one per open
        time (the newer copy wins), the last ``candle_history`` kept. Candles of another
        interval than the history's are ignored. Returns how many were new."""
        state = self._symbols.get(symbol)
        if state is None:
            return 0
        history = state.candles
        interval = history[-1].interval if history else None
        merged = {c.open_ts: c for c in history}
        before = len(merged)
        for c in candles:
            if not c.closed or (interval is not None and c.interval != interval):
                continue
            interval = c.interval
            merged[c.open_ts] = c
        keep = self.candle_history
        state.candles = deque((merged[k] for k in sorted(merged)[-keep:]), maxlen=keep)
        return len(merged) - before

    def candles(self, symbol: str) -> list[Candle]:
        state = self._symbols.get(symbol)
        return list(state.candles) if state is not None else []

    def on_closed_kline(self, event: Kline) -> None:
        """A closed `epochbot.model.events.Kline` from the stream."""
        state = self._state(event.symbol)
        candle = Candle.from_kline(event)
        history = state.candles
        if history and history[-1].interval != candle.interval:
            return
        if history and history[-1].open_ts >= candle.open_ts:
            self.add_candles(event.symbol, (candle,))  # a repeat or a late one: merge in order
        else:
            if history.maxlen is None:
                state.candles = history = deque(history, maxlen=self.candle_history)
            history.append(candle)
        pending = self.pending_candles
        if pending is not None:
            pending.append(candle)
            if len(pending) > 10_000:
                del pending[:5_000]

    # ------------------------------------------------------------------ range bars

    def on_trade(self, trade: AggTrade, codec: UnitCodec) -> None:
        """A `epochbot.model.events.AggTrade` of a symbol whose book scale (``codec``) is known."""
        if self.range_bar_bps <= 0:
            return
        state = self._state(trade.symbol)
        builder = state.range_bars
        if builder is None or state.range_codec is not codec:  # first trade, or a new scale
            builder = state.range_bars = RangeBarBuilder(self.range_bar_bps, self.range_bar_keep)
            state.range_codec = codec
            state.range_bar_views = deque(maxlen=self.range_bar_keep)
        try:
            price, qty = codec.price[trade.price], codec.qty[trade.qty]
        except (ValueError, KeyError, TypeError):
            return
        bar = builder.on_trade(price, qty, trade.trade_ts)
        if bar is not None:
            fmt = codec.price_str
            state.range_bar_views.append((bar.close_ts, fmt(bar.open), fmt(bar.high), fmt(bar.low), fmt(bar.close)))

    def range_bar_views(self, symbol: str, last: int | None = None) -> tuple[RangeBarView, ...]:
        """The closed range bars as (close_ts_ms, open, high, low, close) strings, oldest first."""
        state = self._symbols.get(symbol)
        views: deque[RangeBarView] | tuple[()] = state.range_bar_views if state is not None else ()
        n = len(views)
        start = 0 if last is None else max(0, n - last)
        return tuple(views[i] for i in range(start, n))

    def last_range_bar(self, symbol: str) -> RangeBarView | None:
        """The newest closed range bar's view (its identity changes with every new bar)."""
        state = self._symbols.get(symbol)
        return state.range_bar_views[-1] if state is not None and state.range_bar_views else None

    # ------------------------------------------------------------------ funding clock

    def on_mark_price(self, event: MarkPrice) -> FundingDue | None:
        """A `epochbot.model.events.MarkPrice` with a next funding time: the funding that has just
        passed, once per funding time, if the rate and mark in force at it are known."""
        state = self._state(event.symbol)
        previous, rate, mark = state.funding_next_ts, state.funding_rate, state.funding_mark
        state.funding_next_ts = max(previous, event.next_funding_ts)
        state.funding_rate, state.funding_mark = event.funding_rate, event.mark_price
        if not previous or event.next_funding_ts <= previous or not rate or not mark:
            return None
        return FundingDue(event.symbol, previous, rate, mark, event.recv_ts)

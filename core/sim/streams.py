"""Stream names and Binance-shaped market event payloads (pure functions, no I/O).

Stream grammar (lower-case symbol): ``<s>@depth[@100ms|@500ms|@250ms]``,
``<s>@depth<5|10|20>[@100ms|@500ms]``, ``<s>@aggTrade``, ``<s>@bookTicker``,
``<s>@kline_1m``, for spot ``<s>@trade``, and for USD-M ``<s>@markPrice[@1s]``, ``<s>@forceOrder``.
USD-M routes: depth and bookTicker live under ``/public``; aggTrade, markPrice, kline and
forceOrder under ``/market``; the bare ``/ws`` and ``/stream`` routes carry everything.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

import orjson

from epochbot.sim.market import DepthEvent, SymbolMarket, Trade, fixed

__all__ = [
    "StreamSpec",
    "parse_stream",
    "route_allows",
    "depth_update",
    "partial_depth",
    "agg_trade",
    "trade",
    "book_ticker",
    "mark_price_update",
    "MarkAverage",
    "kline_event",
    "force_order",
]

_STREAM_RE = re.compile(
    r"^(?P<sym>[a-z0-9]+)@(?:"
    r"(?P<depth>depth)(?P<levels>5|10|20)?(?:@(?P<speed>100ms|250ms|500ms|1000ms))?"
    r"|(?P<agg>aggTrade)|(?P<trade>trade)|(?P<bt>bookTicker)|(?P<kline>kline_1m)"
    r"|(?P<mark>markPrice)(?:@(?P<mspeed>1s))?|(?P<force>forceOrder))$"
)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A parsed stream name. ``kind`` in depth/partial/aggTrade/trade/bookTicker/kline/markPrice/forceOrder."""

    name: str
    symbol: str  # upper-case
    kind: str
    period_ms: int  # 0 = real time (every event)
    levels: int = 0


def parse_stream(name: str, market: str) -> StreamSpec | None:
    """Parse and validate a stream name for a market; None if it is not a valid stream."""
    m = _STREAM_RE.match(name)
    if m is None:
        return None
    sym = m.group("sym").upper()
    usdm = market == "usdm"
    if m.group("depth"):
        speed = m.group("speed")
        if m.group("levels"):
            default = 250 if usdm else 1000
            period = int(speed[:-2]) if speed else default
            if period not in (100, 250, 500, 1000):
                return None
            return StreamSpec(name, sym, "partial", period, int(m.group("levels")))
        default = 250 if usdm else 1000
        period = int(speed[:-2]) if speed else default
        return StreamSpec(name, sym, "depth", 0 if period == 100 else period)
    if m.group("agg"):
        return StreamSpec(name, sym, "aggTrade", 0)
    if m.group("trade"):  # USD-M has no raw trade stream
        return None if usdm else StreamSpec(name, sym, "trade", 0)
    if m.group("bt"):
        return StreamSpec(name, sym, "bookTicker", 0)
    if m.group("kline"):
        return StreamSpec(name, sym, "kline", 1000 if not usdm else 250)
    if m.group("mark"):
        if not usdm:
            return None
        return StreamSpec(name, sym, "markPrice", 1000 if m.group("mspeed") else 3000)
    if m.group("force"):
        return StreamSpec(name, sym, "forceOrder", 1000) if usdm else None
    return None


_PUBLIC = {"depth", "partial", "bookTicker"}
_MARKET = {"aggTrade", "markPrice", "kline", "forceOrder"}  # (USD-M has no "trade" stream)


def route_allows(route: str, spec: StreamSpec) -> bool:
    """Whether a stream may be served on a route ("", "public", "market")."""
    if route == "public":
        return spec.kind in _PUBLIC
    if route == "market":
        return spec.kind in _MARKET
    return True


def _levels(levels, pdec: int, qdec: int) -> list[list[str]]:
    return [[fixed(p, pdec), fixed(q, qdec)] for p, q in levels]


def depth_update(
    market: str,
    symbol: str,
    ev_first: int,
    ev_last: int,
    prev: int,
    e_ms: int,
    t_ms: int,
    bids: dict[int, int],
    asks: dict[int, int],
    pdec: int,
    qdec: int,
) -> bytes:
    """A diff-depth event (spot or USD-M shape), serialized."""
    b = [[fixed(p, pdec), fixed(q, qdec)] for p, q in sorted(bids.items(), reverse=True)]
    a = [[fixed(p, pdec), fixed(q, qdec)] for p, q in sorted(asks.items())]
    if market == "usdm":
        payload = {
            "e": "depthUpdate",
            "E": e_ms,
            "T": t_ms,
            "s": symbol,
            "U": ev_first,
            "u": ev_last,
            "pu": prev,
            "b": b,
            "a": a,
        }
    else:
        payload = {"e": "depthUpdate", "E": e_ms, "s": symbol, "U": ev_first, "u": ev_last, "b": b, "a": a}
    return orjson.dumps(payload)


def partial_depth(market: str, m: SymbolMarket, levels: int, e_ms: int, t_ms: int, prev: int) -> bytes:
    bids, asks = m.top(levels)
    pdec, qdec = m.price_decimals, m.qty_decimals
    if market == "usdm":
        payload = {
            "e": "depthUpdate",
            "E": e_ms,
            "T": t_ms,
            "s": m.symbol,
            "U": prev + 1 if prev < m.update_id else m.update_id,
            "u": m.update_id,
            "pu": prev,
            "b": _levels(bids, pdec, qdec),
            "a": _levels(asks, pdec, qdec),
        }
    else:
        payload = {"lastUpdateId": m.update_id, "bids": _levels(bids, pdec, qdec), "asks": _levels(asks, pdec, qdec)}
    return orjson.dumps(payload)


def agg_trade(market: str, symbol: str, agg_id: int, t: Trade, e_ms: int, pdec: int, qdec: int) -> bytes:
    price, qty = fixed(t.price, pdec), fixed(t.qty, qdec)
    payload: dict[str, object] = {"e": "aggTrade", "E": e_ms, "s": symbol, "a": agg_id, "p": price, "q": qty}
    if market == "usdm":
        # Since 2025-12-31: `nq`, the quantity without trades against RPI orders (the simulator
        # has no RPI orders: all of `q`).
        payload["nq"] = qty
    payload.update(f=t.trade_id, l=t.trade_id, T=t.time_ms, m=t.buyer_maker)
    if market == "spot":
        payload["M"] = True
    return orjson.dumps(payload)


def trade(symbol: str, t: Trade, e_ms: int, pdec: int, qdec: int) -> bytes:
    """A spot ``<symbol>@trade`` event (web-socket-streams.md "Trade Streams")."""
    payload = {
        "e": "trade",
        "E": e_ms,
        "s": symbol,
        "t": t.trade_id,
        "p": fixed(t.price, pdec),
        "q": fixed(t.qty, qdec),
        "T": t.time_ms,
        "m": t.buyer_maker,
        "M": True,
    }
    return orjson.dumps(payload)


def book_ticker(market: str, m: SymbolMarket, e_ms: int, t_ms: int) -> bytes:
    pdec, qdec = m.price_decimals, m.qty_decimals
    bb, ba = m.best_bid, m.best_ask
    b = [fixed(bb, pdec), fixed(m.bid_levels.get(bb, 0), qdec)]
    a = [fixed(ba, pdec), fixed(m.ask_levels.get(ba, 0), qdec)]
    if market == "usdm":
        payload = {
            "e": "bookTicker",
            "u": m.update_id,
            "E": e_ms,
            "T": t_ms,
            "s": m.symbol,
            "b": b[0],
            "B": b[1],
            "a": a[0],
            "A": a[1],
        }
    else:
        payload = {"u": m.update_id, "s": m.symbol, "b": b[0], "B": b[1], "a": a[0], "A": a[1]}
    return orjson.dumps(payload)


def mark_price_update(m: SymbolMarket, e_ms: int, funding_rate: str, next_funding_ms: int, average: int) -> bytes:
    """A USD-M ``markPriceUpdate``; ``average`` (price units) is ``ap``, the mark price moving
    average (on Binance's payloads since 2026-03-16)."""
    pdec = m.price_decimals
    payload = {
        "e": "markPriceUpdate",
        "E": e_ms,
        "s": m.symbol,
        "p": fixed(m.mark_price(), pdec),
        "i": fixed(m.index_price(), pdec),
        "P": fixed(m.mark_price(), pdec),
        "r": funding_rate,
        "ap": fixed(average, pdec),
        "T": next_funding_ms,
    }
    return orjson.dumps(payload)


class MarkAverage:
    """The moving average of one symbol's mark price: one sample a second, the last ``window``
    samples (a minute), floored to the tick grid (integer price units, exact)."""

    __slots__ = ("_samples", "_sum", "_second", "_window", "_tick")

    def __init__(self, tick: int, window: int = 60) -> None:
        self._samples: deque[int] = deque()
        self._sum = 0
        self._second = -1
        self._window = window
        self._tick = max(1, tick)

    def sample(self, mark: int, now_ms: int) -> None:
        """Take the second's sample (later calls in the same second do nothing)."""
        second = now_ms // 1000
        if second == self._second:
            return
        self._second = second
        self._samples.append(mark)
        self._sum += mark
        if len(self._samples) > self._window:
            self._sum -= self._samples.popleft()

    def value(self, mark: int) -> int:
        """The average so far (``mark`` before the first sample)."""
        if not self._samples:
            return mark
        mean = self._sum // len(self._samples)
        return mean - mean % self._tick


@dataclass(slots=True)
class KlineState:
    """The current 1m candle of a symbol (integer units)."""

    open_ms: int
    o: int
    h: int
    low: int
    c: int
    v: int = 0
    q: int = 0  # quote volume in price*qty units (price_decimals + qty_decimals)
    n: int = 0
    taker_v: int = 0
    taker_q: int = 0
    first_trade: int = -1
    last_trade: int = -1

    def add(self, t: Trade) -> None:
        self.h = max(self.h, t.price)
        self.low = min(self.low, t.price)
        self.c = t.price
        self.v += t.qty
        self.q += t.price * t.qty
        self.n += 1
        if not t.buyer_maker:
            self.taker_v += t.qty
            self.taker_q += t.price * t.qty
        if self.first_trade < 0:
            self.first_trade = t.trade_id
        self.last_trade = t.trade_id

    def as_array(self, pdec: int, qdec: int) -> list:
        """The REST /klines row."""
        return [
            self.open_ms,
            fixed(self.o, pdec),
            fixed(self.h, pdec),
            fixed(self.low, pdec),
            fixed(self.c, pdec),
            fixed(self.v, qdec),
            self.open_ms + 59_999,
            fixed(self.q, pdec + qdec),
            self.n,
            fixed(self.taker_v, qdec),
            fixed(self.taker_q, pdec + qdec),
            "0",
        ]


def kline_event(symbol: str, k: KlineState, e_ms: int, closed: bool, pdec: int, qdec: int) -> bytes:
    payload = {
        "e": "kline",
        "E": e_ms,
        "s": symbol,
        "k": {
            "t": k.open_ms,
            "T": k.open_ms + 59_999,
            "s": symbol,
            "i": "1m",
            "f": k.first_trade,
            "L": k.last_trade,
            "o": fixed(k.o, pdec),
            "c": fixed(k.c, pdec),
            "h": fixed(k.h, pdec),
            "l": fixed(k.low, pdec),
            "v": fixed(k.v, qdec),
            "n": k.n,
            "x": closed,
            "q": fixed(k.q, pdec + qdec),
            "V": fixed(k.taker_v, qdec),
            "Q": fixed(k.taker_q, pdec + qdec),
            "B": "0",
        },
    }
    return orjson.dumps(payload)


def force_order(symbol: str, t: Trade, e_ms: int, pdec: int, qdec: int) -> bytes:
    side = "SELL" if t.buyer_maker else "BUY"
    payload = {
        "e": "forceOrder",
        "E": e_ms,
        "o": {
            "s": symbol,
            "S": side,
            "o": "LIMIT",
            "f": "IOC",
            "q": fixed(t.qty, qdec),
            "p": fixed(t.price, pdec),
            "ap": fixed(t.price, pdec),
            "X": "FILLED",
            "l": fixed(t.qty, qdec),
            "z": fixed(t.qty, qdec),
            "T": t.time_ms,
        },
    }
    return orjson.dumps(payload)


def merge_into(acc: DepthEvent | None, ev: DepthEvent) -> DepthEvent:
    """Accumulate diff events for a slower stream (last value per level wins)."""
    if acc is None:
        return DepthEvent(ev.first_id, ev.last_id, ev.prev_id, ev.time_ms, dict(ev.bids), dict(ev.asks))
    acc.last_id = ev.last_id
    acc.time_ms = ev.time_ms
    acc.bids.update(ev.bids)
    acc.asks.update(ev.asks)
    return acc

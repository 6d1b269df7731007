"""Seeded, deterministic market generator for one symbol (pure: no I/O, no wall clock).

Theory of operation
-------------------
A `SymbolMarket` owns a full order book (price units -> quantity units per side, on the tick and
step grids), a hidden "fair" price that random-walks with volatility bursts, and Binance's book
update id. Time is an argument: the server calls `next_depth_event(now_ms)` at whatever rate it
is configured for, and each call returns one `DepthEvent` that covers a range of internal
updates ``U..u`` (several book changes per event, like Binance's 100ms diff stream). Every
internal update gets its own update id, so the snapshot's ``lastUpdateId`` is always the ``u`` of
the most recent internal update and Binance's documented sync algorithms work unchanged.

Each internal update is one of:
  * a trade: when the fair price has moved through the touch (or randomly), an aggressor consumes
    liquidity at the best opposite levels; the consumed levels are reported as changes and the
    fills as `Trade` records (for aggTrade/kline/forceOrder streams);
  * a quote: a level near the touch (geometric distance) is resized, added or removed;
  * housekeeping folded into the same update: levels outside the depth band are removed and the
    far end is refilled so each side keeps >= `min_levels` levels.

The book never crosses: bids are only placed strictly below the best ask, asks strictly above the
best bid. The RNG is ``random.Random(seed ^ crc32(symbol))`` so the same seed yields the same
sequence of events (timestamps aside, which are whatever the caller passes in).

`SymbolMarket` implements the matching engine's ``BookView`` protocol (symbol, price_decimals,
qty_decimals, bids(), asks(), mark_price()).
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

__all__ = [
    "DepthEvent",
    "SymbolMarket",
    "SymbolSpec",
    "Trade",
    "default_spec",
    "fixed",
]


def fixed(units: int, decimals: int) -> str:
    """Integer units to a fixed-decimals string, the way Binance pads ("0.35130000", "0.000")."""
    if decimals == 0:
        return str(units)
    digits = str(units).rjust(decimals + 1, "0")
    return f"{digits[:-decimals]}.{digits[-decimals:]}"


def symbol_hash(symbol: str) -> int:
    """A stable (unsalted) hash of a symbol name, for seeding."""
    return zlib.crc32(symbol.encode())


@dataclass(frozen=True)
class SymbolSpec:
    """A symbol's static description: assets, grids and wire precision.

    Prices are integer units of 10**-price_decimals and quantities units of 10**-qty_decimals.
    ``price_decimals``/``qty_decimals`` are the precision Binance formats the symbol's numbers
    with (spot: always 8; USD-M: pricePrecision / quantityPrecision).
    """

    symbol: str
    market: str  # "spot" | "usdm"
    base_asset: str
    quote_asset: str
    price_decimals: int
    qty_decimals: int
    tick_units: int
    step_units: int
    start_price_units: int
    min_notional_units: int  # in price units (quote asset at price_decimals)
    min_qty_units: int
    max_qty_units: int
    market_max_qty_units: int
    typical_level_qty_units: int  # median resting quantity per level

    @property
    def tick_size(self) -> str:
        return fixed(self.tick_units, self.price_decimals)

    @property
    def step_size(self) -> str:
        return fixed(self.step_units, self.qty_decimals)


_KNOWN: dict[tuple[str, str], tuple[str, str, int, int, int, int, str, float, float]] = {
    # (market, symbol): base, quote, price_dec, qty_dec, tick_units, step_units, start, notional, typical qty
    ("usdm", "BTCUSDT"): ("BTC", "USDT", 2, 3, 10, 1, "60000", 100, 0.5),
    ("usdm", "ETHUSDT"): ("ETH", "USDT", 2, 3, 1, 1, "3000", 20, 5),
    ("spot", "BTCUSDT"): ("BTC", "USDT", 8, 8, 10**6, 10**3, "60000", 5, 0.5),
    ("spot", "ETHUSDT"): ("ETH", "USDT", 8, 8, 10**6, 10**4, "3000", 5, 5),
}

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "TUSD")


def _to_units(text: str, decimals: int) -> int:
    whole, _, frac = text.partition(".")
    return int(whole + frac.ljust(decimals, "0")[:decimals])


def default_spec(market: str, symbol: str, seed: int) -> SymbolSpec:
    """The filters for a symbol: the documented defaults for BTC/ETH, seeded ones otherwise."""
    symbol = symbol.upper()
    if market not in ("spot", "usdm"):
        raise ValueError(f"market must be spot or usdm, not {market!r}")
    known = _KNOWN.get((market, symbol))
    if known is not None:
        base, quote, pdec, qdec, tick, step, start, notional, typical = known
    else:
        quote = next((q for q in _QUOTES if symbol.endswith(q) and len(symbol) > len(q)), "USDT")
        base = symbol[: -len(quote)] if symbol.endswith(quote) else symbol
        rng = random.Random(seed ^ symbol_hash(symbol))
        exp = rng.randint(-2, 3)  # start price ~ 10**exp .. 10**(exp+1)
        mant = rng.randint(100, 999)
        tick_dec = max(0, 4 - exp)  # tick ~ 1e-4 .. 1e-5 of the price
        if market == "spot":
            pdec = qdec = 8
            tick = 10 ** (8 - tick_dec)
            step = 10 ** (8 - max(0, min(5, exp + 2)))
        else:
            pdec, qdec = tick_dec, max(0, min(3, exp))
            tick, step = 1, 1
        start_units = mant * 10 ** (pdec + exp - 2)
        start = fixed(start_units - start_units % tick, pdec)
        notional = 5 if market == "spot" else 5
        typical = 2000.0 / (start_units / 10**pdec)
    start_units = _to_units(start, pdec)
    step_f = step / 10**qdec
    typical_units = max(step, int(typical / step_f) * step)
    notional_units = int(notional * 10**pdec)
    return SymbolSpec(
        symbol=symbol,
        market=market,
        base_asset=base,
        quote_asset=quote,
        price_decimals=pdec,
        qty_decimals=qdec,
        tick_units=tick,
        step_units=step,
        start_price_units=start_units,
        min_notional_units=notional_units,
        min_qty_units=step,
        max_qty_units=10**qdec * 1000 if market == "usdm" else 9000 * 10**qdec,
        market_max_qty_units=10**qdec * 120 if market == "usdm" else 100 * 10**qdec,
        typical_level_qty_units=typical_units,
    )


@dataclass(slots=True)
class Trade:
    """One fill against the book: ``buyer_maker`` is True when the aggressor sold."""

    trade_id: int
    price: int
    qty: int
    buyer_maker: bool
    time_ms: int


@dataclass(slots=True)
class DepthEvent:
    """One diff-depth event: internal updates first_id..last_id, net level changes per side.

    ``prev_id`` is the last id of the previous *internal update* (Binance USD-M ``pu``: the
    previous event's ``u``). ``bids``/``asks`` map price units -> new quantity units (0 = remove).
    ``emitted`` is False for an update the market applied but the stream lost (gap fault).
    """

    first_id: int
    last_id: int
    prev_id: int
    time_ms: int
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)


class SymbolMarket:
    """Deterministic book + price generator for one symbol; implements ``BookView``."""

    BAND_TICKS = 1500  # levels are kept within this many ticks of the touch
    MIN_LEVELS = 1100  # each side keeps at least this many levels

    def __init__(self, spec: SymbolSpec, seed: int, *, start_update_id: int | None = None) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.price_decimals = spec.price_decimals
        self.qty_decimals = spec.qty_decimals
        self.rng = random.Random(seed ^ symbol_hash(spec.symbol))
        self.tick = spec.tick_units
        self.update_id = start_update_id if start_update_id is not None else self.rng.randint(10**9, 9 * 10**9)
        self.trade_id = self.rng.randint(10**8, 9 * 10**8)
        self.agg_id = self.rng.randint(10**8, 9 * 10**8)
        self.fair = spec.start_price_units  # hidden fair price, tick units * tick
        self.vol_ticks = 1.0  # current per-update volatility in ticks
        self.burst_left = 0
        self.bid_levels: dict[int, int] = {}
        self.ask_levels: dict[int, int] = {}
        self.best_bid = 0
        self.best_ask = 0
        self.last_trade_price = spec.start_price_units
        self.last_event_time_ms = 0
        self._far: dict[bool, int | None] = {True: None, False: None}
        self._seed_book()

    # ------------------------------------------------------------------ BookView protocol
    def bids_sorted(self) -> list[tuple[int, int]]:
        return sorted(self.bid_levels.items(), reverse=True)

    def asks_sorted(self) -> list[tuple[int, int]]:
        return sorted(self.ask_levels.items())

    def bids(self):  # type: ignore[override]
        return self.bids_sorted()

    def asks(self):  # type: ignore[override]
        return self.asks_sorted()

    def mark_price(self) -> int:
        """Mid of the touch, snapped to the tick grid."""
        mid = (self.best_bid + self.best_ask) // 2
        return mid - mid % self.tick

    def index_price(self) -> int:
        return self.fair - self.fair % self.tick

    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best n levels of each side (n small: partial sort)."""
        import heapq

        return heapq.nlargest(n, self.bid_levels.items()), heapq.nsmallest(n, self.ask_levels.items())

    # ------------------------------------------------------------------ construction
    def _rand_qty(self) -> int:
        typical = self.spec.typical_level_qty_units
        step = self.spec.step_units
        q = int(typical * self.rng.lognormvariate(0.0, 0.9))
        q -= q % step
        return max(step, q)

    def _seed_book(self) -> None:
        tick = self.tick
        mid = self.fair - self.fair % tick
        self.best_bid = mid - tick
        self.best_ask = mid + tick
        for i in range(self.BAND_TICKS):
            if i == 0 or self.rng.random() < 0.9:
                self.bid_levels[self.best_bid - i * tick] = self._rand_qty()
            if i == 0 or self.rng.random() < 0.9:
                self.ask_levels[self.best_ask + i * tick] = self._rand_qty()

    # ------------------------------------------------------------------ stepping
    def snapshot(self, limit: int) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """(lastUpdateId, best-first bids, best-first asks), each side at most ``limit`` levels."""
        bids, asks = self.top(limit) if limit <= 100 else (self.bids_sorted()[:limit], self.asks_sorted()[:limit])
        return self.update_id, bids, asks

    def next_depth_event(self, now_ms: int, *, updates: int | None = None, skip: int = 0) -> DepthEvent:
        """Advance the market by one diff event at time ``now_ms``.

        ``updates`` is the number of internal updates the event covers (seeded 1..N if None).
        ``skip`` internal updates are applied to the book *before* the event but not reported in
        it: the next event's ``U`` jumps and its ``pu`` is an id the client never saw (a gap).
        """
        for _ in range(min(skip, 64)):  # a few real updates; a bigger skip only moves the ids
            lost = DepthEvent(self.update_id + 1, self.update_id + 1, self.update_id, now_ms)
            self._one_update(lost, now_ms)
        if skip > 64:
            self.update_id += skip - 64
        prev = self.update_id
        ev = DepthEvent(prev + 1, prev + 1, prev, now_ms)
        if updates is None:
            updates = 1 + int(self.rng.expovariate(1 / (3.0 if self.burst_left else 1.5)))
        for _ in range(updates):
            self._one_update(ev, now_ms)
        ev.last_id = self.update_id
        self.last_event_time_ms = now_ms
        return ev

    def _walk_fair(self) -> None:
        if self.burst_left > 0:
            self.burst_left -= 1
            if self.burst_left == 0:
                self.vol_ticks = 1.0
        elif self.rng.random() < 0.002:
            self.burst_left = self.rng.randint(50, 400)
            self.vol_ticks = self.rng.uniform(3.0, 8.0)
        move = int(round(self.rng.gauss(0.0, self.vol_ticks)))
        self.fair = max(self.tick * 50, self.fair + move * self.tick)

    def _one_update(self, ev: DepthEvent, now_ms: int) -> None:
        self.update_id += 1
        self._walk_fair()
        rng = self.rng
        tick = self.tick
        r = rng.random()
        if self.fair >= self.best_ask + tick or r < 0.04:
            self._trade(ev, buy=True, now_ms=now_ms)
        elif self.fair <= self.best_bid - tick or r > 0.96:
            self._trade(ev, buy=False, now_ms=now_ms)
        # Quote activity: a few level edits near the touch.
        for _ in range(1 + int(rng.random() < 0.5)):
            self._quote(ev)
        self._housekeep(ev)

    def _set(self, ev: DepthEvent, is_bid: bool, price: int, qty: int) -> None:
        side = self.bid_levels if is_bid else self.ask_levels
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        (ev.bids if is_bid else ev.asks)[price] = qty

    def _trade(self, ev: DepthEvent, *, buy: bool, now_ms: int) -> None:
        """An aggressor sweeps up to a few levels on the opposite side."""
        rng = self.rng
        remaining = self._rand_qty() * (1 + int(rng.expovariate(1.0)))
        levels = 0
        while remaining > 0 and levels < 5:
            price = self.best_ask if buy else self.best_bid
            book = self.ask_levels if buy else self.bid_levels
            avail = book.get(price, 0)
            if avail == 0:
                break
            fill = min(avail, remaining)
            remaining -= fill
            self.trade_id += 1
            ev.trades.append(Trade(self.trade_id, price, fill, not buy, now_ms))
            self.last_trade_price = price
            self._set(ev, not buy, price, avail - fill)
            if avail - fill == 0:
                self._advance_best(bid=not buy)
                levels += 1
            else:
                break

    def _advance_best(self, *, bid: bool) -> None:
        """Find the new touch after the best level was removed (levels are dense: short walk)."""
        tick = self.tick
        if bid:
            p = self.best_bid - tick
            floor = p - self.BAND_TICKS * 2 * tick
            while p not in self.bid_levels and p > floor:
                p -= tick
            if p not in self.bid_levels:  # pathological: empty side; re-seed a level
                self.bid_levels[p] = self._rand_qty()
            self.best_bid = p
        else:
            p = self.best_ask + tick
            ceil = p + self.BAND_TICKS * 2 * tick
            while p not in self.ask_levels and p < ceil:
                p += tick
            if p not in self.ask_levels:
                self.ask_levels[p] = self._rand_qty()
            self.best_ask = p

    def _quote(self, ev: DepthEvent) -> None:
        rng = self.rng
        tick = self.tick
        is_bid = rng.random() < 0.5
        dist = int(rng.expovariate(1 / 12.0))
        if dist >= self.BAND_TICKS:
            dist = self.BAND_TICKS - 1
        # Liquidity providers quote around fair, never crossing the opposite touch; a quote
        # above the best bid (below the best ask) improves the touch, which is how the book
        # follows the fair price upward as well as downward.
        if is_bid:
            price = self.fair - self.fair % tick - (1 + dist) * tick
            if price >= self.best_ask:
                price = self.best_ask - (1 + dist) * tick
            if price <= 0:
                return
            qty = self.bid_levels.get(price, 0)
            if qty and rng.random() < 0.3 and price != self.best_bid:
                self._set(ev, True, price, 0)
            else:
                self._set(ev, True, price, self._rand_qty())
                if price > self.best_bid:
                    self.best_bid = price
        else:
            price = self.fair - self.fair % tick + (1 + dist) * tick
            if price <= self.best_bid:
                price = self.best_bid + (1 + dist) * tick
            qty = self.ask_levels.get(price, 0)
            if qty and rng.random() < 0.3 and price != self.best_ask:
                self._set(ev, False, price, 0)
            else:
                self._set(ev, False, price, self._rand_qty())
                if price < self.best_ask:
                    self.best_ask = price

    def _housekeep(self, ev: DepthEvent) -> None:
        """Drop levels beyond the band and refill the far end so each side stays deep.

        The far end of each side is tracked incrementally (``_far``); levels are dense on the tick
        grid, so walking to the next far level is a few dict probes.
        """
        tick = self.tick
        band = self.BAND_TICKS * tick
        cap = self.MIN_LEVELS + 300
        for is_bid in (True, False):
            book = self.bid_levels if is_bid else self.ask_levels
            touch = self.best_bid if is_bid else self.best_ask
            for _ in range(3):
                far = self._far_price(is_bid)
                if far is None or far == touch:
                    break
                if len(book) > cap or abs(touch - far) > band:
                    self._set(ev, is_bid, far, 0)
                    nxt = far + tick if is_bid else far - tick
                    while nxt not in book and nxt != touch:
                        nxt = nxt + tick if is_bid else nxt - tick
                    self._far[is_bid] = nxt
                else:
                    break
            while len(book) < self.MIN_LEVELS:
                far = self._far_price(is_bid)
                assert far is not None
                p = far - tick if is_bid else far + tick
                if p <= 0:
                    break
                self._set(ev, is_bid, p, self._rand_qty())
                self._far[is_bid] = p

    def _far_price(self, is_bid: bool) -> int | None:
        book = self.bid_levels if is_bid else self.ask_levels
        p = self._far.get(is_bid)
        if p is None or p not in book:
            if not book:
                return None
            p = min(book) if is_bid else max(book)
            self._far[is_bid] = p
        return p

    def check_invariants(self) -> None:
        """Assert the book is uncrossed, deep, and on the grids (used by tests)."""
        bids, asks = self.bid_levels, self.ask_levels
        assert max(bids) == self.best_bid and min(asks) == self.best_ask, "touch tracking drifted"
        assert self.best_bid < self.best_ask, "crossed book"
        assert len(bids) >= 1000 and len(asks) >= 1000, "book too shallow"
        tick, step = self.tick, self.spec.step_units
        assert all(p % tick == 0 and q % step == 0 and q > 0 for p, q in bids.items())
        assert all(p % tick == 0 and q % step == 0 and q > 0 for p, q in asks.items())

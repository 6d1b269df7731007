"""Seeded, deterministic market generator for one symbol (pure: no I/O, no wall clock).

Theory of operation
-------------------
A `SymbolMarket` owns a full order book (price units -> quantity units per side, on the tick and
step grids), a hidden "fair" price, and Binance's book update id. Time is an argument: the
server calls `next_depth_event(now_ms)` once per diff event (10 a second at the default rate),
and each call advances the market by one 100 ms step and returns one `DepthEvent` covering the
internal updates ``U..u`` of that step. Every internal update (a taker order, a level edit, a
re-quote) gets its own update id, so the snapshot's ``lastUpdateId`` is always the ``u`` of the
most recent update and Binance's documented sync algorithms work unchanged. The market is a
function of the step count, never of the timestamps: the same seed gives the same stream at any
speed, which is what lets the simulator run on a virtual clock (``SimConfig.speed``).

How a symbol behaves comes from its `MarketProfile` (``epochbot.sim.profiles``, calibrated to
real Binance captures): everything there is in basis points, notional and counts per second,
converted here to the symbol's ticks and lots. One step is, in order:

  1. The `PricePath` steps: *activity* (log-normal, mean 1, mean-reverting), the current trend
     leg and the reverting overshoot; the activity scales the chance of a price jump, the taker
     rate and the quote churn, so the market has quiet and busy stretches.
  2. A *jump* (probability ``jump_rate_per_s * activity / 10``): the fair price moves by a
     normal number of bp (partly an overshoot that later reverts) plus whatever the trend and
     the reversion accrued since the last jump, so between jumps the price stands still as a
     real touch does. The touch is re-quoted around it: a taker sweeps the levels now on the
     wrong side of the new price (each level it takes is one trade print; on a thin book, often
     makers just pull them), makers pull the rest of that stretch, and the other side fills in
     behind the new touch at the profile's level density.
  3. *Takers* (Poisson, ``takers_per_s``): market orders with heavy-tailed sizes take the touch,
     printing one trade per level taken; a level they exhaust is gone and the spread widens until
     a maker closes it (``improve_p`` per step), always back towards the fair price.
  4. *Quote churn* (Poisson, ``quotes_per_s``): levels near the touch (exponential distance, mean
     ``quote_mean_bp``) are resized, added or pulled so that each stretch of the book keeps the
     profile's level density; sizes are log-normal around the profile's median per zone.
  5. *Housekeeping* folded into the same step: each side keeps at least `MIN_LEVELS` levels and
     nothing beyond the depth band.

The book never crosses: bids are only placed strictly below the best ask, asks strictly above the
best bid. The book's RNG is ``random.Random(seed ^ crc32(symbol))``; the price path has its own
stream, so it does not change when the book code draws differently.

`SymbolMarket` implements the matching engine's ``BookView`` protocol (symbol, price_decimals,
qty_decimals, bids(), asks(), mark_price()).
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from dataclasses import dataclass, field

from epochbot.sim.profiles import MarketProfile, profile_for

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
    # The thin alt of the 2021 capture (spot tick 0.0001 = 2.8 bp; USD-M tick 0.00001).
    ("usdm", "NKNUSDT"): ("NKN", "USDT", 5, 0, 1, 1, "0.35230", 5, 3000),
    ("spot", "NKNUSDT"): ("NKN", "USDT", 8, 8, 10**4, 10**7, "0.3523", 5, 3000),
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


class PricePath:
    """The hidden price's moves, one 100 ms step at a time (see the module docstring, 1-2).

    ``step()`` returns the jump in bp that happens in this step, or None. Activity is log-normal
    with mean 1 (an AR(1) in logs, ``activity_sd``, relaxing over ``activity_tau_s``). The drift
    comes in trend legs of ``drift_tau_s`` (0.5x-1.5x) at ``drift_bp_per_s`` (0.7x-1.3x), each in
    a random direction; what a leg accrues is paid out in the next jump, so between jumps the price
    stands still, as a real touch does.
    """

    STEP_S = 0.1

    def __init__(self, profile: MarketProfile, rng: random.Random) -> None:
        self.profile = profile
        self.rng = rng
        self.activity = 1.0  # quiet < 1 < busy
        self.drift_bp_s = 0.0  # the current leg's speed, signed
        self._log_activity = 0.0
        self._leg_left = 0
        self._pending_bp = 0.0
        phi = math.exp(-self.STEP_S / profile.activity_tau_s)
        self._phi, self._sd = phi, profile.activity_sd * math.sqrt(1 - phi * phi)
        self._bias = profile.activity_sd * profile.activity_sd / 2  # so that the mean is 1
        self.overshoot_bp = 0.0  # the part of the price that reverts
        self._revert = math.exp(-self.STEP_S / profile.revert_tau_s)
        self._lasting_bp = profile.jump_bp * math.sqrt(1.0 - profile.revert_share)
        self._overshoot_sd = profile.jump_bp * math.sqrt(profile.revert_share)

    def step(self) -> float | None:
        p, rng = self.profile, self.rng
        self._log_activity = self._log_activity * self._phi + self._sd * rng.gauss(0.0, 1.0)
        self.activity = math.exp(self._log_activity - self._bias)
        self._leg_left -= 1
        if self._leg_left <= 0:
            self._leg_left = int(p.drift_tau_s * rng.uniform(0.5, 1.5) / self.STEP_S)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            self.drift_bp_s = sign * p.drift_bp_per_s * rng.uniform(0.8, 1.2)
        decay = self.overshoot_bp * (1.0 - self._revert)
        self.overshoot_bp -= decay
        self._pending_bp += self.drift_bp_s * self.STEP_S - decay
        if rng.random() >= min(0.9, p.jump_rate_per_s * self.STEP_S * self.activity):
            return None
        lasting = rng.gauss(0.0, self._lasting_bp)
        overshoot = rng.gauss(0.0, self._overshoot_sd)
        self.overshoot_bp += overshoot
        move, self._pending_bp = lasting + overshoot + self._pending_bp, 0.0
        return move


class SymbolMarket:
    """Deterministic book + price generator for one symbol; implements ``BookView``."""

    MIN_LEVELS = 1100  # each side keeps at least this many levels (a 1000-level snapshot is full)
    STEP_S = 0.1  # one diff event is 100 ms of market time (Binance's @100ms stream)
    RESCALE_STEPS = 600  # re-derive ticks per bp and lots per notional from the price this often

    def __init__(
        self,
        spec: SymbolSpec,
        seed: int,
        *,
        start_update_id: int | None = None,
        profile: MarketProfile | None = None,
    ) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.price_decimals = spec.price_decimals
        self.qty_decimals = spec.qty_decimals
        self.profile = profile or profile_for(spec.market, spec.symbol)
        self.rng = random.Random(seed ^ symbol_hash(spec.symbol))
        # The price path draws from its own stream, so it is the same whatever the book around
        # it does (and whatever the book code draws).
        self.path = PricePath(self.profile, random.Random((seed ^ symbol_hash(spec.symbol)) + 0x9E3779B9))
        self.tick = spec.tick_units
        self.update_id = start_update_id if start_update_id is not None else self.rng.randint(10**9, 9 * 10**9)
        self.trade_id = self.rng.randint(10**8, 9 * 10**8)
        self.agg_id = self.rng.randint(10**8, 9 * 10**8)
        self.fair = spec.start_price_units  # hidden fair price (price units)
        self._fair = float(spec.start_price_units)
        self._steps = 0
        self.bid_levels: dict[int, int] = {}
        self.ask_levels: dict[int, int] = {}
        self.best_bid = 0
        self.best_ask = 0
        self.last_trade_price = spec.start_price_units
        self.last_event_time_ms = 0
        self._far: dict[bool, int | None] = {True: None, False: None}
        self._rescale()
        self._spread_ticks = self._min_spread_ticks
        self._seed_book()

    # ------------------------------------------------------------------ BookView protocol
    def bids_sorted(self) -> list[tuple[int, int]]:
        return sorted(self.bid_levels.items(), reverse=True)

    def asks_sorted(self) -> list[tuple[int, int]]:
        return sorted(self.ask_levels.items())

    def bids(self) -> list[tuple[int, int]]:
        return self.bids_sorted()

    def asks(self) -> list[tuple[int, int]]:
        return self.asks_sorted()

    def mark_price(self) -> int:
        """Mid of the touch, snapped to the tick grid."""
        mid = (self.best_bid + self.best_ask) // 2
        return mid - mid % self.tick

    def index_price(self) -> int:
        return self.fair - self.fair % self.tick

    def top(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best n levels of each side (n small: partial sort)."""
        return heapq.nlargest(n, self.bid_levels.items()), heapq.nsmallest(n, self.ask_levels.items())

    # ------------------------------------------------------------------ scale: bp and notional -> ticks and lots
    def _rescale(self) -> None:
        """Derive the grid-unit parameters from the profile at the current price."""
        p, tick = self.profile, self.tick
        price = max(self._fair, float(tick))
        tpb = price * 1e-4 / tick  # ticks per basis point
        self._ticks_per_bp = tpb
        self._occ_near = min(1.0, p.levels_per_bp_near / tpb)
        self._occ_far = min(1.0, p.levels_per_bp_far / tpb)
        self._near_ticks = max(1, int(p.near_bp * tpb))
        near_levels = self._near_ticks * self._occ_near
        target = self.MIN_LEVELS + 200
        extra = max(0.0, target - near_levels) / self._occ_far
        self._band_ticks = max(self.MIN_LEVELS + 200, int(self._near_ticks + extra))
        self._min_spread_ticks = max(1, math.ceil(p.min_spread_bp * tpb - 1e-9))
        self._quote_mean_ticks = max(1.0, p.quote_mean_bp * tpb)
        # quantity units per unit of quote notional at this price
        self._units_per_quote = 10 ** (self.price_decimals + self.qty_decimals) / price

    def _qty(self, notional: float, sigma: float) -> int:
        """A log-normal quantity around a median notional, on the step grid (at least one step)."""
        step = self.spec.step_units
        q = int(notional * self.rng.lognormvariate(0.0, sigma) * self._units_per_quote)
        q -= q % step
        return max(step, q)

    def _level_qty(self, dist_ticks: int) -> int:
        p = self.profile
        near = dist_ticks <= self._near_ticks
        return self._qty(p.level_notional_near if near else p.level_notional_far, 1.1)

    def _touch_qty(self) -> int:
        return self._qty(self.profile.touch_notional, 0.8)

    def _gap(self, occ: float) -> int:
        """Ticks to the next occupied price when each tick holds a level with probability ``occ``."""
        if occ >= 1.0:
            return 1
        return 1 + int(math.log(1.0 - self.rng.random()) / math.log(1.0 - occ))

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, int(round(self.rng.gauss(lam, math.sqrt(lam)))))
        limit, k, prod = math.exp(-lam), 0, self.rng.random()
        while prod > limit:
            k += 1
            prod *= self.rng.random()
        return k

    def _targets(self) -> tuple[int, int]:
        """Where makers want the touch: ``_spread_ticks`` wide around the fair price."""
        tick, s = self.tick, self._spread_ticks
        bid_ticks = max(1, math.floor(self._fair / tick - s / 2))
        return bid_ticks * tick, (bid_ticks + s) * tick

    # ------------------------------------------------------------------ construction
    def _seed_book(self) -> None:
        tb, ta = self._targets()
        self.best_bid, self.best_ask = tb, ta
        for is_bid, touch in ((True, tb), (False, ta)):
            book = self.bid_levels if is_bid else self.ask_levels
            book[touch] = self._touch_qty()
            price, dist = touch, 0
            while len(book) < self.MIN_LEVELS + 200:
                gap = self._gap(self._occ_near if dist <= self._near_ticks else self._occ_far)
                dist += gap
                price = touch - dist * self.tick if is_bid else touch + dist * self.tick
                if price <= 0:
                    break
                book[price] = self._level_qty(dist)

    # ------------------------------------------------------------------ stepping
    def snapshot(self, limit: int) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """(lastUpdateId, best-first bids, best-first asks), each side at most ``limit`` levels."""
        bids, asks = self.top(limit) if limit <= 100 else (self.bids_sorted()[:limit], self.asks_sorted()[:limit])
        return self.update_id, bids, asks

    def next_depth_event(self, now_ms: int, *, updates: int | None = None, skip: int = 0) -> DepthEvent:
        """Advance the market by one diff event (one 100 ms step) stamped ``now_ms``.

        ``updates``: None is a full step of the calibrated market (see the module docstring);
        a number gives that many light single updates instead (the simulator's throughput mode,
        far above Binance's rates, where realism is not the point).
        ``skip`` internal updates are applied to the book *before* the event but not reported in
        it: the next event's ``U`` jumps and its ``pu`` is an id the client never saw (a gap).
        """
        for _ in range(min(skip, 64)):  # a few real updates; a bigger skip only moves the ids
            lost = DepthEvent(self.update_id + 1, self.update_id + 1, self.update_id, now_ms)
            self._quote(lost)
            self._housekeep(lost)
        if skip > 64:
            self.update_id += skip - 64
        prev = self.update_id
        ev = DepthEvent(prev + 1, prev + 1, prev, now_ms)
        if updates is None:
            self._step(ev, now_ms)
        else:
            for _ in range(max(1, updates)):
                self._light_update(ev, now_ms)
        ev.last_id = self.update_id
        self.last_event_time_ms = now_ms
        return ev

    def _step(self, ev: DepthEvent, now_ms: int) -> None:
        p, rng = self.profile, self.rng
        self._steps += 1
        if self._steps % self.RESCALE_STEPS == 0:
            self._rescale()
        move_bp = self.path.step()
        act = self.path.activity
        if move_bp is not None:
            self._jump(ev, now_ms, move_bp)
        for _ in range(self._poisson(p.takers_per_s * self.STEP_S * act)):
            self._taker(ev, now_ms, buy=rng.random() < 0.5)
        self._improve(ev)
        for _ in range(1 + self._poisson(p.quotes_per_s * self.STEP_S * act**0.5)):
            self._quote(ev)
        if rng.random() < p.ladder_p * min(1.0, act):
            self._ladder(ev)
        self._housekeep(ev)

    def _light_update(self, ev: DepthEvent, now_ms: int) -> None:
        r = self.rng.random()
        if r < 0.01:
            self._jump(ev, now_ms, self.rng.gauss(0.0, self.profile.jump_bp))
        elif r < 0.05:
            self._taker(ev, now_ms, buy=self.rng.random() < 0.5)
        else:
            self._quote(ev)
        self._improve(ev)
        self._housekeep(ev)

    # ------------------------------------------------------------------ the updates
    def _set(self, ev: DepthEvent, is_bid: bool, price: int, qty: int) -> None:
        side = self.bid_levels if is_bid else self.ask_levels
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        (ev.bids if is_bid else ev.asks)[price] = qty

    def _print(self, ev: DepthEvent, price: int, qty: int, *, buy: bool, now_ms: int) -> None:
        self.trade_id += 1
        ev.trades.append(Trade(self.trade_id, price, qty, not buy, now_ms))
        self.last_trade_price = price

    def _jump(self, ev: DepthEvent, now_ms: int, move_bp: float) -> None:
        """The price moves by ``move_bp``: a taker sweeps to the new price, makers re-quote."""
        self.update_id += 1
        p, rng, tick = self.profile, self.rng, self.tick
        self._fair = max(50.0 * tick, self._fair * (1.0 + move_bp / 1e4))
        self.fair = int(self._fair)
        spread = self._min_spread_ticks
        if rng.random() < p.wide_spread_p:
            spread += 1 + int(rng.expovariate(1 / 1.5))
        self._spread_ticks = spread
        tb, ta = self._targets()
        if ta > self.best_ask:
            self._sweep(ev, now_ms, buy=True, limit=ta)
        if tb < self.best_bid:
            self._sweep(ev, now_ms, buy=False, limit=tb)
        if tb > self.best_bid:
            self._fill_behind(ev, is_bid=True, touch=tb)
        if ta < self.best_ask:
            self._fill_behind(ev, is_bid=False, touch=ta)

    def _sweep(self, ev: DepthEvent, now_ms: int, *, buy: bool, limit: int) -> None:
        """Remove every level on the wrong side of ``limit``; a taker takes the first ones."""
        tick = self.tick
        book = self.ask_levels if buy else self.bid_levels
        best = self.best_ask if buy else self.best_bid
        span = abs(limit - best) // tick
        if span <= 4 * len(book):
            step = tick if buy else -tick
            prices = [q for q in range(best, limit, step) if q in book]
        else:
            prices = sorted((q for q in book if (q < limit if buy else q > limit)), reverse=not buy)
        budget = self._qty(self.profile.taker_notional, self.profile.taker_sigma) * 4
        if self.rng.random() >= self.profile.sweep_trade_p:
            budget = 0  # makers pulled their quotes: the price moves without a trade
        for price in prices:
            if budget > 0:
                fill = min(book[price], budget)
                budget -= fill
                self._print(ev, price, fill, buy=buy, now_ms=now_ms)
            self._set(ev, not buy, price, 0)
        self._advance_best(bid=not buy, start=limit)

    def _fill_behind(self, ev: DepthEvent, *, is_bid: bool, touch: int) -> None:
        """Makers quote a new touch and the stretch behind it, up to the old touch."""
        tick = self.tick
        old = self.best_bid if is_bid else self.best_ask
        self._set(ev, is_bid, touch, self._touch_qty())
        dist = self._gap(self._occ_near)
        while True:
            price = touch - dist * tick if is_bid else touch + dist * tick
            if (price <= old) if is_bid else (price >= old):
                break
            self._set(ev, is_bid, price, self._level_qty(dist))
            dist += self._gap(self._occ_near)
        if is_bid:
            self.best_bid = touch
        else:
            self.best_ask = touch

    def _taker(self, ev: DepthEvent, now_ms: int, *, buy: bool) -> None:
        """A market order takes the touch; each level it takes is one trade print."""
        self.update_id += 1
        remaining = self._qty(self.profile.taker_notional, self.profile.taker_sigma)
        book = self.ask_levels if buy else self.bid_levels
        for _ in range(4):
            price = self.best_ask if buy else self.best_bid
            avail = book[price]
            fill = min(avail, remaining)
            self._print(ev, price, fill, buy=buy, now_ms=now_ms)
            remaining -= fill
            self._set(ev, not buy, price, avail - fill)
            if avail - fill:
                return
            self._advance_best(bid=not buy, start=price - self.tick if not buy else price + self.tick)
            if remaining <= 0:
                return

    def _improve(self, ev: DepthEvent) -> None:
        """A maker closes a spread wider than the makers' target, back towards the fair price."""
        tb, ta = self._targets()
        rng, improve = self.rng, self.profile.improve_p
        if self.best_bid < tb < self.best_ask and rng.random() < improve:
            self.update_id += 1
            self._set(ev, True, tb, self._touch_qty())
            self.best_bid = tb
        if self.best_bid < ta < self.best_ask and rng.random() < improve:
            self.update_id += 1
            self._set(ev, False, ta, self._touch_qty())
            self.best_ask = ta

    def _advance_best(self, *, bid: bool, start: int) -> None:
        """The new touch after the levels before ``start`` went: the first level from there on."""
        tick = self.tick
        book = self.bid_levels if bid else self.ask_levels
        p = start
        if bid:
            floor = p - 2 * self._band_ticks * tick
            while p not in book and p > floor and p > 0:
                p -= tick
            if p not in book:  # pathological: an empty side; re-seed a level
                p = max(tick, start)
                book[p] = self._touch_qty()
            self.best_bid = p
        else:
            ceil = p + 2 * self._band_ticks * tick
            while p not in book and p < ceil:
                p += tick
            if p not in book:
                p = start
                book[p] = self._touch_qty()
            self.best_ask = p

    def _quote(self, ev: DepthEvent) -> None:
        """One level edit near the touch, keeping each stretch of the book at its level density."""
        self.update_id += 1
        rng, tick = self.rng, self.tick
        is_bid = rng.random() < 0.5
        book = self.bid_levels if is_bid else self.ask_levels
        touch = self.best_bid if is_bid else self.best_ask
        if rng.random() < 0.1:
            dist = int(rng.random() * self._band_ticks)  # now and then, far out
        else:
            dist = min(self._band_ticks - 1, int(rng.expovariate(1 / self._quote_mean_ticks)))
        price = touch - dist * tick if is_bid else touch + dist * tick
        if price <= 0:
            price, dist = touch, 0
        occ = self._occ_near if dist <= self._near_ticks else self._occ_far
        qty = book.get(price)
        resize_only = price == touch
        if qty is None and rng.random() >= occ * 0.6:
            # No new level here: resize the nearest level further out instead.
            step = -tick if is_bid else tick
            while price not in book:
                price += step
                dist += 1
                if price <= 0 or dist > self._band_ticks:
                    price, dist = touch, 0
                    break
            qty, resize_only = book[price], True
        if qty is None:
            self._set(ev, is_bid, price, self._level_qty(dist))
        elif not resize_only and rng.random() < (1.0 - occ) * 0.6:
            self._set(ev, is_bid, price, 0)
        else:
            new = self._touch_qty() if price == touch else self._level_qty(dist)
            if new == qty:
                new += self.spec.step_units
            self._set(ev, is_bid, price, new)

    def _ladder(self, ev: DepthEvent) -> None:
        """A maker re-sizes a run of its levels from the touch outwards (the big diffs)."""
        rng = self.rng
        is_bid = rng.random() < 0.5
        book = self.bid_levels if is_bid else self.ask_levels
        touch = self.best_bid if is_bid else self.best_ask
        k = rng.randint(*self.profile.ladder_levels)
        prices = heapq.nlargest(k, book) if is_bid else heapq.nsmallest(k, book)
        for price in prices:
            self.update_id += 1
            dist = abs(price - touch) // self.tick
            new = self._touch_qty() if price == touch else self._level_qty(dist)
            self._set(ev, is_bid, price, new if new != book[price] else new + self.spec.step_units)

    def _housekeep(self, ev: DepthEvent) -> None:
        """Drop levels beyond the band and refill the far end so each side stays deep.

        The far end of each side is tracked incrementally (``_far``); walking to the next far
        level is a few dict probes at the far density.
        """
        tick = self.tick
        band = self._band_ticks * tick
        cap = self.MIN_LEVELS + 400
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
                gap = self._gap(self._occ_far) * tick
                p = far - gap if is_bid else far + gap
                if p <= 0:
                    p = far - tick
                    if p <= 0:
                        break
                self._set(ev, is_bid, p, self._level_qty(self._band_ticks))
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

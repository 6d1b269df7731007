"""`quoter`: a maker that rests one bid and one ask around the mid, leaning against inventory.

Entry quotes sit ``half_spread`` from the mid: the larger of ``half_spread_ticks`` ticks and
``half_spread_bps`` basis points of the mid (fees are charged in basis points, so a spread in
ticks alone is meaningless across symbols: on BTCUSDT at 60,000 a tick is 0.017 bp while the
maker fee is 2 bp). Both are shifted by ``skew_ticks_per_size`` ticks for every ``size_lots``
of position *against* the position (long -> both quotes lower).

Exits never give the fees away: while a position is open, the quote on the reducing side is
sized to at most the position and priced at least ``exit_edge_bps`` beyond break-even, where
break-even is the average entry plus the entry and the exit maker fee (``maker_fee_bps`` each).
So a round trip made of these quotes cannot lose (the circuit breaker counts losing round trips;
bench/quoter_flow.py measures it on the simulator's flow). ``exit_edge_bps`` < 0 turns the floor
off (the symmetric quoter of earlier versions).

A side whose fill would push |position| past ``max_position_lots`` (default: ``max_position_sizes``
sizes) is not quoted. Quotes never
cross the book (a bid stays below the best ask). A resting quote is moved only when its desired
price is ``requote_ticks`` away (default: half the half-spread, at least one tick) or its size
changed, so a jittering mid costs no order traffic.

Outside ``normal`` mode the quoter withdraws (qty-0 intents for both slots); in reduce-only it
keeps only the reducing side, sized to the position and flagged ``reduce_only``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from epochbot.model.modes import Mode
from epochbot.trading.strategy import (
    BaseStrategy,
    MarketView,
    OrderIntent,
    Side,
    StrategyError,
    lots_for_quote,
    merge_params,
)

if TYPE_CHECKING:
    from epochbot.model.trade_events import Fill

__all__ = ["make_quoter", "Quoter", "QUOTER_DEFAULTS"]

QUOTER_DEFAULTS: dict[str, Any] = {
    "half_spread_ticks": 2,
    "half_spread_bps": 0.05,  # entry quotes at least this far from the mid (bench/quoter_flow.py)
    "maker_fee_bps": 2.0,  # the venue's maker fee (Binance USD-M and the simulator: 2 bp)
    "exit_edge_bps": 0.5,  # exits at least this far beyond break-even after both fees; < 0: off
    "size_lots": 0,  # 0: size by value, size_quote worth at the mid
    "size_quote": "120",  # above USD-M BTCUSDT's 100 USDT minimum notional
    "skew_ticks_per_size": 1,
    # Each size of inventory moves both quotes this many bp against it: the next entry waits for
    # the price to move that much further, so entries form a ladder 0.15 bp apart (a trend of
    # 9 bp fills 60 of them) while exits wait for their own break-even (bench/quoter_flow.py).
    "skew_bps_per_size": 0.15,
    "requote_ticks": 0,  # move a resting quote only when it is this far off (0: half the half-spread, at least 1 tick)
    "max_position_lots": 0,  # 0: max_position_sizes sizes
    "max_position_sizes": 60,
    "tif": "GTC",  # "GTX" for USD-M post-only
    "refresh_ms": 5_000,  # re-assert desired quotes this often (a refused or lost quote comes back)
}


@dataclass
class Quoter(BaseStrategy):
    name: str = "quoter"
    params: dict[str, Any] = field(default_factory=lambda: dict(QUOTER_DEFAULTS))
    # symbol -> tag -> (price, qty) last intended (qty 0 = withdrawn)
    _quoted: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    _mode: Mode = Mode.NORMAL
    _refreshed_ns: int | None = None
    # symbol -> open entry lots [(price units, signed lots)], newest last (see _exit_price)
    _lots: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def desired(self, view: MarketView) -> dict[str, tuple[int, int]]:
        """The quotes this view calls for: tag -> (price units, lots); qty 0 = no quote."""
        p = self.params
        two_mid = view.two_mid
        if two_mid is None or not view.trustworthy:
            return {"bid": (0, 0), "ask": (0, 0)}
        tick, pos = view.tick, view.position
        size = p["size_lots"] or lots_for_quote(view, p["size_quote"])
        # Lean: whole "sizes" of inventory, rounded toward zero.
        lean = int(pos / size) if size else 0
        skew = lean * p["skew_ticks_per_size"] * tick
        if lean and p["skew_bps_per_size"]:
            bps_skew = _ceil(Fraction(two_mid, 2) * _bps(p["skew_bps_per_size"]) * abs(lean))
            skew += bps_skew if lean > 0 else -bps_skew
        half = max(p["half_spread_ticks"] * tick, _ceil(Fraction(two_mid, 2) * _bps(p["half_spread_bps"])))
        # Work in doubled units so the (possibly half-tick) mid stays an integer.
        bid2 = two_mid - 2 * (half + skew)
        ask2 = two_mid + 2 * (half - skew)
        bid = (bid2 // 2) // tick * tick
        ask_raw = -((-ask2) // 2)  # ceil(ask2 / 2)
        ask = -((-ask_raw) // tick) * tick  # up to the tick grid
        exit_floor, exit_lot = self._exit_price(view, pos)
        if exit_floor is not None:
            if pos > 0:
                ask = max(ask, exit_floor)
            else:
                bid = min(bid, exit_floor)
        if view.best_ask is not None:
            bid = min(bid, view.best_ask - tick)
        if view.best_bid is not None:
            ask = max(ask, view.best_bid + tick)
        limit = p["max_position_lots"] or p["max_position_sizes"] * size
        bid_qty = max(0, min(size, limit - pos))
        ask_qty = max(0, min(size, limit + pos))
        if exit_floor is not None:
            # The reducing side is an exit: never larger than the position (no flip at a loss).
            if pos > 0:
                ask_qty = min(ask_qty, pos, exit_lot)
            else:
                bid_qty = min(bid_qty, -pos, exit_lot)
        if self._mode is Mode.REDUCE_ONLY:
            bid_qty = min(size, -pos) if pos < 0 else 0
            ask_qty = min(size, pos) if pos > 0 else 0
        elif self._mode is not Mode.NORMAL:
            bid_qty = ask_qty = 0
        if bid <= 0:
            bid_qty = 0
        return {"bid": (bid if bid_qty else 0, bid_qty), "ask": (ask if ask_qty else 0, ask_qty)}

    def _exit_price(self, view: MarketView, pos: int) -> tuple[int | None, int]:
        """(the least profitable price an exit may have, the most it may sell/buy there).

        The exit closes the newest entry lot first (LIFO), priced to cover that lot's entry fee,
        its own fee and the edge. Over a whole round trip (flat to flat) the realised PnL is
        sum(exit - entry) whatever the pairing, so lots each closed above their own break-even
        make a trip that cannot lose. When the lots do not add up to the position (a restart:
        fills of an earlier run), the average entry of the position is used instead.
        None when flat, the entry is unknown, or the floor is off (``exit_edge_bps`` < 0)."""
        edge = self.params["exit_edge_bps"]
        if not pos or edge < 0:
            return None, abs(pos)
        lots = self._lots.get(view.symbol, [])
        if lots and sum(q for _, q in lots) == pos:
            entry, lot = Fraction(lots[-1][0]), abs(lots[-1][1])
        elif view.entry_price is not None and view.entry_price > 0:
            entry, lot = view.entry_price, abs(pos)
        else:
            return None, abs(pos)
        fee = _bps(self.params["maker_fee_bps"])
        margin = _bps(edge)
        tick = view.tick
        if pos > 0:
            # sell >= entry * (1 + fee) / (1 - fee) * (1 + edge): both fees and the edge covered
            floor = entry * (1 + fee) / (1 - fee) * (1 + margin)
            return _ceil(floor / tick) * tick, lot
        floor = entry * (1 - fee) / (1 + fee) * (1 - margin)
        return int(floor / tick) * tick, lot

    def _book_lot(self, fill: Fill) -> None:
        """Keep the open entry lots (price, signed lots), newest last, from our own fills."""
        lots = self._lots.setdefault(fill.symbol, [])
        signed = fill.qty if fill.side == "BUY" else -fill.qty
        while signed and lots and (lots[-1][1] > 0) != (signed > 0):
            price, q = lots[-1]
            if abs(q) > abs(signed):
                lots[-1] = (price, q + signed)
                signed = 0
            else:
                lots.pop()
                signed += q
        if signed:
            lots.append((fill.price, signed))

    def on_book(self, view: MarketView) -> list[OrderIntent]:
        self._mode = view.mode
        want = self.desired(view)
        have = self._quoted.setdefault(view.symbol, {})
        reduce_only = view.mode is Mode.REDUCE_ONLY
        intents: list[OrderIntent] = []
        sides: tuple[tuple[str, Side], ...] = (("bid", "BUY"), ("ask", "SELL"))
        for tag, side in sides:
            price, qty = want[tag]
            old_price, old_qty = have.get(tag, (0, 0))
            if (old_price, old_qty) == (price, qty):
                continue
            if qty and old_qty == qty and abs(price - old_price) < self._requote_units(view):
                continue  # still close enough to where we want it: no order traffic
            if qty == 0 and have.get(tag, (0, 0))[1] == 0:
                have[tag] = (0, 0)
                continue
            have[tag] = (price, qty)
            intents.append(
                OrderIntent(
                    view.symbol, side, qty, price if qty else None, "LIMIT", self.params["tif"], reduce_only, tag
                )
            )
        return intents

    def _requote_units(self, view: MarketView) -> int:
        if self.params["requote_ticks"]:
            return int(self.params["requote_ticks"]) * view.tick
        # Default: half the half-spread in effect (ticks or basis points), at least one tick.
        half = int(self.params["half_spread_ticks"]) * view.tick
        two_mid = view.two_mid
        if two_mid:
            half = max(half, _ceil(Fraction(two_mid, 2) * _bps(self.params["half_spread_bps"])))
        return max(view.tick, half // 2 // view.tick * view.tick)

    def on_fill(self, fill: Fill) -> list[OrderIntent]:
        # The slot's order is (partly) gone; forget it so the next view re-quotes that side.
        tag = "bid" if fill.side == "BUY" else "ask"
        self._book_lot(fill)
        self._quoted.get(fill.symbol, {}).pop(tag, None)
        return []

    def on_timer(self, now_ns: int) -> list[OrderIntent]:
        # Forget what was quoted so the next view re-emits it; the Trader skips intents that
        # match a working order exactly, so a refresh costs no order traffic when all is well.
        if self._refreshed_ns is None:
            self._refreshed_ns = now_ns
        elif now_ns - self._refreshed_ns >= self.params["refresh_ms"] * 1_000_000:
            self._refreshed_ns = now_ns
            for slots in self._quoted.values():
                for tag, (_price, qty) in list(slots.items()):
                    if qty:
                        del slots[tag]
        return []

    def on_mode_change(self, mode: Mode) -> list[OrderIntent]:
        self._mode = mode
        if mode is Mode.NORMAL:
            return []
        intents: list[OrderIntent] = []
        for symbol, slots in self._quoted.items():
            for tag, (_price, qty) in list(slots.items()):
                if qty:
                    slots[tag] = (0, 0)
                    intents.append(
                        OrderIntent(
                            symbol, "BUY" if tag == "bid" else "SELL", 0, None, "LIMIT", self.params["tif"], False, tag
                        )
                    )
        return intents


def _bps(value: object) -> Fraction:
    return Fraction(str(value)) / 10_000


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def make_quoter(params: Mapping[str, Any]) -> Quoter:
    """The ``quoter`` entry point of ``epochbot.strategies`` (pyproject.toml)."""
    merged = merge_params(QUOTER_DEFAULTS, params, "quoter")
    if (
        merged["size_lots"] < 0
        or merged["half_spread_ticks"] < 1
        or merged["half_spread_bps"] < 0
        or merged["maker_fee_bps"] < 0
        or merged["max_position_sizes"] < 1
    ):
        raise StrategyError(
            "quoter: size_lots must be >= 0 (0 sizes by size_quote), half_spread_ticks >= 1, half_spread_bps and "
            "maker_fee_bps >= 0, max_position_sizes >= 1"
        )
    return Quoter(params=merged)

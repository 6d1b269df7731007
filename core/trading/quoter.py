"""`quoter`: a maker that rests one bid and one ask around the mid, leaning against inventory.

Quotes sit ``half_spread_ticks`` from the mid, shifted by ``skew_ticks_per_size`` ticks for
every ``size_lots`` of position *against* the position (long -> both quotes lower, so the ask
is hit sooner and the bid later). A side whose fill would push |position| past
``max_position_lots`` is not quoted. Quotes never cross the book (a bid stays below the best
ask). A resting quote is moved only when its desired price is ``requote_ticks`` away (default:
half the half-spread, at least one tick) or its size changed, so a jittering mid costs no order
traffic.

Outside ``normal`` mode the quoter withdraws (qty-0 intents for both slots); in reduce-only it
keeps only the reducing side, sized to the position and flagged ``reduce_only``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from core.modes import Mode
from core.trading.strategy import MarketView, OrderIntent, StrategyError, _Base, lots_for_quote, merge_params

__all__ = ["make_quoter", "Quoter", "QUOTER_DEFAULTS"]

QUOTER_DEFAULTS: dict[str, Any] = {
    "half_spread_ticks": 2,
    "size_lots": 0,  # 0: size by value, size_quote worth at the mid
    "size_quote": "150",
    "skew_ticks_per_size": 1,
    "requote_ticks": 0,  # move a resting quote only when it is this far off (0: half the half-spread, at least 1)
    "max_position_lots": 0,  # 0: ten sizes
    "tif": "GTC",  # "GTX" for USD-M post-only
    "refresh_ms": 5_000,  # re-assert desired quotes this often (a refused or lost quote comes back)
}


@dataclass
class Quoter(_Base):
    name: str = "quoter"
    params: dict = field(default_factory=lambda: dict(QUOTER_DEFAULTS))
    # symbol -> tag -> (price, qty) last intended (qty 0 = withdrawn)
    _quoted: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    _mode: Mode = Mode.NORMAL
    _refreshed_ns: int | None = None

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
        half = p["half_spread_ticks"] * tick
        # Work in doubled units so the (possibly half-tick) mid stays an integer.
        bid2 = two_mid - 2 * (half + skew)
        ask2 = two_mid + 2 * (half - skew)
        bid = (bid2 // 2) // tick * tick
        ask_raw = -((-ask2) // 2)  # ceil(ask2 / 2)
        ask = -((-ask_raw) // tick) * tick  # up to the tick grid
        if view.best_ask is not None:
            bid = min(bid, view.best_ask - tick)
        if view.best_bid is not None:
            ask = max(ask, view.best_bid + tick)
        limit = p["max_position_lots"] or 10 * size
        bid_qty = max(0, min(size, limit - pos))
        ask_qty = max(0, min(size, limit + pos))
        if self._mode is Mode.REDUCE_ONLY:
            bid_qty = min(size, -pos) if pos < 0 else 0
            ask_qty = min(size, pos) if pos > 0 else 0
        elif self._mode is not Mode.NORMAL:
            bid_qty = ask_qty = 0
        if bid <= 0:
            bid_qty = 0
        return {"bid": (bid if bid_qty else 0, bid_qty), "ask": (ask if ask_qty else 0, ask_qty)}

    def on_book(self, view: MarketView) -> list[OrderIntent]:
        self._mode = view.mode
        want = self.desired(view)
        have = self._quoted.setdefault(view.symbol, {})
        reduce_only = view.mode is Mode.REDUCE_ONLY
        intents = []
        for tag, side in (("bid", "BUY"), ("ask", "SELL")):
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
        ticks = self.params["requote_ticks"] or max(1, self.params["half_spread_ticks"] // 2)
        return ticks * view.tick

    def on_fill(self, fill) -> list[OrderIntent]:
        # The slot's order is (partly) gone; forget it so the next view re-quotes that side.
        tag = "bid" if fill.side == "BUY" else "ask"
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
                for tag, (price, qty) in list(slots.items()):
                    if qty:
                        del slots[tag]
        return []

    def on_mode_change(self, mode: Mode) -> list[OrderIntent]:
        self._mode = mode
        if mode is Mode.NORMAL:
            return []
        intents = []
        for symbol, slots in self._quoted.items():
            for tag, (price, qty) in list(slots.items()):
                if qty:
                    slots[tag] = (0, 0)
                    intents.append(OrderIntent(symbol, "BUY" if tag == "bid" else "SELL", 0, None, "LIMIT", self.params["tif"], False, tag))
        return intents


def make_quoter(params: Mapping[str, Any]) -> Quoter:
    """The ``quoter`` entry point of ``epochbot.strategies`` (pyproject.toml)."""
    merged = merge_params(QUOTER_DEFAULTS, params, "quoter")
    if merged["size_lots"] < 0 or merged["half_spread_ticks"] < 1:
        raise StrategyError("quoter: size_lots must be >= 0 (0 sizes by size_quote) and half_spread_ticks >= 1")
    return Quoter(params=merged)

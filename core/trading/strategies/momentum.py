"""`momentum`: a taker that follows ``moves`` consecutive mid moves in one direction.

Every change of the mid is a move up or down; moves older than ``lookback_ms`` are forgotten.
When the last ``moves`` moves all point the same way, the strategy takes ``size_lots`` in that
direction (a MARKET order, or an IOC limit at the opposite best when ``use_market`` is false),
as long as the resulting |position| stays within ``max_position_lots``, and then waits
``cooldown_ms`` before it may signal again. It trades only in ``normal`` mode.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

__all__ = ["make_momentum", "Momentum", "MOMENTUM_DEFAULTS"]

MOMENTUM_DEFAULTS: dict[str, Any] = {
    "moves": 3,
    "lookback_ms": 10_000,
    "size_lots": 0,  # 0: size by value, size_quote worth at the mid
    "size_quote": "150",
    "max_position_lots": 0,  # 0: five sizes
    "cooldown_ms": 5_000,
    "use_market": True,
}


@dataclass
class _SymbolMemory:
    last_two_mid: int | None = None
    moves: deque[tuple[int, int]] = field(default_factory=deque)  # (ts_ns, +1 | -1)
    last_signal_ns: int | None = None


@dataclass
class Momentum(BaseStrategy):
    name: str = "momentum"
    params: dict[str, Any] = field(default_factory=lambda: dict(MOMENTUM_DEFAULTS))
    _memory: dict[str, _SymbolMemory] = field(default_factory=dict)

    def on_book(self, view: MarketView) -> list[OrderIntent]:
        p = self.params
        mem = self._memory.setdefault(view.symbol, _SymbolMemory())
        two_mid = view.two_mid
        if two_mid is None or not view.trustworthy:
            return []
        now = view.ts_ns
        if mem.last_two_mid is not None and two_mid != mem.last_two_mid:
            mem.moves.append((now, 1 if two_mid > mem.last_two_mid else -1))
        mem.last_two_mid = two_mid
        horizon = now - p["lookback_ms"] * 1_000_000
        while mem.moves and mem.moves[0][0] < horizon:
            mem.moves.popleft()
        while len(mem.moves) > p["moves"]:
            mem.moves.popleft()
        if view.mode is not Mode.NORMAL or len(mem.moves) < p["moves"]:
            return []
        direction = sum(d for _, d in mem.moves)
        if abs(direction) != p["moves"]:
            return []
        if mem.last_signal_ns is not None and now - mem.last_signal_ns < p["cooldown_ms"] * 1_000_000:
            return []
        side: Side = "BUY" if direction > 0 else "SELL"
        size = p["size_lots"] or lots_for_quote(view, p["size_quote"])
        if abs(view.position + (size if side == "BUY" else -size)) > (p["max_position_lots"] or 5 * size):
            return []
        mem.last_signal_ns = now
        mem.moves.clear()
        if p["use_market"]:
            return [OrderIntent(view.symbol, side, size, None, "MARKET", None, False, "take")]
        price = view.best_ask if side == "BUY" else view.best_bid
        if price is None:
            return []
        return [OrderIntent(view.symbol, side, size, price, "LIMIT", "IOC", False, "take")]


def make_momentum(params: Mapping[str, Any]) -> Momentum:
    """The ``momentum`` entry point of ``epochbot.strategies`` (pyproject.toml)."""
    merged = merge_params(MOMENTUM_DEFAULTS, params, "momentum")
    if merged["moves"] < 1 or merged["size_lots"] < 0:
        raise StrategyError("momentum: moves must be >= 1 and size_lots >= 0 (0 sizes by size_quote)")
    return Momentum(params=merged)

"""Matching against the shared market: which visible liquidity an order takes (pure functions).

Paper orders never trade with each other and never move the shared market. An incoming order
takes liquidity from the book's visible levels, best first, up to its limit price; each level
is used at most once by that order (`sweep`). Resting orders are filled when the market crosses
them, from one `CrossingPool` per side and market update, shared by every resting order of the
symbol in price-time priority, so one update cannot fill the same volume twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import takewhile

from epochbot.sim.matching.records import Order

__all__ = ["CrossingPool", "by_priority", "crosses", "sweep"]


def crosses(order: Order, level_price: int) -> bool:
    """Whether the order would trade at ``level_price`` (a MARKET order trades at any price)."""
    if order.type == "MARKET":
        return True
    return level_price <= order.price if order.side == "BUY" else level_price >= order.price


def sweep(order: Order, levels: Iterable[tuple[int, int]], qty: int) -> list[tuple[int, int]]:
    """The (price, qty) slices the order would take from the visible levels, best first."""
    takes: list[tuple[int, int]] = []
    left = qty
    for price, size in levels:
        if left == 0 or not crosses(order, price):
            break
        if size <= 0:
            continue
        used = min(size, left)
        takes.append((price, used))
        left -= used
    return takes


def by_priority(orders: list[tuple[str, Order]]) -> list[tuple[str, Order]]:
    """Resting (account id, order) pairs of one side in price-time priority: best price, then older."""
    return sorted(orders, key=lambda ao: (-ao[1].price * ao[1].direction, ao[1].order_id))


class CrossingPool:
    """The levels of one side of the market that the most aggressive resting order crosses.

    Each resting order, in priority order, sees what is left of the levels it crosses
    (`available`) and `take`s from them, best first.
    """

    def __init__(self, top: Order, levels: Iterable[tuple[int, int]]) -> None:
        self._levels = [[p, q] for p, q in takewhile(lambda lv: crosses(top, lv[0]), levels)]

    def available(self, order: Order) -> int:
        """The volume still available at the levels ``order`` crosses."""
        total = 0
        for price, qty in self._levels:
            if not crosses(order, price):
                break
            total += qty
        return total

    def take(self, qty: int) -> None:
        """Use ``qty`` of the pool, best level first."""
        left = qty
        for level in self._levels:
            if left == 0:
                break
            used = min(level[1], left)
            level[1] -= used
            left -= used

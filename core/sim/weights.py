"""Binance's REST request-weight limit, as the simulator enforces it (both markets).

What Binance documents (spot "LIMITS", USD-M "General Info"): every request has a weight; the
weights used per IP are counted in fixed one-minute windows and reported in the
``X-MBX-USED-WEIGHT-1M`` header of every answer (also ``X-MBX-USED-WEIGHT``). Spot allows 6,000
per minute, USD-M 2,400. A request over the limit is refused with **429** and a ``Retry-After``
header (seconds until the window turns). "Repeatedly violating rate limits and/or failing to
back off after receiving 429s will result in an automated IP ban (HTTP status 418)", with a
``Retry-After`` of the ban's length, "from 2 minutes to 3 days" for repeat offenders.

Here: a request whose weight does not fit in the window's remainder gets 429 (its weight is not
counted); a client that sends more than ``ban_after`` requests while a 429's ``Retry-After`` is
still running is banned: every request gets 418 until the ban ends (120 s, doubling for each
further ban, capped at 3 days). Weights are Binance's for the endpoints the simulator serves.
The clock is injectable (seconds); the simulator passes ``time.time``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["FREE_WHEN_SUCCESSFUL", "Verdict", "WeightLimiter", "depth_weight", "is_venue_path", "request_weight"]

# endpoint leaf -> (spot weight, usdm weight), for GET unless the method is named
_WEIGHTS = {
    "exchangeInfo": (20, 1),
    "openOrders": (6, 1),
    "account": (20, 5),
    "positionRisk": (5, 5),
    "premiumIndex": (1, 1),
    "order": (4, 1),  # query order (spot 4 since 2023)
    "POST order": (1, 0),  # spot: 1, but 0 when it succeeds (since 2026-04-02); USD-M: 0 on the IP limit
    "DELETE order": (1, 1),  # spot: 0 when it succeeds (since 2026-04-02)
    "ping": (1, 1),
    "time": (1, 1),
    "userDataStream": (2, 1),
    "listenKey": (1, 1),
    "myTrades": (20, 5),
    "userTrades": (5, 5),
    "allOrders": (20, 5),
}
# (method, path) of spot requests whose weight is refunded when they succeed (since 2026-04-02)
FREE_WHEN_SUCCESSFUL = frozenset({("POST", "/api/v3/order"), ("DELETE", "/api/v3/order")})

# USD-M endpoints whose weight depends on the method (the Algo Service, account settings), by
# (method, leaf): the weights of Binance's USD-M documents (SDK 18.1 docstrings, read 2026-12).
_USDM_METHOD_WEIGHTS = {
    ("POST", "algoOrder"): 0,  # counts on the ORDERS limits only
    ("GET", "algoOrder"): 1,
    ("DELETE", "algoOrder"): 1,
    ("DELETE", "algoOpenOrders"): 1,
    ("GET", "allAlgoOrders"): 5,
    ("POST", "countdownCancelAll"): 10,
    ("DELETE", "allOpenOrders"): 1,
    ("POST", "leverage"): 1,
    ("POST", "marginType"): 1,
    ("GET", "dual"): 30,  # /fapi/v1/positionSide/dual
    ("POST", "dual"): 1,
    ("GET", "multiAssetsMargin"): 30,
    ("POST", "multiAssetsMargin"): 1,
    ("GET", "accountConfig"): 5,
    ("GET", "symbolConfig"): 5,
}


def is_venue_path(path: str) -> bool:
    """Whether a REST path is one of Binance's (answers carry the weight headers)."""
    return path.startswith(("/api/", "/fapi/")) and not path.startswith("/_sim")


def depth_weight(market: str, limit: int) -> int:
    """The weight of a depth snapshot of ``limit`` levels (REST ``depth`` and WebSocket API ``depth``)."""
    if market == "spot":
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def request_weight(market: str, path: str, query: Mapping[str, str], method: str = "GET") -> int:
    """The weight Binance charges for a REST request (0: not a venue endpoint, or free)."""
    if not is_venue_path(path):
        return 0
    leaf = path.rsplit("/", 1)[-1]
    spot = market == "spot"
    if not spot and (method, leaf) in _USDM_METHOD_WEIGHTS:
        return _USDM_METHOD_WEIGHTS[(method, leaf)]
    if leaf == "openAlgoOrders":
        return 1 if "symbol" in query else 40
    if leaf == "depth":
        try:
            limit = int(query.get("limit", "100" if spot else "500"))
        except ValueError:
            limit = 100
        return depth_weight(market, limit)
    if leaf == "klines":
        if spot:
            return 2
        try:
            limit = int(query.get("limit", "500"))
        except ValueError:
            limit = 500
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
    if leaf == "openOrders" and "symbol" not in query:
        return 80 if spot else 40
    if leaf == "premiumIndex" and "symbol" not in query:
        return 10
    if leaf == "myTrades" and "orderId" in query:
        return 5
    w = _WEIGHTS.get(f"{method} {leaf}") or _WEIGHTS.get(leaf, (1, 1))
    return w[0] if spot else w[1]


@dataclass(frozen=True, slots=True)
class Verdict:
    status: int  # 200: go ahead; 429 or 418: refuse
    used: int  # the window's used weight after this request
    retry_after_s: int = 0


class WeightLimiter:
    def __init__(
        self, limit: int, *, ban_after: int = 5, ban_s: int = 120, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.ban_after = ban_after
        self.ban_s = ban_s
        self.clock = clock
        self.window = -1
        self.used = 0
        self._retry_until = 0.0  # a 429's Retry-After is running until then
        self._ignored = 0  # requests sent while it ran
        self.banned_until = 0.0
        self.bans = 0
        self.stats = {"throttled": 0, "banned": 0}

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self.window:
            self.window, self.used = minute, 0

    def current(self) -> int:
        self._roll(self.clock())
        return self.used

    def refund(self, weight: int) -> None:
        """Give back a request's weight (Binance spot: successful order placement/cancellation
        over REST and the WebSocket API costs none)."""
        self.used = max(0, self.used - weight)

    def check(self, weight: int) -> Verdict:
        """Count a request of ``weight`` (0: free, never refused) and say whether it may run."""
        now = self.clock()
        self._roll(now)
        if weight <= 0:
            return Verdict(200, self.used)
        if now < self.banned_until:
            self.stats["banned"] += 1
            return Verdict(418, self.used, max(1, int(self.banned_until - now + 0.999)))
        if now < self._retry_until:
            self._ignored += 1
            if self._ignored > self.ban_after:
                length = min(3 * 86400, self.ban_s * (2**self.bans))
                self.bans += 1
                self.banned_until = now + length
                self._ignored = 0
                self.stats["banned"] += 1
                return Verdict(418, self.used, length)
        if self.used + weight > self.limit:
            retry = max(1, 60 - int(now % 60))
            if now >= self._retry_until:
                self._ignored = 0
            self._retry_until = max(self._retry_until, now + retry)
            self.stats["throttled"] += 1
            return Verdict(429, self.used, retry)
        self.used += weight
        return Verdict(200, self.used)

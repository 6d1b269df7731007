"""`OrderCounter`: Binance's ORDERS rate limits, one counter for REST and the WebSocket API.

What Binance documents: spot counts new orders per 10 seconds (100) and per day (200,000)
(rest-api.md "Unfilled Order Count"; exchangeInfo ``rateLimits``); USD-M per 10 seconds (300)
and per minute (1,200). Windows are wall-clock aligned ("10 SECOND resets at 00, 10, 20...
seconds"). A new order over a window's limit is refused with ``-1015 "Too many new orders;
current limit is %s orders per %s."``. Every successful REST order answer carries the counts as
``X-MBX-ORDER-COUNT-<intervalNum><intervalLetter>`` headers (spot ``10S``/``1D``, USD-M
``10S``/``1M``); WebSocket API answers report them in ``rateLimits``. Cancels are not counted.

The clock is injectable (seconds); the simulator passes ``time.time``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from epochbot.sim.auth import SimApiError

__all__ = ["OrderCounter", "OrderWindow"]


@dataclass(frozen=True, slots=True)
class OrderWindow:
    """One ORDERS window: ``interval`` is Binance's name (SECOND, MINUTE, DAY)."""

    interval: str
    interval_num: int
    limit: int

    @property
    def seconds(self) -> int:
        return self.interval_num * {"SECOND": 1, "MINUTE": 60, "DAY": 86_400}[self.interval]

    @property
    def header(self) -> str:
        return f"X-MBX-ORDER-COUNT-{self.interval_num}{self.interval[0]}"

    @property
    def name(self) -> str:
        """The window in -1015's words (``TEN_SECONDS``, ``MINUTE``, ``DAY``)."""
        return "TEN_SECONDS" if (self.interval, self.interval_num) == ("SECOND", 10) else self.interval


_WINDOWS = {
    "spot": (OrderWindow("SECOND", 10, 100), OrderWindow("DAY", 1, 200_000)),
    "usdm": (OrderWindow("SECOND", 10, 300), OrderWindow("MINUTE", 1, 1200)),
}


class OrderCounter:
    """The new orders of one market per ORDERS window (see module docstring)."""

    def __init__(self, market: str, clock: Callable[[], float] = time.time) -> None:
        self.windows = _WINDOWS[market]
        self.clock = clock
        self._counts = [(-1, 0)] * len(self.windows)  # per window: (window number, orders in it)

    def _current(self) -> list[int]:
        now = self.clock()
        out = []
        for n, window in enumerate(self.windows):
            number, count = self._counts[n]
            out.append(count if number == int(now // window.seconds) else 0)
        return out

    def check(self) -> None:
        """-1015 (HTTP 429) when a window is full: a new order may not be placed now."""
        for window, used in zip(self.windows, self._current(), strict=True):
            if used >= window.limit:
                raise SimApiError(
                    -1015, f"Too many new orders; current limit is {window.limit} orders per {window.name}.", 429
                )

    def count(self) -> None:
        """Count one new order; -1015 (HTTP 429) when a window is full (the order is not counted)."""
        self.check()
        now = self.clock()
        self._counts = [
            (int(now // window.seconds), used + 1) for window, used in zip(self.windows, self._current(), strict=True)
        ]

    def rate_limits(self) -> list[dict[str, Any]]:
        """The windows as a WebSocket API answer's ``rateLimits`` entries."""
        return [
            {
                "rateLimitType": "ORDERS",
                "interval": w.interval,
                "intervalNum": w.interval_num,
                "limit": w.limit,
                "count": used,
            }
            for w, used in zip(self.windows, self._current(), strict=True)
        ]

    def headers(self) -> dict[str, str]:
        """The ``X-MBX-ORDER-COUNT-*`` headers of a successful REST order answer."""
        return {w.header: str(used) for w, used in zip(self.windows, self._current(), strict=True)}

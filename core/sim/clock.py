"""The simulator's wall clock: an exchange stamps its answers and events with real time."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Milliseconds since the epoch, as Binance's ``E``/``T``/``serverTime`` fields carry them."""
    return int(time.time() * 1000)

"""The strategy loop's inbox: control events first, market events bounded.

Producers (reader tasks, timers, snapshot fetches, the operator) only enqueue; the single
consumer takes ``next()``. Control events always win (a gap notice or an operator halt must not
wait behind a backlog of depth diffs). The market side is bounded: when it is full the event is
*not* silently lost: the symbol is remembered and, before any further market event, ``next()``
returns a `MarketQueueOverflow` naming every symbol that lost data, so the engine invalidates
those books and resyncs them. Dropped events are counted.

Heavy control events (a REST snapshot to install: thousands of levels plus the buffered diffs
to replay) go to the *bulk* lane: control priority over market data would let a burst of them
stall the market for the whole burst. One bulk event is taken when the market lane is empty or
after every ``bulk_every`` market events, so a hundred snapshots arriving together are installed
one at a time between market events instead of in one stretch.

The inbox is plain Python with an optional ``wake`` callback (the runtime passes an
asyncio.Event's ``set``); it is not thread-safe by itself: other threads hand events over with
``loop.call_soon_threadsafe(inbox.put_control, event)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from epochbot.model.events import MarketQueueOverflow

__all__ = ["Inbox"]


class Inbox:
    __slots__ = (
        "control",
        "market",
        "bulk",
        "bulk_every",
        "_since_bulk",
        "capacity",
        "dropped_total",
        "_lost",
        "_lost_count",
        "wake",
        "high_water",
        "raw",
        "last_raw",
    )

    def __init__(
        self, market_capacity: int = 20_000, wake: Callable[[], None] | None = None, bulk_every: int = 32
    ) -> None:
        if market_capacity < 1:
            raise ValueError("market_capacity must be at least 1")
        self.control: deque = deque()
        self.market: deque = deque()
        self.bulk: deque = deque()
        self.bulk_every = bulk_every
        self._since_bulk = 0
        self.capacity = market_capacity
        self.dropped_total = 0
        self._lost: set[str] = set()
        self._lost_count = 0
        self.wake = wake
        self.high_water = 0
        # Journaling (``keep_raw()``): each queued market event's raw frame, in step with
        # ``market``; ``next()`` leaves the frame of the market event it returns in last_raw.
        self.raw: deque | None = None
        self.last_raw = None

    def keep_raw(self) -> None:
        self.raw = deque()

    def put_control(self, event) -> None:
        self.control.append(event)
        if self.wake is not None:
            self.wake()

    def put_bulk(self, event) -> None:
        """A control event that is expensive to handle (see the module docstring)."""
        self.bulk.append(event)
        if self.wake is not None:
            self.wake()

    def put_market(self, event, raw=None) -> bool:
        market = self.market
        if len(market) >= self.capacity:
            self.dropped_total += 1
            self._lost_count += 1
            self._lost.add(event.symbol)
            if self.wake is not None:
                self.wake()
            return False
        market.append(event)
        if self.raw is not None:
            self.raw.append(raw)
        n = len(market)
        if n > self.high_water:
            self.high_water = n
        if n == 1 and self.wake is not None:
            self.wake()
        return True

    def next(self):
        """The next event to process (control first), or None when both sides are empty."""
        if self.control:
            return self.control.popleft()
        if self._lost:
            notice = MarketQueueOverflow(symbols=tuple(sorted(self._lost)), dropped=self._lost_count)
            self._lost = set()
            self._lost_count = 0
            return notice
        if self.bulk and (not self.market or self._since_bulk >= self.bulk_every):
            self._since_bulk = 0
            return self.bulk.popleft()
        if self.market:
            self._since_bulk += 1
            if self.raw is not None:
                self.last_raw = self.raw.popleft()
            return self.market.popleft()
        return None

    def clear_market(self) -> int:
        """Drop queued market events (all from a closed epoch); returns how many."""
        n = len(self.market)
        self.market.clear()
        if self.raw is not None:
            self.raw.clear()
        return n

    def __len__(self) -> int:
        return len(self.control) + len(self.market) + len(self.bulk)

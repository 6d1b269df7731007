"""The venue's REST request weight as a planned resource: a paced, prioritised request queue.

Theory of operation
-------------------
Binance counts the *weight* of every REST request per IP in fixed one-minute windows (USD-M
2,400, spot 6,000) and says how much of the current window is used in the
``X-MBX-USED-WEIGHT-1M`` header of every answer. Over the limit it answers 429 with
``Retry-After``; a client that keeps going after 429s is banned with 418. A 1000-level USD-M
snapshot costs 20, so 200 symbols cannot all be snapshotted in one minute: the requests have to
wait their turn instead of being fired at once.

`WeightBudget` is a sans-I/O planner. The runtime ``submit``s requests (a key such as the
symbol, a weight, a priority, an optional not-before time and an opaque payload) and asks
``poll(now)`` which ones may be sent now; it reports every answer with ``done`` (the header value,
the status, ``Retry-After``) and sleeps until ``next_wakeup_ns``. Time comes only from the
arguments (the runtime passes its clock; tests a fake one).

What may be sent: the estimate of this window's used weight is the larger of what *we* sent in
it and the venue's own figure (the last header seen for a request sent in this window, plus the
weight still in flight), so other traffic from the same IP (another daemon of the fleet) counts
too. A request goes out only while ``estimate + weight <= cap`` with ``cap = limit * (1 -
headroom)`` and fewer than ``max_in_flight`` requests are outstanding (the latter spreads the
answers over time, so the loop never has to install a hundred snapshots at once). Windows are
venue minutes (local clock plus the measured offset); during the first ``boundary_guard_ms`` of
a new window the previous window's figure still binds, in case the venue's clock has not turned
the minute yet. A 429 or 418 stops everything until its ``Retry-After`` has passed (and the
window is then treated as full): the planner never sends into a refusal.

Order: lowest ``priority`` tuple first, then not-before time, then submission order. The runtime
ranks books the strategy trades before watched ones and books that went invalid in a live
session before books of a fresh session (startup, replacement), so the books that matter most
are repaired first when a replacement needs more weight than is left. Submitting a key that is
already queued replaces that request (a newer request for the same book supersedes the old one).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BudgetConfig", "Grant", "WeightBudget", "depth_weight", "klines_weight"]

_MS = 1_000_000


def depth_weight(market: str, limit: int) -> int:
    """Binance's weight of a depth snapshot of ``limit`` levels (spot /api/v3, USD-M /fapi/v1)."""
    if market == "spot":
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def klines_weight(market: str, limit: int) -> int:
    """Binance's weight of a klines request (spot 2; USD-M by ``limit``: <100 1, <500 2,
    <=1000 5, more 10)."""
    if market == "spot":
        return 2
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    limit: int = 2400  # the venue's weight per minute per IP
    headroom: float = 0.1  # fraction of the limit never planned (orders, other tools on the IP)
    max_in_flight: int = 8
    window_ms: int = 60_000
    boundary_guard_ms: int = 1_000

    @classmethod
    def for_market(cls, market: str, **overrides) -> BudgetConfig:
        return cls(limit=6000 if market == "spot" else 2400, **overrides)

    @property
    def cap(self) -> int:
        return max(1, int(self.limit * (1.0 - self.headroom)))


@dataclass(order=True, slots=True)
class _Entry:
    priority: tuple
    not_before_ns: int
    seq: int
    key: Any = field(compare=False)
    weight: int = field(compare=False)
    payload: Any = field(compare=False)
    submitted_ns: int = field(compare=False, default=0)
    live: bool = field(compare=False, default=True)


@dataclass(frozen=True, slots=True)
class Grant:
    """A request the runtime may send now. Report its answer with `WeightBudget.done`."""

    key: Any
    weight: int
    payload: Any
    window: int
    waited_ns: int  # from submission (or its not-before time) to the grant


class WeightBudget:
    def __init__(self, config: BudgetConfig) -> None:
        self.config = config
        self.offset_ns = 0  # venue clock minus local clock (the runtime measures it)
        self._queued: dict[Any, _Entry] = {}
        self._seq = itertools.count()
        self._in_flight: dict[int, tuple[int, int]] = {}  # grant id -> (weight, window granted in)
        self._grant_ids = itertools.count(1)
        self._window = -1
        self._spent = 0  # weight we sent in self._window
        self._reported = 0  # the venue's figure for self._window
        self._prev_used = 0  # the previous window's final estimate
        self._blocked_until_ns = 0
        self.stats = {
            "granted": 0,
            "weight_granted": 0,
            "throttled": 0,
            "banned": 0,
            "max_wait_ms": 0.0,
            "last_header": 0,
        }

    # ------------------------------------------------------------------ queue

    def submit(
        self, key, weight: int, payload=None, *, priority: tuple = (), not_before_ns: int = 0, now_ns: int = 0
    ) -> None:
        """Queue a request (replacing a queued one with the same key)."""
        if weight <= 0:
            raise ValueError("weight must be positive")
        if weight > self.config.cap:
            raise ValueError(f"weight {weight} exceeds the planned cap {self.config.cap}")
        self.cancel(key)
        entry = _Entry(tuple(priority), int(not_before_ns), next(self._seq), key, int(weight), payload, int(now_ns))
        self._queued[key] = entry

    def cancel(self, key) -> bool:
        entry = self._queued.pop(key, None)
        if entry is None:
            return False
        entry.live = False
        return True

    def cancel_all(self) -> int:
        n = len(self._queued)
        for entry in self._queued.values():
            entry.live = False
        self._queued.clear()
        return n

    @property
    def waiting(self) -> int:
        return len(self._queued)

    def waiting_keys(self) -> list:
        return [e.key for e in sorted(e for e in self._queued.values())]

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # ------------------------------------------------------------------ windows

    def _window_of(self, now_ns: int) -> int:
        return (now_ns + self.offset_ns) // (self.config.window_ms * _MS)

    def _roll(self, now_ns: int) -> None:
        window = self._window_of(now_ns)
        if window != self._window:
            old = self._window
            self._prev_used = (
                max(self._spent, self._reported + sum(w for w, win in self._in_flight.values() if win == old))
                if old == window - 1
                else 0
            )
            self._window = window
            self._spent = 0
            self._reported = 0

    def used(self, now_ns: int) -> int:
        """This window's used weight as far as we know (ours and the venue's figure)."""
        if self._window_of(now_ns) != self._window:
            return 0
        return max(self._spent, self._reported + sum(w for w, win in self._in_flight.values() if win == self._window))

    def available(self, now_ns: int) -> int:
        self._roll(now_ns)
        cap = self.config.cap
        if now_ns < self._blocked_until_ns:
            return 0
        avail = cap - self.used(now_ns)
        into_window = (now_ns + self.offset_ns) % (self.config.window_ms * _MS)
        if into_window < self.config.boundary_guard_ms * _MS:
            # The venue may not have turned the minute yet: the previous window still binds.
            avail = min(avail, cap - self._prev_used - self._spent)
        return max(0, avail)

    # ------------------------------------------------------------------ granting

    def poll(self, now_ns: int) -> list[Grant]:
        """Requests that may be sent now, best first (each is counted as sent)."""
        grants: list[Grant] = []
        while self._queued and len(self._in_flight) < self.config.max_in_flight:
            ready = self._first_ready(now_ns)
            if ready is None:
                break
            if ready.weight > self.available(now_ns):
                break
            ready.live = False
            self._queued.pop(ready.key, None)
            grant_id = next(self._grant_ids)
            self._in_flight[grant_id] = (ready.weight, self._window)
            self._spent += ready.weight
            waited = max(0, now_ns - max(ready.submitted_ns, ready.not_before_ns))
            self.stats["granted"] += 1
            self.stats["weight_granted"] += ready.weight
            self.stats["max_wait_ms"] = max(self.stats["max_wait_ms"], waited / _MS)
            grants.append(Grant(ready.key, ready.weight, (grant_id, ready.payload), self._window, waited))
        return grants

    def _first_ready(self, now_ns: int) -> _Entry | None:
        """The best queued entry whose not-before time has come (a delayed retry does not
        block lower-priority work that is ready). A linear scan: queues hold hundreds."""
        best = None
        for entry in self._queued.values():
            if entry.not_before_ns > now_ns:
                continue
            if best is None or entry < best:
                best = entry
        return best

    def done(
        self,
        grant: Grant,
        *,
        status: int = 200,
        used_weight: int | None = None,
        retry_after_ms: int = 0,
        now_ns: int = 0,
    ) -> None:
        """Report the answer to a granted request (status 0: no answer, e.g. a timeout)."""
        grant_id = grant.payload[0]
        self._in_flight.pop(grant_id, None)
        self._roll(now_ns)
        if used_weight is not None:
            self.stats["last_header"] = used_weight
            if grant.window == self._window:
                self._reported = max(self._reported, used_weight)
        if status in (429, 418):
            self.stats["throttled" if status == 429 else "banned"] += 1
            wait_ms = retry_after_ms if retry_after_ms > 0 else self.config.window_ms
            self._blocked_until_ns = max(self._blocked_until_ns, now_ns + int(wait_ms) * _MS)
            self._reported = max(self._reported, self.config.limit)

    def next_wakeup_ns(self, now_ns: int) -> int | None:
        """When ``poll`` may next grant something if nothing else happens (None: only an
        answer or a new request can change that)."""
        if not self._queued or len(self._in_flight) >= self.config.max_in_flight:
            return None
        if now_ns < self._blocked_until_ns:
            return self._blocked_until_ns
        ready = self._first_ready(now_ns)
        if ready is None:
            return min(e.not_before_ns for e in self._queued.values())
        if ready.weight <= self.available(now_ns):
            return now_ns
        window_ns = self.config.window_ms * _MS
        into = (now_ns + self.offset_ns) % window_ns
        if into < self.config.boundary_guard_ms * _MS:
            return now_ns - into + self.config.boundary_guard_ms * _MS
        return now_ns - into + window_ns + self.config.boundary_guard_ms * _MS

    def describe(self, now_ns: int) -> dict:
        return {
            "limit": self.config.limit,
            "cap": self.config.cap,
            "used": self.used(now_ns),
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "blocked_ms": max(0.0, (self._blocked_until_ns - now_ns) / _MS),
            **self.stats,
        }

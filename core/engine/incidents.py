"""Incidents and the primary metric: time-to-correct-resync.

An incident starts at the first moment the local picture is known to be untrustworthy: a session
replacement (from the moment its cause was detected), a book resync, or confidence falling
below the ``normal`` floor, whichever comes first; startup counts as the first incident (from
the moment the engine was built). It ends when every book of the epoch is synced and validated
(`epochbot.engine.repair` calls `close`), and its duration in milliseconds joins ``ttcr_ms``.
While an incident is open, further causes do not move its start: the metric is how long the
state stayed untrustworthy, not how long the last repair took.
"""

from __future__ import annotations

from collections import deque

__all__ = ["Incidents"]

_MS = 1_000_000


class Incidents:
    """The open incident's start and every closed incident's time-to-correct-resync."""

    def __init__(self, history: int = 10_000) -> None:
        self.started_ns: int | None = None  # the open incident's start (None: none open)
        self.ttcr_ms: deque[float] = deque(maxlen=history)

    def open(self, at_ns: int) -> None:
        """Something made the state untrustworthy at ``at_ns`` (no effect while one is open)."""
        if self.started_ns is None:
            self.started_ns = at_ns

    def on_confidence(self, score: float, now: int, normal_at: float) -> None:
        """Confidence below the ``normal`` floor is an incident too (it may come first)."""
        if score < 1.0 and self.started_ns is None and score < normal_at:
            self.started_ns = now

    def close(self, now: int) -> float | None:
        """The state is correct again: the open incident's time-to-correct-resync (ms), if any."""
        started = self.started_ns
        if started is None:
            return None
        ttcr = (now - started) / _MS
        self.ttcr_ms.append(ttcr)
        self.started_ns = None
        return ttcr

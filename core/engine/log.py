"""The engine's log: bounded records for the dashboard, and the lines not yet handed out.

Every part of the engine writes through one `EngineLog` (``write(level, msg, **fields)``); each
record carries the engine clock's time and the current epoch. ``records`` keeps the newest
``capacity`` for the snapshot's log pane; ``pending`` collects what the runtime has not yet
drained (`drain`) for its log listeners (JSON lines, the console), bounded so a driver that
never drains cannot grow it without limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from epochbot.model.records import LogRecord

__all__ = ["EngineLog", "EpochSource"]

_PENDING_MAX = 10_000  # undrained records kept; beyond it the oldest half is dropped


class EpochSource(Protocol):
    """Whatever knows the current epoch (`epochbot.engine.session.SessionMachine`)."""

    @property
    def epoch(self) -> int: ...


class EngineLog:
    """The log records of one engine (see the module docstring)."""

    def __init__(self, clock: Callable[[], int], capacity: int, epochs: EpochSource) -> None:
        self.clock = clock  # the engine's clock (the facade keeps it current when it is replaced)
        self._epochs = epochs
        self.records: deque[LogRecord] = deque(maxlen=capacity)
        self.pending: list[LogRecord] = []

    def write(self, level: str, msg: str, **fields: object) -> None:
        record = LogRecord(self.clock(), level, msg, self._epochs.epoch, fields)
        self.records.append(record)
        pending = self.pending
        pending.append(record)
        if len(pending) > _PENDING_MAX:
            del pending[: _PENDING_MAX // 2]

    def drain(self) -> list[LogRecord]:
        """The records written since the last drain, oldest first."""
        out, self.pending = self.pending, []
        return out

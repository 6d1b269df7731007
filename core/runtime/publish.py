"""Publishing: the immutable `WorldSnapshot` the dashboard and the control endpoint read, and the
log records that leave the engine.

``latest`` is replaced (never mutated) by `publish`; snapshot listeners are called with each new
one, log listeners with each record `drain_logs` takes from the engine. A listener that raises
is logged and skipped: a broken reader must not take the core down. `log` is the runtime's own
voice in the engine's log (records marked ``source="runtime"``), handed to every other part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from epochbot.engine.engine import Engine, LogRecord
from epochbot.runtime.recorder import InputRecorder
from epochbot.views.snapshot import SnapshotBuilder, WorldSnapshot

log = logging.getLogger("epochbot.runtime")

__all__ = ["Publisher", "RuntimeLog"]


class RuntimeLog(Protocol):
    def __call__(self, level: str, msg: str, **fields: object) -> None: ...


class Publisher:
    def __init__(self, engine: Engine, builder: SnapshotBuilder, recorder: InputRecorder) -> None:
        self.engine = engine
        self.builder = builder
        self.recorder = recorder
        self.latest: WorldSnapshot | None = None
        self._log_listeners: list[Callable[[LogRecord], None]] = []
        self._snapshot_listeners: list[Callable[[WorldSnapshot], None]] = []

    def add_log_listener(self, callback: Callable[[LogRecord], None]) -> None:
        self._log_listeners.append(callback)

    def add_snapshot_listener(self, callback: Callable[[WorldSnapshot], None]) -> None:
        self._snapshot_listeners.append(callback)

    def log(self, level: str, msg: str, **fields: object) -> None:
        self.engine.log_event(level, msg, source="runtime", **fields)

    def publish(self, exact: bool = False) -> None:
        engine = self.engine
        journal = self.recorder.journal
        if journal is not None:  # rows the journal could not write: that run is not exact
            if journal.dropped != engine.counters.get("journal_dropped", 0):
                self.log(
                    "error",
                    "journal lost rows: this run will not replay exactly",
                    dropped=journal.dropped,
                    error=journal.last_error,
                )
            engine.counters["journal_dropped"] = journal.dropped
        snapshot = self.builder.build(engine, engine.trader, exact=exact)
        self.latest = snapshot
        for callback in self._snapshot_listeners:
            try:
                callback(snapshot)
            except Exception:  # a broken reader must not take the core down
                log.exception("snapshot listener failed")

    def drain_logs(self) -> None:
        records = self.engine.drain_log()
        for callback in self._log_listeners:
            for record in records:
                try:
                    callback(record)
                except Exception:  # a broken reader must not take the core down
                    log.exception("log listener failed")

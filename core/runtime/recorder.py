"""The input recorder: every event the engine consumes, in consumption order, written to a version
2 journal (docs/capture-format.md) so that a replay ends in the same state - raw market frames
as received, control and trading events encoded, and the driver rows (engine start, trading
setup, price history, fills imported at the stop, a defect's report) where they happened.

Without a `JournalConfig` the recorder is off: ``journal`` stays None and every write is a no-op
(the strategy loop checks ``journal`` once, not per event).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from epochbot.engine.engine import Engine
from epochbot.runtime.config import JournalConfig, VenueEndpoints
from epochbot.runtime.inbox import Inbox

if TYPE_CHECKING:
    from epochbot.persistence.journal import EngineJournal

__all__ = ["InputRecorder"]


class InputRecorder:
    def __init__(
        self,
        config: JournalConfig | None,
        *,
        engine: Engine,
        inbox: Inbox,
        venue: VenueEndpoints,
        symbols: tuple[str, ...],
    ) -> None:
        self.config = config
        self.engine = engine
        self.inbox = inbox
        self.venue = venue
        self.symbols = symbols
        self.journal: EngineJournal | None = None

    def open(self) -> None:
        """Open the journal (when configured) and make the inbox keep each market event's raw frame."""
        if self.config is None:
            return
        from epochbot.persistence.journal import EngineJournal
        from epochbot.runtime.journal_inputs import encode_engine_config

        jc = self.config
        engine = self.engine
        header = {
            "engine": encode_engine_config(engine.config),
            "created_ns": engine.started_ns,
            "symbols": list(self.symbols),
        }
        self.journal = EngineJournal(
            jc.directory,
            venue="binance-spot" if self.venue.market == "spot" else "binance-usdm",
            run=f"{engine.started_ns:x}-{os.getpid()}",
            header=header,
            max_bytes=jc.max_bytes,
            keep=jc.keep,
            source=f"epochbot {self.venue.name}",
        )
        self.inbox.keep_raw()

    def consumed(self, event) -> None:
        """``event`` was handed to the engine (market frames as received, anything else encoded)."""
        journal = self.journal
        if journal is None:
            return
        if event.kind == "market":
            journal.frame(event.epoch, event.recv_ts, event.process_ts, self.inbox.last_raw)
        else:
            journal.event(event)

    def event(self, event) -> None:
        """An event applied outside the loop (exchangeInfo specs, the first clock offset)."""
        if self.journal is not None:
            self.journal.event(event)

    def row(self, row: dict) -> None:
        """A driver row that is not an event (see journal_inputs)."""
        if self.journal is not None:
            self.journal.obj(row)

    def handle_timed(self, event) -> Iterable:
        """A snapshot answer handled and journaled with the rebuild/validate time the engine
        measured with the wall clock inside the handler (a replay's clock stands still there).
        Only called while journaling."""
        journal = self.journal
        assert journal is not None, "handle_timed without a journal"
        engine = self.engine
        record = engine.epochs[-1] if engine.epochs else None
        before = (record.rebuild_ns, record.validate_ns) if record is not None else (0, 0)
        try:
            commands = engine.handle(event)
        except Exception:
            journal.event(event)  # consumed all the same; the caller routes the failure
            raise
        extra = None
        if record is not None and (record.rebuild_ns, record.validate_ns) != before:
            extra = {
                "rebuild_ns": record.rebuild_ns - before[0],
                "validate_ns": record.validate_ns - before[1],
                "epoch": record.epoch,
            }
        journal.event(event, extra)
        return commands

    async def close(self) -> None:
        if self.journal is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.journal.close)

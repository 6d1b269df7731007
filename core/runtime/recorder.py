"""Journaling of consumed inputs (docs/capture-format.md, version 2): every event the engine
consumes, in consumption order (raw market frames as received, control and trading events
encoded), so that a replay ends in the same state.

A mixin of `epochbot.runtime.runtime.Runtime` (the state it reads and writes is the runtime's; see its
theory of operation).
"""

from __future__ import annotations

__all__ = ["InputJournal"]


class InputJournal:
    """Part of `epochbot.runtime.runtime.Runtime` (a mixin: no state of its own)."""

    def _open_journal(self) -> None:
        """Version 2 journal (docs/capture-format.md): every engine input in consumption order."""
        import os

        from epochbot.persistence.journal import EngineJournal
        from epochbot.runtime.journal_inputs import encode_engine_config

        jc = self.config.journal
        venue = "binance-spot" if self.config.venue.market == "spot" else "binance-usdm"
        engine = self.engine
        run = f"{engine.started_ns:x}-{os.getpid()}"
        header = {
            "engine": encode_engine_config(engine.config),
            "created_ns": engine.started_ns,
            "symbols": list(self.config.symbols),
        }
        self.journal = EngineJournal(
            jc.directory,
            venue=venue,
            run=run,
            header=header,
            max_bytes=jc.max_bytes,
            keep=jc.keep,
            source=f"epochbot {self.config.venue.name}",
        )
        self.inbox.keep_raw()

    def _journal_consumed(self, event) -> None:
        journal = self.journal
        if event.kind == "market":
            journal.frame(event.epoch, event.recv_ts, event.process_ts, self.inbox.last_raw)
        else:
            journal.event(event)

    def _handle_timed(self, event):
        """A snapshot answer, journaled with the rebuild/validate time the engine measured with
        the wall clock inside the handler (a replay's clock stands still there)."""
        engine = self.engine
        record = engine.epochs[-1] if engine.epochs else None
        before = (record.rebuild_ns, record.validate_ns) if record is not None else (0, 0)
        try:
            commands = engine.handle(event)
        except Exception:
            self.journal.event(event)  # consumed all the same; the caller repairs
            raise
        extra = None
        if record is not None and (record.rebuild_ns, record.validate_ns) != before:
            extra = {
                "rebuild_ns": record.rebuild_ns - before[0],
                "validate_ns": record.validate_ns - before[1],
                "epoch": record.epoch,
            }
        self.journal.event(event, extra)
        return commands

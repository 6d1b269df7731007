"""Durable records: orders, fills, risk state, closed candles and epoch records handed to the
storage writer thread (`epochbot.persistence.writer`) without blocking the loop, and the
write-ahead barrier an order waits for before it is sent.

The sink is closed (``enabled`` False, every call a no-op) until trading opens the storage with
`open`; without a storage path nothing is kept across restarts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from epochbot.engine.engine import Engine
from epochbot.runtime.publish import RuntimeLog

if TYPE_CHECKING:
    from epochbot.persistence.storage import SqliteStorage
    from epochbot.persistence.writer import StorageWriter
    from epochbot.trading.trader import Trader

__all__ = ["DurableSink", "remove_database"]


class DurableSink:
    def __init__(self, engine: Engine, log: RuntimeLog) -> None:
        self.engine = engine
        self.log = log
        self.storage: SqliteStorage | None = None
        self.writer: StorageWriter | None = None
        self._persisted_epochs = 0

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def open(self, path: str, *, fresh: bool = False) -> SqliteStorage:
        """Open the SQLite storage (emptied first when ``fresh``) and start its writer thread."""
        from epochbot.persistence.storage import SqliteStorage
        from epochbot.persistence.writer import StorageWriter

        if fresh:
            remove_database(path)
        self.storage = SqliteStorage(path)
        self.writer = StorageWriter(self.storage)
        return self.storage

    def persist(self) -> None:
        """Hand new durable records to the writer thread (never blocks the loop)."""
        writer = self.writer
        if writer is None:
            return
        engine = self.engine
        trader = cast("Trader | None", engine.trader)  # the trading session installs a Trader
        if trader is not None:
            for record in trader.drain_records():
                if not writer.submit(record):
                    self.log("error", "storage queue full: record lost", record=type(record).__name__)
        candles = engine.market.pending_candles
        if candles:
            engine.market.pending_candles = []
            for candle in candles:
                if not writer.submit(candle):
                    self.log("error", "storage queue full: record lost", record="Candle")
        epochs = engine.epochs
        while self._persisted_epochs < len(epochs) and epochs[self._persisted_epochs].closed_ns:
            writer.submit(epochs[self._persisted_epochs])
            self._persisted_epochs += 1
        if self._persisted_epochs > len(epochs):  # the engine trimmed its history
            self._persisted_epochs = len(epochs)

    def keep_candles(self, history: Iterable[list]) -> None:
        """The backfilled candles, and from now on every closed live kline (see `persist`)."""
        writer = self.writer
        if writer is None:
            return
        self.engine.market.pending_candles = []
        for candles in history:
            for candle in candles:
                if not writer.submit(candle):
                    self.log("error", "storage queue full: record lost", record="Candle")
                    break

    def write_ahead(self, command) -> asyncio.Future[bool]:
        """Write-ahead: a future that resolves (True) once everything queued for storage so
        far - the order's "sent" row included - is committed, or False if that failed. The
        gateway task awaits it before sending; the strategy loop never waits."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()

        def done(ok: bool) -> None:
            def resolve() -> None:
                if not future.done():
                    future.set_result(ok)

            try:
                loop.call_soon_threadsafe(resolve)
            except RuntimeError:  # the loop closed meanwhile: nobody waits
                pass

        if self.writer is None or not self.writer.barrier(done):
            self.log(
                "error",
                "storage queue full or closed: order intent not durable",
                client_order_id=getattr(command, "client_order_id", ""),
            )
            future.set_result(False)
        return future

    async def flush(self) -> None:
        """Wait until everything queued so far is written."""
        if self.writer is not None:
            self.persist()
            await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)

    async def close(self) -> None:
        """Queue what is left (every epoch record included), stop the writer, then checkpoint
        the WAL into the main file and close the storage, so the .sqlite3 file alone holds
        every fill and final order state."""
        loop = asyncio.get_running_loop()
        if self.writer is not None:
            self.persist()
            for record in self.engine.epochs[self._persisted_epochs :]:
                self.writer.submit(record)
            await loop.run_in_executor(None, self.writer.close)
        if self.storage is not None:
            try:
                await loop.run_in_executor(None, self.storage.close)
            except Exception as exc:  # noqa: BLE001 - reported; the rest of the shutdown goes on
                self.log("error", "storage close failed", error=f"{type(exc).__name__}: {exc}")


def remove_database(path: str) -> None:
    """Delete a SQLite database with its WAL and shared-memory files (missing ones are fine)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass

"""Durable records: orders, fills, risk state, closed candles and epoch records handed to the
storage writer thread (`epochbot.persistence.writer`) without blocking the loop, and the write-ahead
barrier an order waits for before it is sent.

A mixin of `epochbot.runtime.runtime.Runtime` (the state it reads and writes is the runtime's; see its
theory of operation).
"""

from __future__ import annotations

import asyncio

__all__ = ["DurableStorage"]


class DurableStorage:
    """Part of `epochbot.runtime.runtime.Runtime` (a mixin: no state of its own)."""

    def _persist(self) -> None:
        """Hand new durable records to the writer thread (never blocks the loop)."""
        writer = self.writer
        trader = self.engine.trader
        if trader is not None:
            for record in trader.drain_records():
                if not writer.submit(record):
                    self._runtime_log("error", "storage queue full: record lost", record=type(record).__name__)
        candles = self.engine.market.pending_candles
        if candles:
            self.engine.market.pending_candles = []
            for candle in candles:
                if not writer.submit(candle):
                    self._runtime_log("error", "storage queue full: record lost", record="Candle")
        epochs = self.engine.epochs
        while self._persisted_epochs < len(epochs) and epochs[self._persisted_epochs].closed_ns:
            writer.submit(epochs[self._persisted_epochs])
            self._persisted_epochs += 1
        if self._persisted_epochs > len(epochs):  # the engine trimmed its history
            self._persisted_epochs = len(epochs)

    def _durable(self, command) -> asyncio.Future[bool]:
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

        if not self.writer.barrier(done):
            self._runtime_log(
                "error",
                "storage queue full or closed: order intent not durable",
                client_order_id=getattr(command, "client_order_id", ""),
            )
            future.set_result(False)
        return future

"""Shutdown and drain: pause the strategy, let answers in flight arrive, cancel (if configured) and
confirm every working order, import fills the stream missed, then close the gateway, tasks,
session, storage, journal and simulator, in that order.

A mixin of `epochbot.runtime.runtime.Runtime` (the state it reads and writes is the runtime's; see its
theory of operation).
"""

from __future__ import annotations

import asyncio

from epochbot.model import events as ev
from epochbot.runtime.data_errors import handle_failure

__all__ = ["ShutdownDrain"]


class ShutdownDrain:
    """Part of `epochbot.runtime.runtime.Runtime` (a mixin: no state of its own)."""

    def _drain_trading_events(self) -> None:
        """Hand trading events still queued (answers that arrived after the loop ended) to
        the trader, in order; market events are no use any more."""
        inbox = self.inbox
        while True:
            event = inbox.next()
            if event is None:
                return
            if getattr(event, "kind", "") != "trading":
                continue
            self._consume_outside_loop(event)

    def _consume_outside_loop(self, event) -> None:
        """One event handed to the engine outside the loop (the shutdown path), repaired and
        journaled exactly as the loop does, so a replay ends in the same state."""
        try:
            self.engine.handle(event)
        except Exception as exc:
            if self.journal is not None:
                self._journal_consumed(event)
            handle_failure(self.engine, event, exc)
            return
        if self.journal is not None:
            self._journal_consumed(event)

    async def _stop_trading(self, trader) -> None:
        """Clean stop of trading: cancel (if configured) every working order and record the
        venue-confirmed final state of each (CANCELED, or FILLED when the cancel lost the race),
        book fills that arrived meanwhile, and import any execution the stream did not deliver
        from the venue's trade history, so storage ends equal to the venue. The strategy is
        paused first: nothing new is placed (or journaled) while the venue answers."""
        self._consume_outside_loop(ev.OperatorPause(paused=True))  # also drops pending re-quotes
        in_flight = await self.gateway.settle(5.0)  # placements already sent are answered first
        if in_flight:
            self._runtime_log("warn", "shutdown: order requests still unanswered", requests=in_flight)
        self._drain_trading_events()
        working = [(o.symbol, o.client_order_id) for o in trader.orders.working()]
        if working and self.config.trading.cancel_on_shutdown:
            cancelled = confirmed = 0
            for _ in range(2):  # a second pass for what the first could not settle
                todo = [(o.symbol, o.client_order_id) for o in trader.orders.working()]
                if not todo:
                    break
                answers = await self.gateway.cancel_and_confirm(todo)
                await asyncio.sleep(0.05)  # let the user stream deliver fills that raced the cancels
                self._drain_trading_events()
                for event in answers:
                    self._consume_outside_loop(event)
                cancelled += sum(1 for e in answers if e.status == "CANCELED")
                confirmed += len(answers)
            left = [o.client_order_id for o in trader.orders.working()]
            self._runtime_log(
                "info" if not left else "warn",
                "shutdown: working orders settled",
                working=len(working),
                cancelled=cancelled,
                confirmed=confirmed,
                still_working=left[:50],
            )
        if self.storage is not None and self.writer is not None:
            self._persist()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.writer.flush)
            stored = await loop.run_in_executor(None, self.storage.load_fills)
            imported = await self._import_venue_fills(trader, trader.filters, stored)
            if self.journal is not None:
                from epochbot.model.capture import encode_dataclass

                for fill in imported:  # booked by import_fill, not by the engine: its own row
                    self.journal.obj({"k": "import", "p": self.clock(), "f": encode_dataclass(fill)["f"]})
            self._drain_trading_events()
        if self.writer is not None:
            self._persist()

    async def _shutdown(self) -> None:
        trader = self.engine.trader
        if self.gateway is not None and trader is not None:
            try:
                await self._stop_trading(trader)
            except Exception as exc:  # never let a failing venue keep the storage from closing
                self._runtime_log("error", "shutdown: settling orders failed", error=f"{type(exc).__name__}: {exc}")
        if self.gateway is not None:
            await self.gateway.close()
        tasks = [t for t in self._background if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_session()
        if self._http is not None:
            await self._http.close()
        if self.writer is not None:
            self._persist()
            for record in self.engine.epochs[self._persisted_epochs :]:
                self.writer.submit(record)
            await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        if self.storage is not None:
            # Checkpoint the WAL into the main file (TRUNCATE) so the .sqlite3 file alone holds
            # every fill and final order state, then close every connection.
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.storage.close)
            except Exception as exc:
                self._runtime_log("error", "storage close failed", error=f"{type(exc).__name__}: {exc}")
        if self.journal is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.journal.close)
        if self.sim is not None:
            await self.sim.stop()
        self._drain_logs()
        self._publish(exact=True)

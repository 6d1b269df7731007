"""Executing the engine's commands: sessions to the transport, orders to the gateway.

``_execute`` dispatches each command the engine returns: ``ReplaceSession`` closes the current
`TransportSession` (timed), waits the engine's backoff within the connection-attempt budget,
dials the new one (timed) and reports ``SessionOpened`` (a dial failure is reported as
``Disconnected`` for that epoch, so the engine decides the next attempt); ``FetchSnapshot`` goes to
the weight planner (`epochbot.runtime.weight`); ``ProbeVenue`` to the liveness probe
(`epochbot.runtime.probe`); order commands to the `OrderGateway`; ``Stop`` ends the loop. Background
tasks are spawned here too: one that fails unexpectedly is logged and reported as a disconnect.

A mixin of `epochbot.runtime.runtime.Runtime` (the state it reads and writes is the runtime's; see its
theory of operation).
"""

from __future__ import annotations

import asyncio
import time

from epochbot.model import events as ev
from epochbot.runtime.transport import RouteSpec, TransportSession
from epochbot.venues.binance.wire import market_stream_url, streams_for

__all__ = ["CommandExecutor"]


class CommandExecutor:
    """Part of `epochbot.runtime.runtime.Runtime` (a mixin: no state of its own)."""

    def _execute(self, commands) -> int | None:
        for command in commands:
            kind = type(command)
            if kind is ev.FetchSnapshot:
                self._fetch_snapshot(command)
            elif kind is ev.ReplaceSession:
                self._replace_session(command)
            elif kind is ev.ProbeVenue:
                self._spawn(self._probe(command), f"probe-{command.symbol}")
            elif kind is ev.CloseConnection:
                self._spawn(self._close_session(), "close")
            elif kind is ev.Stop:
                self.exit_code = command.exit_code
                return command.exit_code
            elif kind in (ev.PlaceOrder, ev.CancelOrder) or kind.__name__ in ("QueryOrder", "FetchOrderTrades"):
                if self.gateway is None:
                    self._runtime_log("error", "order command without trading configured", command=kind.__name__)
                else:
                    if kind is ev.PlaceOrder and self.writer is not None:
                        self._persist()  # the "sent" row is queued before the write-ahead barrier
                    self.gateway.execute(command)
            elif kind in (ev.Subscribe, ev.Unsubscribe):
                session = self._session
                if session is not None and session.epoch == command.epoch:
                    session.subscribe(0, command.streams, "SUBSCRIBE" if kind is ev.Subscribe else "UNSUBSCRIBE")
            else:
                self._runtime_log("warn", "command not supported by this runtime", command=kind.__name__)
        return None

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # An I/O task failing unexpectedly is a bug; surface it in the log and as a
            # control event so the engine repairs state rather than carrying on blind.
            self._runtime_log(
                "error", "background task failed", task=task.get_name(), error=f"{type(exc).__name__}: {exc}"
            )
            self.inbox.put_control(
                ev.Disconnected(
                    epoch=self.engine.epoch, recv_ts=self.clock(), reason=f"internal task {task.get_name()} failed"
                )
            )

    def _replace_session(self, command: ev.ReplaceSession) -> None:
        if self._session_task is not None and not self._session_task.done():
            self._session_task.cancel()
        for task in self._snapshot_tasks.values():
            task.cancel()
        self._snapshot_tasks.clear()
        self._cancel_queued_snapshots()
        dropped = self.inbox.clear_market()  # every queued market event belongs to the old epoch
        if dropped:
            self.engine.counters["discarded_stale_epoch"] += dropped
        self._session_task = self._spawn(self._open_session(command), f"session-e{command.epoch}")

    def _full_symbols(self) -> list[str]:
        """Symbols that get every stream (all of them unless watched ones get depth only)."""
        if self.config.watched_streams == "all":
            return list(self.config.symbols)
        return [s for s in self.config.symbols if self._is_traded(s)]

    def _routes(self) -> list[RouteSpec]:
        venue = self.config.venue
        full = self._full_symbols()
        grouped = streams_for(
            full,
            venue.market,
            trades=self.config.trades,
            tickers=self.config.tickers,
            kline_interval=self.config.history_interval or None,
        )
        watched = [s for s in self.config.symbols if s not in set(full)]
        if watched:
            depth_only = streams_for(watched, venue.market, trades=False, tickers=False)
            for route, streams in depth_only.items():
                grouped.setdefault(route, []).extend(name for name in streams if "@depth" in name)
        routes = [
            RouteSpec(market_stream_url(venue.ws_url, route), tuple(streams))
            for route, streams in grouped.items()
            if streams
        ]
        return [part for route in routes for part in route.split()]

    async def _open_session(self, command: ev.ReplaceSession) -> None:
        epoch = command.epoch
        t0 = self.clock()
        await self._close_session()
        close_ms = (self.clock() - t0) / 1e6
        delay_s = command.delay_ms / 1000
        delay_s = max(delay_s, self._dial_budget_wait())
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        self._dial_times.append(time.monotonic())
        session = TransportSession(
            epoch,
            self._routes(),
            self.inbox,
            self.clock,
            spot=self.config.venue.market == "spot",
            scales=self._depth_scales,
        )
        t1 = self.clock()
        try:
            await session.open()
        except asyncio.CancelledError:
            await session.close()
            raise
        except Exception as exc:
            self.inbox.put_control(
                ev.Disconnected(epoch=epoch, recv_ts=self.clock(), reason=f"dial failed: {type(exc).__name__}: {exc}")
            )
            return
        dial_ms = (self.clock() - t1) / 1e6
        if epoch != self.engine.epoch:
            await session.close()
            return
        self._session = session
        self.inbox.put_control(
            ev.SessionOpened(
                epoch=epoch,
                recv_ts=self.clock(),
                url=", ".join(r.url for r in session.routes),
                close_ms=close_ms,
                dial_ms=dial_ms,
            )
        )
        session.start()
        self._spawn(self._session_lifetime(session), f"lifetime-e{epoch}")

    def _dial_budget_wait(self) -> float:
        now = time.monotonic()
        window = self.config.dial_window_s
        self._dial_times = [t for t in self._dial_times if now - t < window]
        if len(self._dial_times) < self.config.dial_budget:
            return 0.0
        return window - (now - self._dial_times[0])

    async def _session_lifetime(self, session: TransportSession) -> None:
        await asyncio.sleep(self.config.max_session_s)
        if not session.closed and session.epoch == self.engine.epoch:
            self.inbox.put_control(
                ev.ServerShutdownNotice(
                    epoch=session.epoch, recv_ts=self.clock(), reason="connection lifetime limit approaching"
                )
            )

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

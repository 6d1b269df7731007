"""Transport sessions: one per epoch, dialled within a connection budget and replaced whole.

On ``ReplaceSession`` the `SessionManager` cancels whatever belonged to the old epoch (the
session being dialled, snapshot fetches in flight or queued, queued market events), closes the
current `TransportSession` (timed), waits the engine's backoff - longer if the `DialBudget`
says the venue's connection-attempt limit would be exceeded - dials the new one (timed) and
reports ``SessionOpened``; a dial failure is reported as ``Disconnected`` for that epoch, so the
engine decides the next attempt and its backoff. A session outliving ``max_session_s`` is
reported (``ServerShutdownNotice``) before Binance's 24-hour cut, so the engine replaces it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from epochbot.engine.engine import Engine
from epochbot.model import events as ev
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.streams import StreamPlan
from epochbot.runtime.tasks import TaskSupervisor
from epochbot.runtime.transport import TransportSession

__all__ = ["DialBudget", "SessionManager"]


class DialBudget:
    """At most ``budget`` connection attempts per ``window_s`` (Binance limits connection rate)."""

    def __init__(self, budget: int, window_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self.window_s = window_s
        self.monotonic = monotonic
        self._dials: list[float] = []

    def wait_s(self) -> float:
        """How long to wait before the next attempt fits in the window (0: at once)."""
        now = self.monotonic()
        self._dials = [t for t in self._dials if now - t < self.window_s]
        if len(self._dials) < self.budget:
            return 0.0
        return self.window_s - (now - self._dials[0])

    def note_dial(self) -> None:
        self._dials.append(self.monotonic())


class PendingSnapshots(Protocol):
    """What a session replacement cancels: every snapshot request of the old epoch."""

    def cancel_all(self) -> None: ...


class SessionManager:
    def __init__(
        self,
        *,
        engine: Engine,
        inbox: Inbox,
        tasks: TaskSupervisor,
        plan: StreamPlan,
        dial_budget: DialBudget,
        snapshots: PendingSnapshots,
        clock: Callable[[], int],
        spot: bool,
        depth_scales: dict[str, tuple[int, int]],
        max_session_s: float,
    ) -> None:
        self.engine = engine
        self.inbox = inbox
        self.tasks = tasks
        self.plan = plan
        self.dial_budget = dial_budget
        self.snapshots = snapshots
        self.clock = clock
        self.spot = spot
        # symbol -> (price_decimals, qty_decimals) of books whose codec is fixed from exchangeInfo:
        # the transport decodes those symbols' depth frames straight to units.
        self.depth_scales = depth_scales
        self.max_session_s = max_session_s
        self.session: TransportSession | None = None
        self._opening: asyncio.Task | None = None

    # ------------------------------------------------------------------ commands

    def replace(self, command: ev.ReplaceSession) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        self.snapshots.cancel_all()
        dropped = self.inbox.clear_market()  # every queued market event belongs to the old epoch
        if dropped:
            self.engine.counters["discarded_stale_epoch"] += dropped
        self._opening = self.tasks.spawn(self._open(command), f"session-e{command.epoch}")

    def close_soon(self, command: ev.CloseConnection) -> None:
        self.tasks.spawn(self.close(), "close")

    def subscribe(self, command: ev.Subscribe | ev.Unsubscribe) -> None:
        session = self.session
        if session is not None and session.epoch == command.epoch:
            method = "SUBSCRIBE" if type(command) is ev.Subscribe else "UNSUBSCRIBE"
            session.subscribe(0, command.streams, method)

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    # ------------------------------------------------------------------ dialling

    async def _open(self, command: ev.ReplaceSession) -> None:
        epoch = command.epoch
        clock = self.clock
        t0 = clock()
        await self.close()
        close_ms = (clock() - t0) / 1e6
        delay_s = max(command.delay_ms / 1000, self.dial_budget.wait_s())
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        self.dial_budget.note_dial()
        session = TransportSession(
            epoch, self.plan.routes(), self.inbox, clock, spot=self.spot, scales=self.depth_scales
        )
        t1 = clock()
        try:
            await session.open()
        except asyncio.CancelledError:
            await session.close()
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the dial raised, the engine decides the retry
            self.inbox.put_control(
                ev.Disconnected(epoch=epoch, recv_ts=clock(), reason=f"dial failed: {type(exc).__name__}: {exc}")
            )
            return
        dial_ms = (clock() - t1) / 1e6
        if epoch != self.engine.epoch:
            await session.close()
            return
        self.session = session
        self.inbox.put_control(
            ev.SessionOpened(
                epoch=epoch,
                recv_ts=clock(),
                url=", ".join(r.url for r in session.routes),
                close_ms=close_ms,
                dial_ms=dial_ms,
            )
        )
        session.start()
        self.tasks.spawn(self._lifetime(session), f"lifetime-e{epoch}")

    async def _lifetime(self, session: TransportSession) -> None:
        await asyncio.sleep(self.max_session_s)
        if not session.closed and session.epoch == self.engine.epoch:
            self.inbox.put_control(
                ev.ServerShutdownNotice(
                    epoch=session.epoch, recv_ts=self.clock(), reason="connection lifetime limit approaching"
                )
            )

"""What the engine does around its session's transitions: the replacement, and the session's answers.

`epochbot.engine.session.SessionMachine` says which moves are legal and keeps the epochs; this
part does what each move means for the rest of the engine:

* a **replacement** (any cause: a disconnect, a failed write or subscription, the venue's
  shutdown notice, a supervisor verdict, the operator, the driver) opens the incident if none is
  open, hands liveness the next session's first-frame allowance, moves the machine to the next
  epoch, starts every book over (`epochbot.engine.repair.BookRepair.reset`), restarts the
  connection's telemetry windows, logs it, evaluates confidence, and returns
  ``ReplaceSession(epoch, cause, delay_ms)``;
* **opened**: the epoch's record is stamped and telemetry restarts from the open;
* **subscribed**: liveness starts judging the streams, and every book not synced and not
  already waiting asks for its snapshot (``snapshot_on_subscribe``).

Its collaborators come in through the constructor; ``evaluate(now)`` is the engine's
confidence evaluation.
"""

from __future__ import annotations

from collections.abc import Callable

from epochbot.engine.config import EngineConfig
from epochbot.engine.incidents import Incidents
from epochbot.engine.log import EngineLog
from epochbot.engine.repair import BookRepair
from epochbot.engine.session import SessionMachine
from epochbot.engine.supervision import Replace, Supervisor
from epochbot.engine.symbols import Symbols
from epochbot.engine.telemetry import Telemetry
from epochbot.model import events as ev

__all__ = ["SessionLifecycle"]

_NO_COMMANDS: tuple[ev.Command, ...] = ()


class SessionLifecycle:
    """Replaces sessions and answers the session's events (see the module docstring)."""

    def __init__(
        self,
        config: EngineConfig,
        symbols: Symbols,
        session: SessionMachine,
        repair: BookRepair,
        supervisor: Supervisor,
        incidents: Incidents,
        telemetry: Telemetry,
        log: EngineLog,
        evaluate: Callable[[int], None],
    ) -> None:
        self.config = config
        self._symbols = symbols
        self._session = session
        self._repair = repair
        self._supervisor = supervisor
        self._incidents = incidents
        self._telemetry = telemetry
        self._log = log.write
        self._evaluate = evaluate

    # ------------------------------------------------------------------ the replacement

    def replace(
        self, now: int, cause: str, detected_ns: int | None = None, immediate: bool = False, liveness: bool = False
    ) -> ev.Commands:
        """Close the current epoch and ask for a new session: every book starts over."""
        self._incidents.open(detected_ns if detected_ns is not None else now)
        self._supervisor.session_replaced(now, liveness)
        session = self._session
        delay = session.replace(now, cause, detected_ns, immediate)
        self._repair.reset(cause)
        self._telemetry.reset_connection(now)
        epoch = session.epoch
        self._log(
            "info" if epoch == 1 else "warn",
            "replace session",
            cause=cause,
            new_epoch=epoch,
            delay_ms=round(delay, 1),
        )
        self._evaluate(now)
        return (ev.ReplaceSession(epoch=epoch, cause=cause, delay_ms=delay),)

    def replace_for(self, verdict: Replace, now: int) -> ev.Commands:
        """Act on a supervisor's verdict."""
        return self.replace(now, verdict.cause, verdict.detected_ns, verdict.immediate, verdict.liveness)

    # ------------------------------------------------------------------ the session's answers

    def on_opened(self, event: ev.SessionOpened, now: int) -> ev.Commands:
        self._session.opened(now, event.url, event.close_ms, event.dial_ms)
        self._telemetry.reset_connection(now)
        self._log("info", "session opened", url=event.url)
        return _NO_COMMANDS

    def on_subscribed(self, event: ev.SubscriptionConfirmed, now: int) -> ev.Commands:
        self._session.acknowledged(now)
        self._log("info", "subscription confirmed", request_id=event.request_id, streams=len(event.streams))
        self._supervisor.session_subscribed(now)
        commands: list[ev.Command] = []
        if self.config.snapshot_on_subscribe:
            for state in self._symbols.values():
                if not state.snapshot_request and not state.book.synced:
                    commands.extend(self._repair.request_snapshot(state, now, "subscribed"))
        return commands

    def on_subscription_failed(self, event: ev.SubscriptionFailed, now: int) -> ev.Commands:
        self._log("error", "subscription failed", reason=event.reason, request_id=event.request_id)
        return self.replace(now, f"subscription failed: {event.reason}")

    def on_disconnected(self, event: ev.Disconnected, now: int) -> ev.Commands:
        self._log("warn", "disconnected", reason=event.reason)
        return self.replace(now, f"disconnected: {event.reason}", detected_ns=event.recv_ts or now, immediate=True)

    def on_write_failed(self, event: ev.WriteFailed, now: int) -> ev.Commands:
        failures = self._session.write_failed()
        self._log("warn", "write failed", reason=event.reason, failures=failures)
        if failures >= self.config.write_failures_replace:
            return self.replace(now, f"write failed: {event.reason}", immediate=True)
        return _NO_COMMANDS

    def on_server_shutdown(self, event: ev.ServerShutdownNotice, now: int) -> ev.Commands:
        self._log("warn", "venue announced close", reason=event.reason)
        return self.replace(now, f"server shutdown: {event.reason}", immediate=True)

    def on_latency_degraded(self, event: ev.LatencyDegraded, now: int) -> ev.Commands:
        return self.replace(now, f"{event.metric} degraded: {event.value_ms:.0f} ms")

"""The engine's session lifecycle and epoch bookkeeping.

Each transport session has an epoch, chosen here: replacing the session closes the current
epoch's `EpochRecord`, increments ``epoch``, resets every book and returns
``ReplaceSession(epoch, delay_ms)`` (immediate for a first loss, then exponential backoff with
seeded jitter). The session's answers (opened, subscribed, subscription failed, disconnected,
write failed, server shutdown, latency degraded) move the epoch through its phases, which the
record times: detect, close, dial, subscribe, snapshot, rebuild, validate.

A mixin of `epochbot.engine.engine.Engine` (the state it reads and writes is the engine's; see its theory
of operation).
"""

from __future__ import annotations

from epochbot.model import events as ev
from epochbot.model.records import EpochRecord

_NO_COMMANDS: tuple = ()
_MS = 1_000_000

__all__ = ["SessionLifecycle"]


class SessionLifecycle:
    """Part of `epochbot.engine.engine.Engine` (a mixin: no state of its own)."""

    def _replace_session(
        self, now: int, cause: str, detected_ns: int | None = None, immediate: bool = False, liveness: bool = False
    ):
        """Close the current epoch and ask for a new session."""
        self._liveness_replaced = liveness
        previous = self._current_epoch_record()
        if previous is not None and not previous.closed_ns:
            previous.closed_ns = now
            previous.close_cause = cause
        if self._incident_start is None:
            self._incident_start = detected_ns if detected_ns is not None else now
        # "No better" is judged of sessions that a replacement produced: the startup session
        # was produced by nothing, so its loss is a fresh incident.
        healthy = (
            previous is not None
            and bool(previous.synced_ns)
            and (previous.epoch == 1 or now - previous.synced_ns >= self.config.replace_healthy_ms * _MS)
        )
        transport = self.telemetry.transport.stats(now // 1_000_000_000)
        if transport.count:
            self._last_latency_ms = transport.p50
        self.liveness.stop_session()
        self.epoch += 1
        self.session_open = False
        self.subscribed = False
        self.write_failures = 0
        self._validating.clear()
        for state in self.symbols.values():
            state.book.reset()
            state.book.last_problem = f"new session ({cause})"  # the current cause, not an old one
            state.snapshot_request = 0
            state.bad_snapshots = 0
            state.resync = None
        if self.epoch == 1:
            delay = 0.0
        elif immediate and self._failed_dials == 0:
            delay = 0.0
        else:
            delay = self._reconnect_backoff()
        if self.epoch > 1:
            # Every cause backs off when the sessions it produces are no better (core/engine/liveness.py).
            delay = max(delay, self.governor.delay_ms(now, healthy))
        self._failed_dials += 1
        record = EpochRecord(self.epoch, cause, detected_ns if detected_ns is not None else now, requested_ns=now)
        self.epochs.append(record)
        if len(self.epochs) > 5000:
            del self.epochs[:1000]
        self.telemetry.reset_connection(now)
        self._log(
            "info" if self.epoch == 1 else "warn",
            "replace session",
            cause=cause,
            new_epoch=self.epoch,
            delay_ms=round(delay, 1),
        )
        self._evaluate(now)
        return (ev.ReplaceSession(epoch=self.epoch, cause=cause, delay_ms=delay),)

    def _reconnect_backoff(self) -> float:
        # Exponential with jitter from a seeded RNG (deterministic for a given input).
        n = self._failed_dials
        base = min(self.config.reconnect_max_ms, self.config.reconnect_base_ms * (2 ** max(0, n - 1)))
        jitter = 1.0 + self.config.reconnect_jitter * (2 * self._rng.random() - 1)
        return round(base * jitter, 3)

    def start(self) -> list[ev.Command]:
        """First commands of a live engine: open epoch 1 (startup counts as the first incident)."""
        return self.begin_session("startup")

    def begin_session(self, cause: str) -> list[ev.Command]:
        """Open a new epoch on the driver's initiative (startup; replay: a recorded connection)."""
        now = self.clock()
        if self.epoch == 0:
            self.started_ns = self.started_ns or now
            return list(self._replace_session(now, cause, detected_ns=self.started_ns))
        return list(self._replace_session(now, cause, immediate=True))

    def _on_session_opened(self, event: ev.SessionOpened, now: int):
        if event.epoch != self.epoch:
            self.counters["discarded_stale_epoch"] += 1
            return _NO_COMMANDS
        self.session_open = True
        record = self._current_epoch_record()
        if record is not None:
            record.opened_ns = now
            record.url = event.url
            record.close_ms = event.close_ms
            record.dial_ms = event.dial_ms
        self.telemetry.reset_connection(now)
        self._log("info", "session opened", url=event.url)
        return _NO_COMMANDS

    def _on_subscription_confirmed(self, event: ev.SubscriptionConfirmed, now: int):
        self.subscribed = True
        record = self._current_epoch_record()
        if record is not None and not record.subscribed_ns:
            record.subscribed_ns = now
        self._log("info", "subscription confirmed", request_id=event.request_id, streams=len(event.streams))
        # The first frame may take the ceiling plus the latency the venue showed last time (stale
        # timestamps and slow routes are latency, not silence), longer after failed sessions.
        # After a replacement for silence the first frame gets at least four ceilings: a venue
        # whose frames suddenly come seconds late looks dead at first, and it is the new
        # session's first frames that show it was latency.
        streak = min(self.governor.streak, 5)
        wait = (self.config.silence_replace_ms + self._last_latency_ms) * (2**streak)
        if self._liveness_replaced:
            wait = max(wait, 4 * self.config.silence_replace_ms)
        self.liveness.start_session(now, wait)
        commands: list[ev.Command] = []
        if self.config.snapshot_on_subscribe:
            for state in self.symbols.values():
                if not state.snapshot_request and not state.book.synced:
                    commands.extend(self._request_snapshot(state, now, "subscribed"))
        return commands

    def _on_subscription_failed(self, event: ev.SubscriptionFailed, now: int):
        self._log("error", "subscription failed", reason=event.reason, request_id=event.request_id)
        return self._replace_session(now, f"subscription failed: {event.reason}")

    def _on_disconnected(self, event: ev.Disconnected, now: int):
        self._log("warn", "disconnected", reason=event.reason)
        return self._replace_session(
            now, f"disconnected: {event.reason}", detected_ns=event.recv_ts or now, immediate=True
        )

    def _on_write_failed(self, event: ev.WriteFailed, now: int):
        self.write_failures += 1
        self._log("warn", "write failed", reason=event.reason, failures=self.write_failures)
        if self.write_failures >= self.config.write_failures_replace:
            return self._replace_session(now, f"write failed: {event.reason}", immediate=True)
        return _NO_COMMANDS

    def _on_server_shutdown(self, event: ev.ServerShutdownNotice, now: int):
        self._log("warn", "venue announced close", reason=event.reason)
        return self._replace_session(now, f"server shutdown: {event.reason}", immediate=True)

    def _on_latency_degraded(self, event: ev.LatencyDegraded, now: int):
        return self._replace_session(now, f"{event.metric} degraded: {event.value_ms:.0f} ms")

    def _latency_replacement(self, now: int, cause: str):
        # A new connection cures a bad route, not a lagging venue: if the next session is just
        # as slow, wait longer before trying again (doubling, capped) instead of looping. The
        # cool-down resets once a session has been healthy for a while.
        cooldown = self._latency_cooldown_ms
        self._latency_replace_allowed_ns = now + int(cooldown * _MS)
        self._latency_cooldown_ms = min(self.config.latency_replace_cooldown_max_ms, cooldown * 2)
        self._log("warn", "latency-driven replacement", cause=cause, next_allowed_in_ms=cooldown)
        return self._replace_session(now, cause)

    def _current_epoch_record(self) -> EpochRecord | None:
        if self.epochs and self.epochs[-1].epoch == self.epoch:
            return self.epochs[-1]
        return None

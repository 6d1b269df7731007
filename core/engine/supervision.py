"""Session supervision: is the transport still worth keeping? Verdicts, not actions.

On every timer tick and every liveness probe answer the `Supervisor` judges the current session
and returns a verdict for the engine to act on:

* `Replace`: the session must go (a dead stream, a route lagging upstream, a subscription never
  acknowledged); the engine replaces it (`epochbot.engine.session`).
* `Probe`: ask the venue (``ProbeVenue`` commands) before a silent stream costs a reconnect.
* ``None``: keep the session.

What it weighs: liveness per stream (`epochbot.engine.liveness`: silence against each stream's own
rhythm, a probe before a replacement), our own load (`epochbot.engine.lag`: queue delay and a
saturated loop are ours and never replace a healthy connection; they are reported once per
episode), and transport latency with a cool-down: a latency-driven replacement is not tried
again for ``latency_replace_cooldown_ms`` (doubling, capped), and when the next session lags as
badly as the last (the venue or its clock lags, not our route) the session is kept and judged
again only after the longest wait. The cool-down resets after a minute at full confidence.

It also sets up liveness for each session: the first frame of a new session may take the
silence ceiling plus the latency the venue showed last time, longer after failed sessions and
after a replacement for silence.
"""

from __future__ import annotations

from dataclasses import dataclass

from epochbot.engine.config import EngineConfig
from epochbot.engine.lag import LOCAL, REPLACE, LagJudge
from epochbot.engine.liveness import Liveness, ReplacementGovernor
from epochbot.engine.log import EngineLog
from epochbot.engine.session import SessionMachine
from epochbot.engine.telemetry import Telemetry
from epochbot.model import events as ev

__all__ = ["Probe", "Replace", "Supervisor", "Verdict"]

_MS = 1_000_000
_S = 1_000_000_000
_COOLDOWN_RESET_NS = 60_000 * _MS  # at full confidence this long after the last allowed time


@dataclass(frozen=True, slots=True)
class Replace:
    """Replace the session: ``cause`` for the epoch record, ``detected_ns`` when it was seen
    (default now), ``immediate`` for a cause that deserves a fresh dial at once, ``liveness``
    when a liveness verdict judged the stream dead."""

    cause: str
    detected_ns: int | None = None
    immediate: bool = False
    liveness: bool = False


@dataclass(frozen=True, slots=True)
class Probe:
    """Ask the venue whether these silent streams' books moved."""

    commands: list[ev.Command]


Verdict = Replace | Probe | None


class Supervisor:
    """Judges the current session on ticks and probe answers (see the module docstring)."""

    def __init__(
        self,
        config: EngineConfig,
        session: SessionMachine,
        liveness: Liveness,
        lag: LagJudge,
        telemetry: Telemetry,
        governor: ReplacementGovernor,
        log: EngineLog,
    ) -> None:
        self.config = config
        self._session = session
        self._liveness = liveness
        self._lag = lag
        self._telemetry = telemetry
        self._governor = governor
        self._log = log.write
        self.last_latency_ms = 0.0  # transport latency p50 of the previous session (first-frame allowance)
        self.liveness_replaced = False  # the current session replaced one that liveness judged dead
        self._latency_replace_allowed_ns = 0
        self._latency_cooldown_ms = config.latency_replace_cooldown_ms
        self._latency_replaced_p50 = 0.0  # the p50 that caused the last latency-driven replacement

    # ------------------------------------------------------------------ the session's bounds

    def session_replaced(self, now: int, by_liveness: bool) -> None:
        """The session is being replaced: remember what the next one's first frame may take."""
        self.liveness_replaced = by_liveness
        transport = self._telemetry.transport.stats(now // _S)
        if transport.count:
            self.last_latency_ms = transport.p50
        self._liveness.stop_session()

    def session_subscribed(self, now: int) -> None:
        """The session is subscribed: liveness starts judging its streams."""
        # The first frame may take the ceiling plus the latency the venue showed last time (stale
        # timestamps and slow routes are latency, not silence), longer after failed sessions.
        # After a replacement for silence the first frame gets at least four ceilings: a venue
        # whose frames suddenly come seconds late looks dead at first, and it is the new
        # session's first frames that show it was latency.
        streak = min(self._governor.streak, 5)
        ceiling = self.config.silence_replace_ms
        wait = (ceiling + self.last_latency_ms) * (2**streak)
        if self.liveness_replaced:
            wait = max(wait, 4 * ceiling)
        self._liveness.start_session(now, wait)

    # ------------------------------------------------------------------ judging

    def on_load(self, now: int, loop_busy: float) -> None:
        """The runtime loop's busy share since the last tick (negative: not known)."""
        self._lag.on_load(now, loop_busy)
        self._liveness.saturated = self._lag.saturated()

    def on_tick(self, now: int, backlog_ns: int) -> Verdict:
        """Judge the session at a timer tick (``backlog_ns``: age of the oldest queued market event)."""
        session = self._session
        if session.live:
            # Silence is judged per stream against what it normally shows; before a silent
            # stream costs a reconnect the venue is asked (engine/liveness.py).
            verdict = self._liveness.check(now, backlog_ns)
            if verdict.dead:
                return Replace(verdict.dead, detected_ns=verdict.detected_ns, immediate=True, liveness=True)
            if verdict.probes:
                return self._probe(verdict.probes, now)
            return self._judge_lag(now)
        record = session.current()
        if session.session_open and record is not None and record.opened_ns:
            if (now - record.opened_ns) / _MS >= self.config.subscribe_timeout_ms:
                return Replace("subscription not confirmed in time")
        return None

    def _judge_lag(self, now: int) -> Verdict:
        # Our own backlog never replaces a healthy connection (engine/lag.py): reported only.
        cfg = self.config
        lag = self._lag
        now_s = now // _S
        queue = self._telemetry.queue.stats(now_s)
        transport = self._telemetry.transport.stats(now_s)
        action, why = lag.judge(
            transport.p50,
            transport.count,
            queue.p50,
            queue.count,
            cfg.transport_latency_replace_ms,
            cfg.queue_delay_replace_ms,
        )
        if action == LOCAL:
            if lag.start_episode():
                self._log(
                    "warn",
                    "behind: our own backlog, not the venue's; session kept",
                    reason=why,
                    queue_delay_p50_ms=round(queue.p50, 1),
                    loop_busy=round(lag.busy(), 3),
                )
            return None
        if action != REPLACE or now < self._latency_replace_allowed_ns:
            return None
        if self._latency_replaced_p50 and transport.p50 >= 0.75 * self._latency_replaced_p50:
            # The last new connection was just as slow: the venue (or its clock) lags, not our
            # route. Keep this session; judge again only after the longest wait.
            self._latency_replace_allowed_ns = now + int(cfg.latency_replace_cooldown_max_ms * _MS)
            self._log(
                "warn",
                "transport latency persists across connections: venue-side, session kept",
                p50_ms=round(transport.p50, 1),
                previous_p50_ms=round(self._latency_replaced_p50, 1),
                next_check_in_ms=cfg.latency_replace_cooldown_max_ms,
            )
            return None
        self._latency_replaced_p50 = transport.p50
        cause = f"transport latency p50 {transport.p50:.0f} ms"
        # A new connection cures a bad route, not a lagging venue: if the next session is just
        # as slow, wait longer before trying again (doubling, capped) instead of looping. The
        # cool-down resets once a session has been healthy for a while.
        cooldown = self._latency_cooldown_ms
        self._latency_replace_allowed_ns = now + int(cooldown * _MS)
        self._latency_cooldown_ms = min(cfg.latency_replace_cooldown_max_ms, cooldown * 2)
        self._log("warn", "latency-driven replacement", cause=cause, next_allowed_in_ms=cooldown)
        return Replace(cause)

    def on_probe_result(self, event: ev.ProbeResult, now: int) -> Verdict:
        """The venue's answer to a liveness probe."""
        liveness = self._liveness
        was_quiet = liveness.quiet_symbols()
        transport = self._telemetry.transport.stats(now // _S)
        verdict = liveness.on_probe(
            event.symbol,
            event.request_id,
            event.last_update_id if event.ok else None,
            now,
            latency_ms=transport.p50 if transport.count >= 20 else 0.0,
            backlog_ns=event.market_backlog_ns,
        )
        if not event.ok:
            self._log("warn", "liveness probe failed", symbol=event.symbol, reason=event.reason)
        if verdict.dead:
            return Replace(verdict.dead, detected_ns=verdict.detected_ns, immediate=True, liveness=True)
        if verdict.probes:  # the venue is ahead of us: ask again once the diff in flight had its time
            self._log(
                "info",
                "venue ahead of a silent stream: confirming after the grace",
                symbol=event.symbol,
                last_update_id=event.last_update_id,
                grace_ms=round(verdict.delay_ms, 1),
            )
            return self._probe(verdict.probes, now, verdict.delay_ms)
        quiet = liveness.quiet_symbols()
        if event.symbol in quiet and event.symbol not in was_quiet:
            self._log(
                "info",
                "quiet market: the venue's book did not move, books exact, session kept",
                symbol=event.symbol,
                last_update_id=event.last_update_id,
                fetch_ms=round(event.fetch_ms, 3),
            )
        return None

    def _probe(self, probes: tuple[tuple[str, int], ...], now: int, delay_ms: float = 0.0) -> Probe:
        commands: list[ev.Command] = []
        for symbol, request_id in probes:
            if not delay_ms:
                self._log(
                    "info",
                    "stream silent: asking the venue",
                    symbol=symbol,
                    request_id=request_id,
                    silence_ms=round(self._liveness.depth_silence_ms(symbol, now), 1),
                )
            commands.append(
                ev.ProbeVenue(
                    epoch=self._session.epoch,
                    symbol=symbol,
                    request_id=request_id,
                    limit=self.config.probe_limit,
                    delay_ms=delay_ms,
                )
            )
        return Probe(commands)

    def on_confidence(self, score: float, now: int) -> None:
        """Full confidence long after the last latency-driven replacement resets the cool-down."""
        if score >= 1.0 and now - self._latency_replace_allowed_ns > _COOLDOWN_RESET_NS:
            self._latency_cooldown_ms = self.config.latency_replace_cooldown_ms
            self._latency_replaced_p50 = 0.0

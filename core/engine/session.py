"""The transport session's lifecycle, one epoch at a time, and the epoch history.

Theory of operation
-------------------
Each transport session has an epoch, chosen here. Replacing the session closes the current
epoch's `EpochRecord`, increments ``epoch`` and opens the next record; the session then reports
back (opened, subscription acknowledged) and the record times each phase: detect, close, dial,
subscribe, snapshot, rebuild, validate (the last three are stamped by `epochbot.engine.repair`
through `resynchronized`). Market events are accepted only for ``accepting``: the current epoch
while the engine runs, none once it stopped.

The states of the current epoch's session::

    IDLE --replace--> DIALING --opened--> OPEN --acknowledged--> SUBSCRIBED
      any --replace--> DIALING           (a new epoch: the old session is void)
      any --stop--> the same state, stopped (shutdown or fatal; the phase stays on record)

Everything that moves the machine is in ``TRANSITIONS`` below; a move that is not there raises
`IllegalSessionTransition` and leaves the machine untouched. A few rows are tolerated rather than
expected: an acknowledgement before the open notice (``ACKED``; the runtime reports the open
first, hand-made inputs may not), a repeated notice, an epoch-0 notice before any epoch was
asked for. They are legal because the engine has always accepted them, and a replay of old
input must decide the same.

The delay before the next dial is chosen here too: 0 for a first loss, then exponential back-off
with jitter from a seeded generator (deterministic for the same input), never less than the
`ReplacementGovernor` asks for once sessions stop coming out healthy.
"""

from __future__ import annotations

import random
from enum import Enum

from epochbot.book.book import IllegalTransition
from epochbot.engine.config import EngineConfig
from epochbot.engine.liveness import ReplacementGovernor
from epochbot.model.records import EpochRecord

__all__ = ["IllegalSessionTransition", "SessionMachine", "SessionState", "Trigger"]

_MS = 1_000_000
_HISTORY = 5000  # epoch records kept (the oldest 1000 go when it is full)
_MAX_DOUBLINGS = 1000  # of a back-off: far past any ceiling, and still a float


class SessionState(Enum):
    IDLE = "idle"  # no epoch asked for yet
    DIALING = "dialing"  # ReplaceSession(epoch) sent; waiting for the session to open
    OPEN = "open"  # connected; waiting for the subscription's acknowledgement
    ACKED = "acked"  # acknowledged before the open notice (tolerated; see the module docstring)
    SUBSCRIBED = "subscribed"  # connected and subscribed: market data flows, liveness judges it


class Trigger(Enum):
    REPLACE = "replace"
    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    STOP = "stop"


class IllegalSessionTransition(IllegalTransition):
    """A session move the lifecycle does not allow: a defect of the caller (state untouched)."""


_I, _D, _O, _A, _S = (
    SessionState.IDLE,
    SessionState.DIALING,
    SessionState.OPEN,
    SessionState.ACKED,
    SessionState.SUBSCRIBED,
)
_REPLACE, _OPENED, _ACK, _STOP = Trigger.REPLACE, Trigger.OPENED, Trigger.ACKNOWLEDGED, Trigger.STOP

# (state, trigger) -> next state, while the engine runs.
TRANSITIONS: dict[tuple[SessionState, Trigger], SessionState] = {
    (_I, _REPLACE): _D,  # startup (or the replay driver's first connection)
    (_I, _OPENED): _O,  # tolerated: an epoch-0 notice before any epoch was asked for
    (_I, _ACK): _A,  # tolerated, likewise
    (_I, _STOP): _I,
    (_D, _REPLACE): _D,  # the dial failed or the session died before it opened: next epoch
    (_D, _OPENED): _O,
    (_D, _ACK): _A,  # tolerated: acknowledged before the open notice
    (_D, _STOP): _D,
    (_O, _REPLACE): _D,
    (_O, _OPENED): _O,  # a repeated open notice
    (_O, _ACK): _S,
    (_O, _STOP): _O,
    (_A, _REPLACE): _D,
    (_A, _OPENED): _S,  # the late open notice completes the session
    (_A, _ACK): _A,
    (_A, _STOP): _A,
    (_S, _REPLACE): _D,
    (_S, _OPENED): _S,  # a repeated open notice keeps the acknowledgement
    (_S, _ACK): _S,  # one acknowledgement per subscribe request (many for many streams)
    (_S, _STOP): _S,
}
# Once stopped, only these still move it: the replay driver may open the epochs a recording
# holds after a fatal stop (the hash counts them), and a second fatal reason may arrive.
AFTER_STOP = frozenset({_REPLACE, _STOP})


class SessionMachine:
    """The current epoch, its session's state and the epoch history (see the module docstring).

    Args:
        config: the engine's configuration (reconnect back-off, healthy time, seed).
        governor: the back-off every replacement cause goes through (`epochbot.engine.liveness`).
    """

    def __init__(self, config: EngineConfig, governor: ReplacementGovernor) -> None:
        self.config = config
        self.governor = governor
        self.state = SessionState.IDLE
        self.stopped = False
        self.epoch = 0
        self.accepting: int | None = 0  # the epoch whose market events count (None once stopped)
        self.epochs: list[EpochRecord] = []
        self.write_failures = 0  # in the current session
        self._failed_dials = 0  # replacements since the last resynchronisation
        self._rng = random.Random(config.seed)

    # ------------------------------------------------------------------ what the state says

    @property
    def session_open(self) -> bool:
        """The transport is connected (whether or not its subscription is acknowledged)."""
        return self.state is SessionState.OPEN or self.state is SessionState.SUBSCRIBED

    @property
    def subscribed(self) -> bool:
        """The subscription is acknowledged (whether or not the open notice came)."""
        return self.state is SessionState.SUBSCRIBED or self.state is SessionState.ACKED

    @property
    def live(self) -> bool:
        """Connected and subscribed: market data should flow."""
        return self.state is SessionState.SUBSCRIBED

    def current(self) -> EpochRecord | None:
        """The current epoch's record (None before the first replacement)."""
        epochs = self.epochs
        if epochs and epochs[-1].epoch == self.epoch:
            return epochs[-1]
        return None

    # ------------------------------------------------------------------ transitions

    def _next(self, trigger: Trigger) -> SessionState:
        """The state ``trigger`` leads to; raises, touching nothing, if the move is illegal."""
        target = TRANSITIONS.get((self.state, trigger))
        if target is None or (self.stopped and trigger not in AFTER_STOP):
            stopped = " (stopped)" if self.stopped else ""
            raise IllegalSessionTransition(f"session {self.state.value}{stopped} --{trigger.value}-->")
        return target

    def replace(self, now: int, cause: str, detected_ns: int | None = None, immediate: bool = False) -> float:
        """Close the current epoch and open the next; returns the delay (ms) before dialling it.

        ``immediate``: a cause that deserves a fresh dial at once when the last one succeeded
        (a disconnect, the operator); the governor's back-off applies whatever the cause.
        """
        target = self._next(_REPLACE)
        previous = self.current()
        if previous is not None and not previous.closed_ns:
            previous.closed_ns = now
            previous.close_cause = cause
        # "No better" is judged of sessions that a replacement produced: the startup session
        # was produced by nothing, so its loss is a fresh incident.
        healthy = (
            previous is not None
            and bool(previous.synced_ns)
            and (previous.epoch == 1 or now - previous.synced_ns >= self.config.replace_healthy_ms * _MS)
        )
        self.state = target
        self.epoch += 1
        if not self.stopped:
            self.accepting = self.epoch
        self.write_failures = 0
        if self.epoch == 1:
            delay = 0.0
        elif immediate and self._failed_dials == 0:
            delay = 0.0
        else:
            delay = self._reconnect_backoff()
        if self.epoch > 1:
            # Every cause backs off when the sessions it produces are no better (engine/liveness.py).
            delay = max(delay, self.governor.delay_ms(now, healthy))
        self._failed_dials += 1
        self.epochs.append(
            EpochRecord(self.epoch, cause, detected_ns if detected_ns is not None else now, requested_ns=now)
        )
        if len(self.epochs) > _HISTORY:
            del self.epochs[:1000]
        return delay

    def _reconnect_backoff(self) -> float:
        # Exponential with jitter from a seeded RNG (deterministic for a given input).
        n = self._failed_dials
        cfg = self.config
        # The exponent is capped where the product is past any ceiling anyway: 2**1024 no longer
        # converts to a float, and an outage of a thousand failed dials must not raise here.
        doubling: int = 2 ** min(_MAX_DOUBLINGS, max(0, n - 1))
        base = min(cfg.reconnect_max_ms, cfg.reconnect_base_ms * doubling)
        jitter = 1.0 + cfg.reconnect_jitter * (2 * self._rng.random() - 1)
        return round(base * jitter, 3)

    def opened(self, now: int, url: str, close_ms: float, dial_ms: float) -> None:
        """The session of the current epoch is connected (timings measured by the runtime)."""
        self.state = self._next(_OPENED)
        record = self.current()
        if record is not None:
            record.opened_ns = now
            record.url = url
            record.close_ms = close_ms
            record.dial_ms = dial_ms

    def acknowledged(self, now: int) -> None:
        """A subscription of the current session was acknowledged."""
        self.state = self._next(_ACK)
        record = self.current()
        if record is not None and not record.subscribed_ns:
            record.subscribed_ns = now

    def stop(self, now: int, close_cause: str | None = None) -> None:
        """The engine stops (no more market events count); ``close_cause`` closes the epoch's
        record (a shutdown), None leaves it open (a fatal stop: the record shows where it broke)."""
        self.state = self._next(_STOP)
        self.stopped = True
        self.accepting = None
        record = self.current()
        if close_cause is not None and record is not None and not record.closed_ns:
            record.closed_ns = now
            record.close_cause = close_cause

    # ------------------------------------------------------------------ within an epoch

    def resynchronized(self, now: int) -> EpochRecord | None:
        """Every book of an opened epoch is synced and validated: stamp its record (the first
        time only) and reset the dial back-off. Returns the record when this call stamped it."""
        record = self.current()
        if record is None or record.synced_ns or not record.opened_ns:
            return None
        record.synced_ns = now
        record.snapshots_ns = record.snapshots_ns or now
        self._failed_dials = 0
        return record

    def write_failed(self) -> int:
        """One more failed write in this session; returns how many so far."""
        self.write_failures += 1
        return self.write_failures

    def subscription_pending_ms(self, now: int) -> float:
        """How long the open session has waited for its acknowledgement (0: not waiting)."""
        record = self.current()
        if self.state is SessionState.OPEN and record is not None and record.opened_ns:
            return (now - record.opened_ns) / _MS
        return 0.0

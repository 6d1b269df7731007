"""Confidence in the local picture of the market: a number in [0, 1] and why it is not 1.

Each input is a *factor* with a warn and a critical threshold and a weight. Below warn it costs
nothing; between warn and critical its severity ramps linearly from 0 to 1; above critical it is
1. Confidence is the product of ``1 - weight * severity`` over all factors, so one critical
factor with weight 1 drives it to zero whatever the others say, and several mild ones compound.

Every factor with a non-zero severity becomes a `Reason` carrying its measured value and the
threshold it crossed, so the dashboard and the logs can say *why* in operator terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Confidence", "ConfidenceConfig", "ConfidenceInputs", "FactorConfig", "Reason", "evaluate"]


@dataclass(frozen=True, slots=True)
class FactorConfig:
    warn: float
    critical: float
    weight: float = 1.0

    def severity(self, value: float) -> float:
        if value <= self.warn:
            return 0.0
        if value >= self.critical or self.critical <= self.warn:
            return 1.0
        return (value - self.warn) / (self.critical - self.warn)


def _default_factors() -> dict[str, FactorConfig]:
    # Defaults a reader of Binance's docs would pick for @100ms depth streams: a healthy stream
    # speaks at least every 100 ms, so 500 ms of silence is odd and 1.5 s is dead; the REST
    # snapshot normally takes tens of ms, 2 s of waiting for one is a problem.
    return {
        "market_silence_ms": FactorConfig(warn=500, critical=1500, weight=1.0),
        "transport_latency_ms": FactorConfig(warn=250, critical=1000, weight=0.6),
        "queue_delay_ms": FactorConfig(warn=20, critical=200, weight=0.6),
        "invalid_books": FactorConfig(warn=0, critical=1, weight=1.0),  # fraction of books not synced
        "subscription_pending_ms": FactorConfig(warn=1000, critical=5000, weight=1.0),
        "write_failures": FactorConfig(warn=0, critical=3, weight=0.8),  # in the last window
        "snapshot_wait_ms": FactorConfig(warn=1000, critical=5000, weight=0.5),
        "session_down": FactorConfig(warn=0, critical=1, weight=1.0),
        # Liveness (core/engine/liveness.py): a stream silent beyond what it normally shows and not yet
        # explained steps the mode down (makers pulled) until the venue's answer settles it; a
        # quiet market (the venue's book did not move either) costs nothing but is named.
        "stall_suspected": FactorConfig(warn=0, critical=1, weight=0.6),  # streams suspected
        "quiet_market_ms": FactorConfig(warn=0, critical=60_000, weight=0.0),
        # Fraction of books whose snapshot waits for request weight (the venue's per-minute
        # limit is spent): no extra penalty (invalid_books already counts them), but the reason
        # says why those books are not synced yet.
        "books_awaiting_weight": FactorConfig(warn=0, critical=1, weight=0.0),
        # Trading only: the account stream is down, fills reach us only by reconciliation.
        # A moment's replacement is normal; five seconds without it costs exposure.
        "account_stream_down_ms": FactorConfig(warn=1000, critical=5000, weight=0.5),
        # Share of the runtime loop's time spent working (core/engine/lag.py): above 0.9 we are the slow
        # side and latency figures include our own backlog. Named, no penalty of its own (queue
        # delay and latency already cost what the backlog does to the picture).
        "loop_busy": FactorConfig(warn=0.9, critical=1.0, weight=0.0),
    }


@dataclass(frozen=True, slots=True)
class ConfidenceConfig:
    factors: dict[str, FactorConfig] = field(default_factory=_default_factors)


@dataclass(frozen=True, slots=True)
class ConfidenceInputs:
    market_silence_ms: float = 0.0
    transport_latency_ms: float = 0.0
    queue_delay_ms: float = 0.0
    invalid_books: float = 0.0
    subscription_pending_ms: float = 0.0
    write_failures: float = 0.0
    snapshot_wait_ms: float = 0.0
    session_down: float = 0.0
    stall_suspected: float = 0.0
    quiet_market_ms: float = 0.0
    books_awaiting_weight: float = 0.0
    account_stream_down_ms: float = 0.0
    loop_busy: float = 0.0


@dataclass(frozen=True, slots=True)
class Reason:
    factor: str
    value: float
    warn: float
    critical: float
    penalty: float  # how much this factor alone takes off (weight * severity)

    def describe(self) -> str:
        return f"{self.factor}={self.value:g} (warn {self.warn:g}, critical {self.critical:g})"


@dataclass(frozen=True, slots=True)
class Confidence:
    score: float
    reasons: tuple[Reason, ...] = ()

    @property
    def reason_names(self) -> tuple[str, ...]:
        return tuple(r.factor for r in self.reasons)


def evaluate(inputs: ConfidenceInputs, config: ConfidenceConfig) -> Confidence:
    score = 1.0
    reasons = []
    for name, factor in config.factors.items():
        value = getattr(inputs, name)
        severity = factor.severity(value)
        if severity <= 0.0:
            continue
        penalty = min(1.0, factor.weight * severity)
        score *= 1.0 - penalty
        reasons.append(Reason(name, round(value, 3), factor.warn, factor.critical, round(penalty, 4)))
    reasons.sort(key=lambda r: -r.penalty)
    return Confidence(max(0.0, min(1.0, round(score, 6))), tuple(reasons))

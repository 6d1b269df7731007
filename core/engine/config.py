"""The engine's knobs: one frozen record, read by every part (durations in milliseconds).

Journals record it in their header (`epochbot.runtime.journal_inputs`), so a replay runs with
the configuration of the run it replays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from epochbot.book.book import VenueRules
from epochbot.engine.confidence import ConfidenceConfig
from epochbot.engine.modes import ModeConfig

__all__ = ["EngineConfig", "FATAL_EXIT_CODE"]

# The exit code of a fatal stop (state corruption): `Stop(exit_code=FATAL_EXIT_CODE)`.
FATAL_EXIT_CODE = 3


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Knobs of the core. Durations in milliseconds."""

    venue: VenueRules = VenueRules.USDM
    symbols: tuple[str, ...] = ()
    track_new_symbols: bool = False  # replay: adopt any symbol that shows up in the stream
    snapshot_limit: int = 1000
    snapshot_limits: dict[str, int] = field(default_factory=dict)  # symbol -> depth, overriding snapshot_limit
    # Diffs kept per book while it waits for its snapshot (the newest; older ones are useless
    # once the snapshot is fetched after them). 600 is a minute of a @100ms stream.
    book_buffer_limit: int = 600
    snapshot_on_subscribe: bool = True  # fetch at the subscribe ack instead of the first diff
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)
    modes: ModeConfig = field(default_factory=ModeConfig)
    # Session replacement triggers.
    silence_replace_ms: float = 1500.0  # liveness: the ceiling for a stream with no history
    liveness_floor_ms: float = 200.0  # ... and never suspect a stream sooner than this
    probe_limit: int = 5  # REST depth limit of a liveness probe (USD-M weight 2, spot 5)
    replace_healthy_ms: float = 1500.0  # a session synced this long resets the replacement back-off
    replace_backoff_max_ms: float = 60_000.0
    # With 2 routes per USD-M session: 200 connections < Binance's 300 / 5 min / IP.
    replace_max_per_5min: int = 100
    transport_latency_replace_ms: float = 3000.0
    queue_delay_replace_ms: float = 1000.0  # our own backlog: warned about, never a replacement (engine/lag.py)
    loop_busy_saturated: float = 0.9  # above this busy share, "transport" latency is our own backlog
    subscribe_timeout_ms: float = 3000.0
    write_failures_replace: int = 1
    latency_replace_cooldown_ms: float = 10_000.0  # after a latency-driven replacement; doubles
    latency_replace_cooldown_max_ms: float = 300_000.0
    # Snapshot retries and backoff (the runtime sleeps delay_ms before acting).
    snapshot_retry_base_ms: float = 20.0
    snapshot_retry_max_ms: float = 2000.0
    reconnect_base_ms: float = 25.0
    reconnect_max_ms: float = 5000.0
    reconnect_jitter: float = 0.25
    max_bad_snapshots: int = 8  # consecutive crossed/unbridgeable snapshots for one book -> fatal
    trade_history: int = 50
    log_capacity: int = 2000
    # Candles and range bars (kept per symbol, bounded). range_bar_bps 0 disables range bars.
    candle_history: int = 1000
    range_bar_bps: int = 10
    range_bar_keep: int = 200
    seed: int = 0

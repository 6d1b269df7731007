"""What a `epochbot.runtime.runtime.Runtime` is told: the venue's endpoints, the symbols, the
engine's configuration, trading and journaling, and the I/O limits around them.

The runtime connects to whatever URLs ``RuntimeConfig.venue`` names; it knows no venue of its
own. ``VENUES`` lists the published Binance endpoints, plus ``sim``: the embedded simulator,
whose URLs are empty until the app has started it (`epochbot.app.embedded_sim`) and handed them
over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from epochbot.engine.engine import EngineConfig

__all__ = ["VENUES", "JournalConfig", "RuntimeConfig", "TradingConfig", "VenueEndpoints"]


@dataclass(frozen=True, slots=True)
class VenueEndpoints:
    name: str
    market: Literal["spot", "usdm"]
    rest_url: str
    ws_url: str


VENUES: dict[str, VenueEndpoints] = {
    "sim": VenueEndpoints("sim", "usdm", "", ""),
    "binance-spot": VenueEndpoints("binance-spot", "spot", "https://api.binance.com", "wss://stream.binance.com:9443"),
    "binance-usdm": VenueEndpoints("binance-usdm", "usdm", "https://fapi.binance.com", "wss://fstream.binance.com"),
    "binance-spot-testnet": VenueEndpoints(
        "binance-spot-testnet", "spot", "https://testnet.binance.vision", "wss://stream.testnet.binance.vision"
    ),
    "binance-usdm-testnet": VenueEndpoints(
        "binance-usdm-testnet", "usdm", "https://testnet.binancefuture.com", "wss://fstream.binancefuture.com"
    ),
}


@dataclass(frozen=True, slots=True)
class TradingConfig:
    """Paper or live trading. Keys are resolved secret values: never printed (repr=False)."""

    strategy: str
    params: dict = field(default_factory=dict)
    api_key: str = field(default="", repr=False)
    api_secret: str = field(default="", repr=False)
    storage_path: str | None = None  # SQLite file; None keeps nothing across restarts
    # Start with an empty database (the embedded simulator starts fresh every run, so state
    # stored by an earlier run describes accounts that no longer exist): see epochbot.app.config.
    storage_per_run: bool = False
    limits: object | None = None  # epochbot.trading.risk.RiskLimits
    cancel_on_shutdown: bool = True
    recv_window_ms: int = 5000
    # An UNKNOWN order the venue says it does not know is queried again (with backoff) until
    # this long after it was signed; only then is it taken as never placed (see orders.py).
    unknown_window_ms: int = 15_000
    # Orders at the venue with our client-id prefix that the journal does not know, found at
    # start: "cancel" them (default), "adopt" them, or "ignore" them. Orders without our
    # prefix are never touched unless foreign_orders is "cancel".
    unknown_orders: str = "cancel"
    foreign_orders: str = "ignore"
    ws_orders: bool = True  # orders over the WebSocket API while its session is up (REST otherwise)


@dataclass(frozen=True, slots=True)
class JournalConfig:
    directory: str
    max_bytes: int = 64 * 1024 * 1024
    keep: int = 8


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    venue: VenueEndpoints
    symbols: tuple[str, ...]
    engine: EngineConfig = field(default_factory=EngineConfig)
    snapshot_hz: float = 20.0
    tick_ms: float = 50.0
    market_queue_size: int = 20_000
    http_timeout_s: float = 5.0
    retry_after_cap_s: float = 60.0  # Retry-After honoured up to this (logged when capped)
    trades: bool = True
    tickers: bool = True
    # Replace the session this long after it opened, before Binance's 24-hour cut.
    max_session_s: float = 23.5 * 3600
    # Connection attempts: at most this many dials per window (Binance limits connection rate).
    dial_budget: int = 10
    dial_window_s: float = 10.0
    clock_offset_interval_s: float = 300.0
    # The embedded simulator the app starts for venue "sim" without URLs (epochbot.app.embedded_sim):
    # carried here for the app, never read by the runtime. TODO(config): move to the app's
    # settings once epochbot.app.config stops building them into this config.
    sim_seed: int = 7
    sim_rate: float | None = None
    sim_port: int = 0  # 0: ephemeral (its URLs are logged); fixed to reach /_sim/fault easily
    sim_faults: tuple[dict, ...] = ()
    trading: TradingConfig | None = None
    journal: JournalConfig | None = None
    # Once the first epoch is synced: collect, then freeze the heap (see loop.freeze_heap_when_synced).
    gc_freeze: bool = True
    # Candles: fetched for this many minutes back at start (0: no backfill), and subscribed live.
    history_interval: str = "1m"
    history_lookback_min: int = 120
    # REST request weight (core/runtime/budget.py): None takes the venue's limit (spot 6000, USD-M 2400).
    weight_limit: int | None = None
    weight_headroom: float = 0.1
    snapshot_concurrency: int = 8
    # Symbols the strategy trades (their snapshots go first); None: all of them when trading.
    traded_symbols: tuple[str, ...] | None = None
    # Streams of watched (not traded) symbols: "all" (depth, bookTicker, aggTrade, markPrice,
    # kline, and their kline backfill) or "depth" (the book only: a fraction of the messages).
    watched_streams: Literal["all", "depth"] = "all"

"""The configuration models: `Settings` (one epochbot process) and its sections, and `load_settings`.

Every section forbids unknown keys and is frozen; validators say what is wrong in words an
operator can act on. The layering is pydantic-settings' (`Settings.settings_customise_sources`,
the sources in sources.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from .errors import ENV_PREFIX, ConfigError, one_line
from .sources import LoadRequest, env_value, layers, loading

__all__ = [
    "DEFAULT_KEYS",
    "VENUE_NAMES",
    "ConfidenceSettings",
    "ControlSettings",
    "FactorOverride",
    "JournalSettings",
    "ModeSettings",
    "ResyncSettings",
    "RiskSettings",
    "Settings",
    "SimSettings",
    "StrategySettings",
    "load_settings",
]

VENUE_NAMES = ("sim", "binance-spot", "binance-usdm", "binance-spot-testnet", "binance-usdm-testnet")
Market = Literal["usdm", "spot"]
_VENUE_MARKET: dict[str, Market] = {
    "binance-spot": "spot",
    "binance-spot-testnet": "spot",
    "binance-usdm": "usdm",
    "binance-usdm-testnet": "usdm",
}
# Dashboard actions and their default keys (epochbot.app.console.tui maps these names onto its action_* methods;
# force_resync/cycle_mode/switch_symbol are its resync_all/choose_mode/next_symbol).
DEFAULT_KEYS: dict[str, str] = {
    "force_resync": "r",
    "new_epoch": "e",
    "halt": "h",
    "cycle_mode": "m",
    "pause": "p",
    "switch_symbol": "s",
    "quit": "q",
    "resync_symbol": "R",
    "cycle_log_level": "l",
    "toggle_theme": "t",
    "toggle_log_epoch": "c",
    "next_view": "v",
    "cancel_all": "X",
    "flatten": "F",
}
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


class FactorOverride(_Section):
    """Override of one confidence factor (see core/engine/confidence.py); unset fields keep the default."""

    warn: float | None = Field(default=None, ge=0)
    critical: float | None = Field(default=None, ge=0)
    weight: float | None = Field(default=None, ge=0, le=1)


def _known_factors() -> tuple[str, ...]:
    from epochbot.engine.confidence import ConfidenceConfig

    return tuple(ConfidenceConfig().factors)


class ConfidenceSettings(_Section):
    """When the session is replaced, and how confidence is scored."""

    silence_replace_ms: float = Field(default=1500.0, gt=0)
    transport_latency_replace_ms: float = Field(default=3000.0, gt=0)
    queue_delay_replace_ms: float = Field(default=1000.0, gt=0)
    subscribe_timeout_ms: float = Field(default=3000.0, gt=0)
    write_failures_replace: int = Field(default=1, ge=1)
    factors: dict[str, FactorOverride] = Field(default_factory=dict)

    @field_validator("factors")
    @classmethod
    def _factor_names(cls, value: dict[str, FactorOverride]) -> dict[str, FactorOverride]:
        known = _known_factors()
        for name in value:
            if name not in known:
                raise ValueError(f"unknown factor {name!r}; known factors: {', '.join(known)}")
        return value


class ResyncSettings(_Section):
    """Snapshots and reconnect backoff."""

    snapshot_limit: int = 1000
    # Per-symbol snapshot depth (e.g. {ETHUSDT = 100} for a watched symbol), overriding the above.
    snapshot_limits: dict[str, int] = Field(default_factory=dict)
    # REST request weight per minute planned for snapshots and backfill (None: the venue's
    # limit, spot 6000 / USD-M 2400), the fraction left unplanned, requests in flight at once.
    weight_limit: int | None = Field(default=None, ge=10)
    weight_headroom: float = Field(default=0.1, ge=0, lt=1)
    snapshot_concurrency: int = Field(default=8, ge=1, le=64)
    # Symbols whose snapshots go first (None: every symbol when a strategy trades).
    traded_symbols: tuple[str, ...] | None = None
    # Streams of watched (not traded) symbols: "all", or "depth" (books only; far fewer messages).
    watched_streams: Literal["all", "depth"] = "all"
    snapshot_retry_base_ms: float = Field(default=20.0, gt=0)
    snapshot_retry_max_ms: float = Field(default=2000.0, gt=0)
    reconnect_base_ms: float = Field(default=25.0, gt=0)
    reconnect_max_ms: float = Field(default=5000.0, gt=0)
    reconnect_jitter: float = Field(default=0.25, ge=0, le=1)
    max_bad_snapshots: int = Field(default=8, ge=1)
    # A venue's Retry-After (429/418/503) is honoured up to this many seconds, with a warning.
    retry_after_cap_s: float = Field(default=60.0, ge=0, le=3600)

    @field_validator("snapshot_limit")
    @classmethod
    def _binance_limit(cls, value: int) -> int:
        if value not in (5, 10, 20, 50, 100, 500, 1000, 5000):
            raise ValueError(f"must be one of Binance's depth limits 5, 10, 20, 50, 100, 500, 1000, 5000; got {value}")
        return value

    @field_validator("snapshot_limits")
    @classmethod
    def _binance_limits(cls, value: dict[str, int]) -> dict[str, int]:
        for symbol, limit in value.items():
            if limit not in (5, 10, 20, 50, 100, 500, 1000, 5000):
                raise ValueError(
                    f"{symbol}: must be one of Binance's depth limits 5, 10, 20, 50, 100, 500, 1000, 5000; got {limit}"
                )
        return {symbol.upper(): limit for symbol, limit in value.items()}

    @model_validator(mode="after")
    def _ordered(self) -> ResyncSettings:
        if self.reconnect_max_ms < self.reconnect_base_ms:
            raise ValueError("reconnect_max_ms must be >= reconnect_base_ms")
        if self.snapshot_retry_max_ms < self.snapshot_retry_base_ms:
            raise ValueError("snapshot_retry_max_ms must be >= snapshot_retry_base_ms")
        return self


class ModeSettings(_Section):
    """Confidence floors of the trading modes and the recovery hysteresis."""

    normal_at: float = Field(default=0.8, ge=0, le=1)
    reduce_only_at: float = Field(default=0.5, ge=0, le=1)
    cancel_makers_at: float = Field(default=0.2, ge=0, le=1)
    recovery_hold_ms: float = Field(default=2000.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> ModeSettings:
        if not (self.normal_at >= self.reduce_only_at >= self.cancel_makers_at):
            raise ValueError("floors must satisfy normal_at >= reduce_only_at >= cancel_makers_at")
        return self


class SimSettings(_Section):
    """The embedded simulator (venue ``sim``)."""

    seed: int = 7
    rate: float = Field(default=10.0, gt=0, le=10_000)
    port: int = Field(default=0, ge=0, le=65535)  # 0: ephemeral; its URL is in the log


class ControlSettings(_Section):
    """The loopback HTTP control/metrics endpoint."""

    enabled: bool | None = None  # None: on in headless mode, off under the dashboard
    host: Literal["127.0.0.1"] = "127.0.0.1"  # loopback only, deliberately not configurable
    port: int = Field(default=8780, ge=0, le=65535)
    token: SecretStr | None = None

    @field_validator("host", mode="before")
    @classmethod
    def _loopback_only(cls, value: Any) -> Any:
        if value != "127.0.0.1":
            raise ValueError("the control endpoint binds 127.0.0.1 only (use an SSH tunnel or a reverse proxy)")
        return value

    @field_validator("token")
    @classmethod
    def _token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


class StrategySettings(_Section):
    """Which strategy trades. ``auto``: the quoter paper-trades on the simulator, nothing
    trades on a real venue unless named here."""

    name: str = "auto"
    params: dict[str, Any] = Field(default_factory=dict)
    cancel_on_shutdown: bool = True
    # An UNKNOWN order the venue does not find is asked again until this long after sending.
    unknown_window_ms: int = Field(default=15_000, ge=0, le=600_000)
    # Venue orders with our client-id prefix unknown to the journal, found at start.
    unknown_orders: Literal["cancel", "adopt", "ignore"] = "cancel"
    # Venue orders without our prefix: never touched unless "cancel".
    foreign_orders: Literal["ignore", "cancel"] = "ignore"

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        from epochbot.trading.strategy import StrategyError, load_strategy_factory, strategy_names

        choices = ("auto", "none", *strategy_names())
        if value not in choices:
            raise ValueError(f"unknown strategy {value!r}; choose one of: {', '.join(choices)}")
        if value not in ("auto", "none"):
            try:  # a plug-in that cannot be imported is a configuration error, said in one line
                load_strategy_factory(value)
            except StrategyError as exc:
                raise ValueError(str(exc)) from None
        return value


class RiskSettings(_Section):
    """Pre-trade limits (quote amounts as decimal strings; 0/None = no limit)."""

    max_position_lots: int = Field(default=0, ge=0)
    max_order_notional: Decimal | None = Field(default=None, gt=0)
    session_loss_limit: Decimal | None = Field(default=None, gt=0)
    daily_loss_limit: Decimal | None = Field(default=None, gt=0)
    breaker_losses: int = Field(default=3, ge=1)
    breaker_window_s: float = Field(default=600.0, gt=0)
    breaker_cooldown_s: float = Field(default=900.0, gt=0)


class JournalSettings(_Section):
    """Journal of every engine input in consumption order (capture format v2, docs/capture-format.md;
    `epochbot replay DIR` replays the last run to the state it ended in)."""

    directory: Path | None = None  # None: off
    max_mb: int = Field(default=64, ge=1)
    keep: int = Field(default=8, ge=1)


class Settings(BaseSettings):
    """The merged configuration of one epochbot process. Build it with `load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    venue: Literal["sim", "binance-spot", "binance-usdm", "binance-spot-testnet", "binance-usdm-testnet"] = "sim"
    # The `instance` label on /metrics (one Prometheus scrapes a fleet); None: hostname + symbols.
    instance: str | None = Field(default=None, min_length=1, max_length=200)
    market: Market | None = None  # sim only; other venues imply it
    symbols: Annotated[tuple[str, ...], NoDecode] = ("BTCUSDT", "ETHUSDT")
    rest_url: str | None = None
    ws_url: str | None = None
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    secrets_file: Path | None = None
    sim: SimSettings = Field(default_factory=SimSettings)
    confidence: ConfidenceSettings = Field(default_factory=ConfidenceSettings)
    resync: ResyncSettings = Field(default_factory=ResyncSettings)
    modes: ModeSettings = Field(default_factory=ModeSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    strategy: StrategySettings = Field(default_factory=StrategySettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    journal: JournalSettings = Field(default_factory=JournalSettings)
    snapshot_hz: float = Field(default=20.0, gt=0, le=100)
    status_interval_s: float = Field(default=5.0, gt=0)
    report: Path | None = None
    duration: float | None = Field(default=None, gt=0)
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    log_format: Literal["json", "text"] = "json"  # headless stderr: JSON lines, or one readable line each
    log_file: Path | None = None  # headless: also append JSON lines here
    keys: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_KEYS))
    theme: str = "epochbot-dark"
    storage: Path = Path("epochbot.sqlite3")
    headless: bool = False
    # Where the dashboard runs the core: its own process (default, lowest queue delay) or a
    # thread of the UI process (bench/dashboard_queue_delay.py compares them).
    dashboard_hosting: Literal["process", "thread"] = "process"

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, (list, tuple)):
            out: list[str] = []
            for item in value:
                if not isinstance(item, str) or not _SYMBOL.match(item):
                    raise ValueError(f"must be uppercase symbols like BTCUSDT, got {item!r}")
                if item in out:
                    raise ValueError(f"duplicate symbol {item!r}")
                out.append(item)
            if not out:
                raise ValueError("at least one symbol is required")
            return tuple(out)
        return value

    @field_validator("rest_url")
    @classmethod
    def _rest_scheme(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("ws_url")
    @classmethod
    def _ws_scheme(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^wss?://[^/\s]+", value):
            raise ValueError(f"must be a ws:// or wss:// URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return {"warning": "warn", "critical": "error"}.get(value, value)
        return value

    @field_validator("keys", mode="before")
    @classmethod
    def _merge_keys(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        unknown = [k for k in value if k not in DEFAULT_KEYS]
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r}; actions: {', '.join(DEFAULT_KEYS)}")
        merged = {**DEFAULT_KEYS, **{k: str(v) for k, v in value.items()}}
        seen: dict[str, str] = {}
        for action, key in merged.items():
            if not key.strip():
                raise ValueError(f"{action}: empty key")
            if key in seen:
                raise ValueError(f"key {key!r} bound to both {seen[key]} and {action}")
            seen[key] = action
        return merged

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        implied = _VENUE_MARKET.get(self.venue)
        if implied is not None and self.market not in (None, implied):
            raise ValueError(f"market: venue {self.venue} is {implied}, got market {self.market!r}")
        if (self.rest_url is None) != (self.ws_url is None):
            raise ValueError("rest_url and ws_url: set both or neither")
        return self

    # ------------------------------------------------------------------ derived values

    @property
    def effective_market(self) -> Market:
        return _VENUE_MARKET.get(self.venue) or self.market or "usdm"

    @property
    def embedded_sim(self) -> bool:
        """True when this process must start the simulator itself (venue sim, no URL override)."""
        return self.venue == "sim" and self.rest_url is None

    def control_enabled(self, headless: bool) -> bool:
        return headless if self.control.enabled is None else self.control.enabled

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (the init values) > EPOCHBOT_* environment > TOML file > secrets file > defaults
        # (sources.py). No .env file and no secrets_dir: epochbot never read either.
        return layers(settings_cls, init_settings)


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults < TOML < environment < flags into a validated `Settings`.

    Args:
        config_path: the ``--config`` file (None: no file; ``EPOCHBOT_CONFIG`` is honoured).
        flags: command-line overrides as a nested dict (``{"control": {"port": 0}}``).
        env: the environment (default ``os.environ``); only ``EPOCHBOT_*`` names are read.

    Raises:
        ConfigError: one line naming the field and the problem, never a secret's value.
    """
    environ = os.environ if env is None else env
    if config_path is None:
        config_path = env_value(environ, "CONFIG")
    request = LoadRequest(config_path=Path(config_path) if config_path else None, environ=environ)
    try:
        with loading(request):
            return Settings(**dict(flags or {}))
    except ValidationError as exc:
        raise ConfigError(one_line(exc)) from None
    except SettingsError as exc:  # a source pydantic-settings could not read; never carries a value
        raise ConfigError(str(exc)) from None

"""Configuration: one validated `Settings` object from four layers.

Precedence, lowest to highest::

    defaults  <  TOML file (--config PATH)  <  EPOCHBOT_* environment  <  command-line flags

Nested sections use ``__`` in the environment (``EPOCHBOT_CONFIDENCE__SILENCE_REPLACE_MS=2000``)
and a dotted ``--set section.key=value`` on the command line.

Secrets (``api_key``, ``api_secret``, ``control.token``) are `SecretStr` and come only from the
environment or from ``secrets_file`` (a TOML file that must not be readable by group/others). They
are refused in the config file (config files get copied, pasted and committed) and on the command
line (visible in ``ps`` and shell history). Nothing in this module ever formats a secret's value:
error messages name the field, never echo its input.

Any invalid value raises `ConfigError` whose message is one line naming the field and the
problem; the CLI prints ``config error: <message>`` and exits 78 (EX_CONFIG).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "ConfigError",
    "DEFAULT_KEYS",
    "MASK",
    "Settings",
    "VENUE_NAMES",
    "load_settings",
    "render_settings",
    "secret_values",
    "to_runtime_config",
]

MASK = "********"
ENV_PREFIX = "EPOCHBOT_"
VENUE_NAMES = ("sim", "binance-spot", "binance-usdm", "binance-spot-testnet", "binance-usdm-testnet")
_VENUE_MARKET = {
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
_SECRET_PATHS = ("api_key", "api_secret", "control.token")


class ConfigError(ValueError):
    """An invalid configuration; ``str()`` is one line, safe to print (never contains a secret)."""


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
    market: Literal["usdm", "spot"] | None = None  # sim only; other venues imply it
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
    def effective_market(self) -> str:
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
        # load_settings merges the four layers itself (the environment must sit *between* the
        # TOML file and the flags, and tests pass an explicit environment), so the model only
        # takes its init kwargs. Always build Settings through load_settings.
        return (init_settings,)


def _deep_merge(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _get_path(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what}: no such file: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what}: is a directory: {path}") from None
    except PermissionError:
        raise ConfigError(f"{what}: permission denied: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what}: {path}: invalid TOML: {exc}") from None


def _read_secrets(path: Path) -> dict[str, Any]:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"secrets_file: no such file: {path}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"secrets_file: {path} is accessible by group/others (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}"
        )
    data = _read_toml(path, "secrets_file")
    allowed = {"api_key", "api_secret", "control"}
    for key, value in data.items():
        if key not in allowed or (key == "control" and (not isinstance(value, Mapping) or set(value) - {"token"})):
            raise ConfigError(f"secrets_file: only api_key, api_secret and [control] token belong there, found {key!r}")
    return data


def _env_value(env: Mapping[str, str], name: str) -> str | None:
    wanted = (ENV_PREFIX + name).upper()
    for key, value in env.items():
        if key.upper() == wanted:
            return value
    return None


def load_settings(
    config_path: str | os.PathLike | None = None,
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
    env = os.environ if env is None else env
    flags = dict(flags or {})
    for secret in _SECRET_PATHS:
        if _get_path(flags, secret) is not None:
            raise ConfigError(
                f"{secret}: secrets are not accepted on the command line (visible in ps and shell history); "
                f"use {ENV_PREFIX}{secret.replace('.', '__').upper()} or secrets_file"
            )
    if config_path is None:
        config_path = _env_value(env, "CONFIG")
    file_data: dict[str, Any] = {}
    if config_path:
        file_data = _read_toml(Path(config_path), "config")
        for secret in _SECRET_PATHS:
            if _get_path(file_data, secret) is not None:
                raise ConfigError(
                    f"{secret}: secrets are not accepted in the config file {config_path}; "
                    f"use {ENV_PREFIX}{secret.replace('.', '__').upper()} or secrets_file"
                )
    secrets_path = flags.get("secrets_file") or _env_value(env, "SECRETS_FILE") or file_data.get("secrets_file")
    secrets: dict[str, Any] = _read_secrets(Path(secrets_path)) if secrets_path else {}

    # Secrets file < TOML < environment < flags (the secrets file and the TOML file never share
    # a key: secrets are refused in the TOML file above).
    env_data = _environment_layer(env)
    merged = _deep_merge(_deep_merge(_deep_merge(secrets, file_data), env_data), flags)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def _environment_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """The ``EPOCHBOT_*`` variables as a nested dict of raw strings (validated later, once)."""
    fields = Settings.model_fields
    out: dict[str, Any] = {}
    for key, value in env.items():
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper in (ENV_PREFIX + "CONFIG",):
            continue
        path = upper[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in fields:
            continue  # EPOCHBOT_SIM_ACCOUNTS and friends belong to other tools
        if any(not p for p in path):
            raise ConfigError(f"{key}: malformed variable name")
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: conflicts with {ENV_PREFIX}{part.upper()}")
            node = child
        node[path[-1]] = _env_scalar(fields, path, value)
    return out


def _env_scalar(fields, path: list[str], value: str) -> Any:
    # Dicts and lists of the environment may be given as JSON (pydantic-settings' convention),
    # except symbols, which takes "BTCUSDT,ETHUSDT".
    if len(path) == 1 and path[0] in ("keys",) and value.lstrip().startswith("{"):
        import json

        try:
            return json.loads(value)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{path[0].upper()}: invalid JSON") from None
    if len(path) == 2 and path[0] == "strategy" and path[1] == "params" and value.lstrip().startswith("{"):
        import json

        try:
            return json.loads(value)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}STRATEGY__PARAMS: invalid JSON") from None
    return value


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        # Echo the offending value to help the operator, except for secrets (never echoed).
        value = err.get("input")
        secret = any(loc == s or loc.startswith(s + ".") for s in _SECRET_PATHS) or "token" in loc or "secret" in loc
        if err["type"] == "extra_forbidden":
            secret = True  # a misspelt secret name must not be echoed either
        if not secret and "got " not in msg and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            msg = f"{msg}, got {value!r}"
        if not loc:
            parts.append(msg)
        elif msg.startswith(loc.split(".")[-1] + ":") or msg.startswith(loc + ":"):
            parts.append(msg)
        else:
            parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


# ---------------------------------------------------------------------- rendering / secrets


def secret_values(settings: Settings) -> list[str]:
    """The configured secret strings (for log redaction); never print this list."""
    out = []
    for value in (settings.api_key, settings.api_secret, settings.control.token):
        if value is not None and value.get_secret_value():
            out.append(value.get_secret_value())
    return out


def masked_dict(settings: Settings) -> dict[str, Any]:
    """JSON-ready dict of the settings with every secret replaced by ``MASK``."""

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return MASK
        if isinstance(value, BaseModel):
            return {k: walk(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, Mapping):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return walk(settings)


def render_settings(settings: Settings, fmt: Literal["toml", "json"] = "toml") -> str:
    """The merged configuration as TOML (or JSON), secrets masked. Unset optionals are omitted
    from TOML (it has no null) and shown as comments."""
    data = masked_dict(settings)
    if fmt == "json":
        import json

        return json.dumps(data, indent=2, sort_keys=False)
    return _to_toml(data)


def _toml_scalar(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_scalar(v)}" for k, v in value.items() if v is not None) + " }"
    return json.dumps(str(value))


def _toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else '"' + key.replace('"', '\\"') + '"'


def _to_toml(data: dict[str, Any], prefix: str = "") -> str:
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    for key, value in data.items():
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(v, dict) for v in value.values())
            and prefix == ""
            and key not in ("keys",)
        ):
            tables.append((key, value))
        elif isinstance(value, dict) and prefix == "" and key not in ("keys",):
            tables.append((key, value))
        elif value is None:
            lines.append(f"# {_toml_key(key)} = (unset)")
        else:
            lines.append(f"{_toml_key(key)} = {_toml_scalar(value)}")
    for key, table in tables:
        lines.append("")
        lines.append(f"[{prefix}{key}]")
        for k, v in table.items():
            if v is None:
                lines.append(f"# {_toml_key(k)} = (unset)")
            else:
                lines.append(f"{_toml_key(k)} = {_toml_scalar(v)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- runtime configuration


def engine_config(settings: Settings):
    """`epochbot.engine.engine.EngineConfig` from the settings."""
    from epochbot.book.book import VenueRules
    from epochbot.engine.confidence import ConfidenceConfig, FactorConfig
    from epochbot.engine.engine import EngineConfig
    from epochbot.model.modes import ModeConfig

    factors = dict(ConfidenceConfig().factors)
    for name, override in settings.confidence.factors.items():
        base = factors[name]
        factors[name] = FactorConfig(
            warn=base.warn if override.warn is None else override.warn,
            critical=base.critical if override.critical is None else override.critical,
            weight=base.weight if override.weight is None else override.weight,
        )
    c, r, m = settings.confidence, settings.resync, settings.modes
    return EngineConfig(
        venue=VenueRules(settings.effective_market),
        symbols=tuple(settings.symbols),
        snapshot_limit=r.snapshot_limit,
        snapshot_limits=dict(r.snapshot_limits),
        confidence=ConfidenceConfig(factors=factors),
        modes=ModeConfig(
            normal_at=m.normal_at,
            reduce_only_at=m.reduce_only_at,
            cancel_makers_at=m.cancel_makers_at,
            recovery_hold_ms=m.recovery_hold_ms,
        ),
        silence_replace_ms=c.silence_replace_ms,
        transport_latency_replace_ms=c.transport_latency_replace_ms,
        queue_delay_replace_ms=c.queue_delay_replace_ms,
        subscribe_timeout_ms=c.subscribe_timeout_ms,
        write_failures_replace=c.write_failures_replace,
        snapshot_retry_base_ms=r.snapshot_retry_base_ms,
        snapshot_retry_max_ms=r.snapshot_retry_max_ms,
        reconnect_base_ms=r.reconnect_base_ms,
        reconnect_max_ms=r.reconnect_max_ms,
        reconnect_jitter=r.reconnect_jitter,
        max_bad_snapshots=r.max_bad_snapshots,
        seed=settings.sim.seed,
    )


def to_runtime_config(settings: Settings, *, rest_url: str | None = None, ws_url: str | None = None):
    """`epochbot.runtime.runtime.RuntimeConfig` for these settings.

    Venue ``sim`` without URL overrides keeps empty URLs: the runtime starts the embedded
    simulator in-process (seed and rate from ``[sim]``) and fills them in. Otherwise
    ``rest_url/ws_url`` override the venue's published endpoints; the keyword arguments (a
    simulator the caller started itself) override both.
    """
    from dataclasses import replace

    from epochbot.runtime.runtime import VENUES, RuntimeConfig

    venue = replace(VENUES[settings.venue], market=settings.effective_market)
    if settings.rest_url is not None:
        venue = replace(venue, rest_url=settings.rest_url, ws_url=settings.ws_url or "")
    if rest_url or ws_url:
        if not (rest_url and ws_url):
            raise ConfigError("rest_url and ws_url: set both or neither")
        venue = replace(venue, rest_url=rest_url.rstrip("/"), ws_url=ws_url.rstrip("/"))
    return RuntimeConfig(
        venue=venue,
        symbols=tuple(settings.symbols),
        engine=engine_config(settings),
        snapshot_hz=settings.snapshot_hz,
        sim_seed=settings.sim.seed,
        sim_rate=settings.sim.rate,
        sim_port=settings.sim.port,
        trading=trading_config(settings),
        journal=journal_config(settings),
        retry_after_cap_s=settings.resync.retry_after_cap_s,
        weight_limit=settings.resync.weight_limit,
        weight_headroom=settings.resync.weight_headroom,
        snapshot_concurrency=settings.resync.snapshot_concurrency,
        traded_symbols=settings.resync.traded_symbols,
        watched_streams=settings.resync.watched_streams,
    )


def trading_config(settings: Settings):
    """`epochbot.runtime.runtime.TradingConfig`, or None when no strategy trades."""
    from fractions import Fraction

    from epochbot.runtime.runtime import TradingConfig
    from epochbot.trading.risk import RiskLimits

    name = settings.strategy.name
    if name == "auto":
        name = "quoter" if settings.venue == "sim" else "none"
    if name == "none":
        return None
    risk = settings.risk

    def amount(value):
        return None if value is None else Fraction(value)

    limits = RiskLimits(
        max_position_lots=risk.max_position_lots,
        max_order_notional=amount(risk.max_order_notional),
        session_loss_limit=amount(risk.session_loss_limit),
        daily_loss_limit=amount(risk.daily_loss_limit),
        breaker_losses=risk.breaker_losses,
        breaker_window_ns=int(risk.breaker_window_s * 1e9),
        breaker_cooldown_ns=int(risk.breaker_cooldown_s * 1e9),
    )
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    secret = settings.api_secret.get_secret_value() if settings.api_secret else ""
    storage, per_run = sim_storage(settings)
    return TradingConfig(
        strategy=name,
        params=dict(settings.strategy.params),
        api_key=key,
        api_secret=secret,
        storage_path=storage,
        storage_per_run=per_run,
        limits=limits,
        cancel_on_shutdown=settings.strategy.cancel_on_shutdown,
        unknown_window_ms=settings.strategy.unknown_window_ms,
        unknown_orders=settings.strategy.unknown_orders,
        foreign_orders=settings.strategy.foreign_orders,
    )


SIM_STORAGE = "epochbot-sim.sqlite3"


def sim_storage(settings: Settings) -> tuple[str | None, bool]:
    """(database path, start it empty?).

    The embedded simulator keeps its accounts in memory and starts fresh every run, so the
    state stored beside it must start fresh too, or a restart would restore positions, open
    orders and tripped breakers of accounts that no longer exist (and report that the position
    differs from the venue's). So with the embedded simulator and no explicit ``storage``, the
    database is ``epochbot-sim.sqlite3`` (next to the default ``epochbot.sqlite3``), emptied at
    every start and left in place at exit for inspection. An explicit ``storage`` is used as
    given; against an external simulator or a real venue nothing changes.
    """
    if not settings.storage:
        return None, False
    if settings.embedded_sim and "storage" not in settings.model_fields_set:
        return str(settings.storage.with_name(SIM_STORAGE)), True
    return str(settings.storage), False


def journal_config(settings: Settings):
    from epochbot.runtime.runtime import JournalConfig

    j = settings.journal
    if j.directory is None:
        return None
    return JournalConfig(str(j.directory), max_bytes=j.max_mb * 1024 * 1024, keep=j.keep)

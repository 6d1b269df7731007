"""Settings -> the core's configuration objects (`EngineConfig`, `RuntimeConfig`, `TradingConfig`,
`JournalConfig`): the only place that knows both shapes.

The core is imported inside the functions: `epochbot config check` must not pay for the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError
from .settings import Settings

if TYPE_CHECKING:
    from decimal import Decimal
    from fractions import Fraction

    from epochbot.engine.engine import EngineConfig
    from epochbot.runtime.runtime import JournalConfig, RuntimeConfig, TradingConfig

__all__ = ["SIM_STORAGE", "engine_config", "journal_config", "sim_storage", "to_runtime_config", "trading_config"]


def engine_config(settings: Settings) -> EngineConfig:
    """`epochbot.engine.engine.EngineConfig` from the settings."""
    from epochbot.book.book import VenueRules
    from epochbot.engine.confidence import ConfidenceConfig, FactorConfig
    from epochbot.engine.engine import EngineConfig
    from epochbot.engine.modes import ModeConfig

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


def to_runtime_config(settings: Settings, *, rest_url: str | None = None, ws_url: str | None = None) -> RuntimeConfig:
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


def trading_config(settings: Settings) -> TradingConfig | None:
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

    def amount(value: Decimal | None) -> Fraction | None:
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


def journal_config(settings: Settings) -> JournalConfig | None:
    """`epochbot.runtime.runtime.JournalConfig`, or None when the journal is off."""
    from epochbot.runtime.runtime import JournalConfig

    j = settings.journal
    if j.directory is None:
        return None
    return JournalConfig(str(j.directory), max_bytes=j.max_mb * 1024 * 1024, keep=j.keep)

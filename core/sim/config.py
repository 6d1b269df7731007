"""`SimConfig`: everything the simulator needs to start, with Binance's values for what is left out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["SimConfig", "resolved"]

T = TypeVar("T")


@dataclass
class SimConfig:
    """Everything the simulator needs to start. ``None`` timing fields take Binance's values."""

    market: str = "usdm"
    symbols: list[str] = field(default_factory=lambda: ["BTCUSDT"])
    seed: int = 7
    host: str = "127.0.0.1"
    port: int = 0
    rate: float = 10.0  # diff-depth events per second per symbol (10 = a @100ms stream)
    accounts: str | None = None  # "KEY:SECRET[,..]"; default from EPOCHBOT_SIM_ACCOUNTS
    faults: list[dict[str, Any]] = field(default_factory=list)
    ping_interval_s: float | None = None  # spot 20, usdm 180
    pong_timeout_s: float | None = None  # spot 60, usdm 600
    max_lifetime_s: float = 24 * 3600.0
    max_streams: int = 1024
    msg_rate_limit: int | None = None  # incoming messages/s: spot 5, usdm 10
    weight_limit: int | None = None  # REST weight/min: spot 6000, usdm 2400
    send_queue_limit: int = 200_000
    tick_s: float | None = None  # generator wake-up; default 0.1 s at realistic rates, 2 ms when fast
    # Market time runs this many times faster than the wall clock (1 = real time). Above 1 the
    # generators emit ``rate * speed`` events per wall second stamped on a virtual clock that
    # starts at the wall clock and advances 1000/rate ms per event: the same seed gives the same
    # stream, only sooner (for measuring minutes of market in seconds; bench/sim_calibration.py).
    speed: float = 1.0
    # USD-M: every paper account starts in hedge mode (dualSidePosition=true); default from
    # EPOCHBOT_SIM_HEDGE_MODE ("1"/"true"). POST /fapi/v1/positionSide/dual changes it per account.
    hedge_mode: bool | None = None

    def __post_init__(self) -> None:
        if self.market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', not {self.market!r}")
        self.symbols = [s.strip().upper() for s in self.symbols if s.strip()]
        if not self.symbols:
            raise ValueError("at least one symbol is required")
        spot = self.market == "spot"
        if self.ping_interval_s is None:
            self.ping_interval_s = 20.0 if spot else 180.0
        if self.pong_timeout_s is None:
            self.pong_timeout_s = 60.0 if spot else 600.0
        if self.msg_rate_limit is None:
            self.msg_rate_limit = 5 if spot else 10
        if self.weight_limit is None:
            self.weight_limit = 6000 if spot else 2400
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, not {self.speed!r}")
        if self.tick_s is None:
            self.tick_s = (0.1 if self.rate <= 20 else 0.002) / self.speed
        if self.accounts is None:
            self.accounts = os.environ.get("EPOCHBOT_SIM_ACCOUNTS")
        if self.hedge_mode is None:  # the environment's setting speaks for USD-M only
            self.hedge_mode = not spot and os.environ.get("EPOCHBOT_SIM_HEDGE_MODE", "").lower() in ("1", "true")
        if self.hedge_mode and spot:
            raise ValueError("hedge mode is a USD-M setting")


def resolved(value: T | None) -> T:
    """A field `SimConfig.__post_init__` has filled in (its ``None`` means "Binance's value")."""
    if value is None:
        raise RuntimeError("SimConfig field read before __post_init__ filled it")
    return value

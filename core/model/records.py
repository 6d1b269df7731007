"""Plain records: what the engine, the trader and persistence hand each other.

These are data only (dataclasses and one enum), defined below every layer that produces or
stores them, so that persistence depends on nothing but records: the engine's epoch and log
records, closed candles, and the trading records the order journal, the funding table and the
risk snapshots are made of. Producers import them from here (or through their old homes, which
re-export them); nothing in this module imports another epochbot module.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from epochbot.model.events import Kline

__all__ = [
    "BookResync",
    "Candle",
    "EpochRecord",
    "FundingRecord",
    "LogRecord",
    "OrderState",
    "OrderTransition",
    "RiskSnapshot",
    "TERMINAL_ORDER_STATES",
]

_MS = 1_000_000


# ---------------------------------------------------------------------- engine: epochs and log


@dataclass(slots=True)
class EpochRecord:
    epoch: int
    cause: str
    detected_ns: int
    requested_ns: int = 0
    opened_ns: int = 0
    subscribed_ns: int = 0
    snapshots_ns: int = 0
    synced_ns: int = 0
    closed_ns: int = 0
    close_cause: str = ""
    close_ms: float = 0.0
    dial_ms: float = 0.0
    rebuild_ns: int = 0
    validate_ns: int = 0
    url: str = ""

    @property
    def resync_ms(self) -> float | None:
        if not self.synced_ns:
            return None
        return (self.synced_ns - self.detected_ns) / _MS

    def phases_ms(self) -> dict[str, float]:
        def span(a: int, b: int) -> float:
            return round(max(0, b - a) / _MS, 3) if a and b else 0.0

        dial = self.dial_ms if self.dial_ms else span(self.requested_ns, self.opened_ns) - self.close_ms
        return {
            "detect": span(self.detected_ns, self.requested_ns),
            "close": round(self.close_ms, 3),
            "dial": round(max(0.0, dial), 3),
            "subscribe": span(self.opened_ns, self.subscribed_ns),
            "snapshot": span(self.subscribed_ns or self.opened_ns, self.snapshots_ns),
            "rebuild": round(self.rebuild_ns / _MS, 3),
            # invariant checks plus waiting for the live diff that proves the bridge
            "validate": round(max(self.validate_ns, self.synced_ns - self.snapshots_ns - self.rebuild_ns) / _MS, 3)
            if self.synced_ns and self.snapshots_ns
            else round(self.validate_ns / _MS, 3),
        }


@dataclass(slots=True)
class BookResync:
    symbol: str
    cause: str
    epoch: int
    detected_ns: int
    synced_ns: int = 0
    snapshots: int = 0

    @property
    def resync_ms(self) -> float | None:
        return (self.synced_ns - self.detected_ns) / _MS if self.synced_ns else None


@dataclass(frozen=True, slots=True)
class LogRecord:
    ts_ns: int
    level: str
    msg: str
    epoch: int
    fields: dict[str, object]  # JSON-ready values: str, numbers, bools, None, lists of them

    def as_dict(self) -> dict[str, object]:
        return {"ts_ns": self.ts_ns, "level": self.level, "msg": self.msg, "epoch": self.epoch, **self.fields}


# ---------------------------------------------------------------------- market data


@dataclass(frozen=True, slots=True)
class Candle:
    symbol: str
    interval: str
    open_ts: int  # ms
    open: str
    high: str
    low: str
    close: str
    volume: str
    closed: bool = True

    @classmethod
    def from_kline(cls, k: Kline) -> Candle:
        """From a `epochbot.model.events.Kline`."""
        return cls(k.symbol, k.interval, k.open_ts, k.open, k.high, k.low, k.close, k.volume, bool(k.closed))


# ---------------------------------------------------------------------- trading


class OrderState(str, Enum):  # noqa: UP042 - a StrEnum would change str() and format() of members, which logs and reports print
    """An order's lifecycle state (the transitions live in `epochbot.trading.orders.TRANSITIONS`)."""

    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


# States with no way out; `epochbot.trading.orders.TERMINAL` is derived from the transition table
# and a test holds the two equal.
TERMINAL_ORDER_STATES = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED})


@dataclass(frozen=True, slots=True)
class OrderTransition:
    """One journal row: what happened to which order, when, and why."""

    ts_ns: int
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    qty: int
    price: int | None
    tif: str | None
    reduce_only: bool
    tag: str
    prev_state: str
    state: str
    filled_qty: int
    venue_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class FundingRecord:
    symbol: str
    ts_ns: int
    rate: Decimal
    mark_price: int
    qty: int
    amount: Fraction  # received (+) or paid (-)


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """A versioned risk state to persist (``body`` is `RiskState.to_dict()`)."""

    ts_ns: int
    body: dict[str, object]

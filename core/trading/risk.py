"""Pre-trade gates and the risk state they keep (circuit breakers, loss limits).

Every intent passes `RiskGate.check` before the order manager may send it; the answer is a
`GateDecision` with a reason string when refused. The checks, in order:

1. Trading mode. ``halted``: nothing passes, not even exits. ``reduce-only``: only *reducing*
   intents. ``cancel-makers``: only reducing intents that take liquidity (MARKET, IOC, FOK);
   resting maker orders must be pulled (`RiskGate.mode_cancels` lists them).
2. Binance's symbol filters: step size, min/max quantity, tick size, min notional (a market
   order is valued at the reference price, and refused without one).
3. Max order notional.
4. Latches that allow exits only: the symbol's circuit breaker (``breaker_losses`` losing round
   trips within ``breaker_window_ns`` trip it for ``breaker_cooldown_ns``), the session loss
   limit, and the portfolio daily loss limit (per UTC day).
5. Max position for exposure-increasing intents, assuming every working order on the same
   side fills.

*Reducing* is decided conservatively and does not trust a ``reduce_only`` flag alone: the
position is non-zero, the intent's side is opposite to it, and its quantity plus every other
working order on that side (including orders being cancelled, which may still fill) is at most
|position|. So no combination of fills of passed intents can increase |position|. An intent that
asks for ``reduce_only`` must also be reducing by this rule.

`RiskState` is the part worth persisting (after every realised trade): ``to_dict`` gives
``{"version": 1, ...}`` with exact rationals as strings; `RiskState.restore` applies the restore
policy and never raises (see its docstring).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from epochbot.model.modes import Mode
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.money import decimal_str
from epochbot.trading.portfolio import RoundTrip
from epochbot.trading.strategy import OrderIntent
from epochbot.views.snapshot import RiskView

if TYPE_CHECKING:
    from epochbot.trading.orders import ManagedOrder

__all__ = [
    "DAY_NS",
    "GateDecision",
    "RISK_STATE_VERSION",
    "RiskGate",
    "RiskLimits",
    "RiskState",
    "WorkingOrder",
    "format_utc_time",
]

DAY_NS = 86_400 * 1_000_000_000
RISK_STATE_VERSION = 1


class WorkingOrder(Protocol):
    """What the gates read of a live order (`epochbot.trading.orders.ManagedOrder` is one)."""

    @property
    def side(self) -> str: ...

    @property
    def remaining(self) -> int: ...

    @property
    def signed_remaining(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RiskLimits:
    max_position_lots: int = 0  # per symbol; 0 = no limit
    max_position_by_symbol: dict[str, int] = field(default_factory=dict)
    max_order_notional: Fraction | None = None  # quote
    session_loss_limit: Fraction | None = None  # positive amount
    daily_loss_limit: Fraction | None = None  # positive amount
    breaker_losses: int = 3
    breaker_window_ns: int = 600 * 1_000_000_000
    breaker_cooldown_ns: int = 900 * 1_000_000_000
    cancel_on_halt: bool = True  # pulling resting orders is not "placing" one

    def max_position(self, symbol: str) -> int:
        return self.max_position_by_symbol.get(symbol, self.max_position_lots)


@dataclass(frozen=True, slots=True)
class GateDecision:
    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


_PASS = GateDecision(True)


@dataclass
class RiskState:
    day: int = 0  # UTC day number (ns // DAY_NS)
    session_pnl: Fraction = Fraction(0)
    daily_pnl: Fraction = Fraction(0)
    session_latched: bool = False
    daily_latched: bool = False
    losses: dict[str, list[int]] = field(default_factory=dict)  # symbol -> losing trip close times
    breakers: dict[str, int] = field(default_factory=dict)  # symbol -> tripped until (ns)
    saved_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RISK_STATE_VERSION,
            "day": self.day,
            "session_pnl": str(self.session_pnl),
            "daily_pnl": str(self.daily_pnl),
            "session_latched": self.session_latched,
            "daily_latched": self.daily_latched,
            "losses": {s: list(ts) for s, ts in sorted(self.losses.items()) if ts},
            "breakers": dict(sorted(self.breakers.items())),
            "saved_ns": self.saved_ns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskState:
        """Strict parse of a version-1 dict; raises ValueError/TypeError/KeyError on anything odd."""
        if data.get("version") != RISK_STATE_VERSION:
            raise ValueError(f"unsupported risk state version {data.get('version')!r}")

        def ints(values: object) -> list[int]:
            if not isinstance(values, list) or not all(type(v) is int for v in values):
                raise TypeError("loss times must be a list of integers")
            return list(values)

        state = cls(
            day=_int(data["day"]),
            session_pnl=Fraction(str(data["session_pnl"])),
            daily_pnl=Fraction(str(data["daily_pnl"])),
            session_latched=_bool(data.get("session_latched", False)),
            daily_latched=_bool(data.get("daily_latched", False)),
            losses={str(s): ints(v) for s, v in dict(data.get("losses", {})).items()},
            breakers={str(s): _int(v) for s, v in dict(data.get("breakers", {})).items()},
            saved_ns=_int(data.get("saved_ns", 0)),
        )
        return state

    @classmethod
    def restore(cls, raw: object, now_ns: int, limits: RiskLimits) -> tuple[RiskState, list[str]]:
        """Rebuild the state saved before a restart. Never raises; returns (state, warnings).

        Policy: nothing saved -> fresh state. Unreadable JSON or a malformed body -> fresh state
        and a warning. Another version -> fresh state and a warning (never misread). Otherwise:
        a different UTC day resets session and daily PnL and their latches; losing trips older
        than the breaker window expire; a breaker whose cooldown has passed is reset.
        """
        today = now_ns // DAY_NS
        fresh = cls(day=today)
        if raw is None:
            return fresh, []
        try:
            data = json.loads(raw) if isinstance(raw, (str, bytes, bytearray)) else raw
        except (ValueError, TypeError) as exc:
            return fresh, [f"risk state is corrupt (not JSON: {exc}); starting fresh"]
        if not isinstance(data, dict):
            return fresh, ["risk state is corrupt (not an object); starting fresh"]
        version = data.get("version")
        if version != RISK_STATE_VERSION:
            return fresh, [
                f"risk state version {version!r} is unknown (this build reads {RISK_STATE_VERSION}); ignored"
            ]
        try:
            state = cls.from_dict(data)
        except (ValueError, TypeError, KeyError, ZeroDivisionError, AttributeError) as exc:
            return fresh, [f"risk state is corrupt ({type(exc).__name__}: {exc}); starting fresh"]
        warnings: list[str] = []
        if state.day != today:
            state.day = today
            state.session_pnl = state.daily_pnl = Fraction(0)
            state.session_latched = state.daily_latched = False
            warnings.append("risk state is from another UTC day: session and daily PnL reset")
        horizon = now_ns - limits.breaker_window_ns
        state.losses = {s: [t for t in ts if t >= horizon] for s, ts in state.losses.items()}
        state.losses = {s: ts for s, ts in state.losses.items() if ts}
        state.breakers = {s: until for s, until in state.breakers.items() if until > now_ns}
        return state, warnings


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


class RiskGate:
    """The gates plus the state they need; mutated only by the strategy loop."""

    def __init__(self, limits: RiskLimits, filters: dict[str, SymbolFilters], state: RiskState | None = None) -> None:
        self.limits = limits
        self.filters = filters
        self.state = state or RiskState()
        self.refusals: dict[str, int] = {}

    # ----------------------------------------------------------------------------- gate

    def check(
        self,
        intent: OrderIntent,
        *,
        mode: Mode,
        position: int,
        working: Iterable[WorkingOrder] = (),
        reference_price: int | None = None,
        now_ns: int = 0,
    ) -> GateDecision:
        """Would ``intent`` be allowed now? ``working`` are the symbol's live orders
        (objects with ``side``, ``remaining``)."""
        decision = self._check(intent, mode, position, list(working), reference_price, now_ns)
        if not decision.ok:
            key = decision.reason.split(":", 1)[0]
            self.refusals[key] = self.refusals.get(key, 0) + 1
        return decision

    def _check(
        self,
        intent: OrderIntent,
        mode: Mode,
        position: int,
        working: list[WorkingOrder],
        reference_price: int | None,
        now_ns: int,
    ) -> GateDecision:
        if mode is Mode.HALTED:
            return GateDecision(False, "mode halted: no orders")
        f = self.filters.get(intent.symbol)
        if f is None:
            return GateDecision(False, f"unknown symbol: no filters for {intent.symbol}")
        problem = self._filter_problem(intent, f, reference_price)
        if problem:
            return GateDecision(False, problem)
        self.roll(now_ns)
        same_side = sum(o.remaining for o in working if o.side == intent.side)
        reduces = (
            position != 0 and (intent.side == "SELL") == (position > 0) and intent.qty + same_side <= abs(position)
        )
        if mode is Mode.CANCEL_MAKERS and not intent.is_taker:
            return GateDecision(False, "mode cancel-makers: only IOC/market exits")
        if mode in (Mode.REDUCE_ONLY, Mode.CANCEL_MAKERS) and not reduces:
            return GateDecision(False, f"mode {mode.value}: order would not reduce the position")
        if intent.reduce_only and not reduces:
            return GateDecision(False, "reduce-only: order would not reduce the position")
        if reduces:
            return _PASS
        # From here on the intent adds exposure.
        until = self.breaker_until(intent.symbol, now_ns)
        if until:
            return GateDecision(False, f"circuit breaker: {intent.symbol} tripped until {format_utc_time(until)}")
        if self.state.session_latched:
            return GateDecision(False, f"session loss limit: session PnL {decimal_str(self.state.session_pnl)}")
        if self.state.daily_latched:
            return GateDecision(False, f"daily loss limit: daily PnL {decimal_str(self.state.daily_pnl)}")
        limit = self.limits.max_position(intent.symbol)
        if limit:
            exposure = position + sum(o.signed_remaining for o in working if o.side == intent.side) + intent.signed_qty
            if abs(exposure) > limit:
                return GateDecision(False, f"max position: {abs(exposure)} lots > {limit} if all orders fill")
        return _PASS

    def _filter_problem(self, intent: OrderIntent, f: SymbolFilters, reference_price: int | None) -> str:
        if intent.qty <= 0:
            return "filter LOT_SIZE: quantity must be positive"
        if intent.qty % f.step:
            return f"filter LOT_SIZE: {f.qty_str(intent.qty)} is not a multiple of step {f.qty_str(f.step)}"
        if intent.qty < f.min_qty:
            return f"filter LOT_SIZE: {f.qty_str(intent.qty)} below min qty {f.qty_str(f.min_qty)}"
        if f.max_qty and intent.qty > f.max_qty:
            return f"filter LOT_SIZE: {f.qty_str(intent.qty)} above max qty {f.qty_str(f.max_qty)}"
        if intent.order_type == "MARKET":
            price = reference_price
            if price is None:
                return "filter MIN_NOTIONAL: no reference price for a market order"
        else:
            price = intent.price
            if price is None or price <= 0:
                return "filter PRICE_FILTER: limit order needs a positive price"
            if price % f.tick:
                return f"filter PRICE_FILTER: {f.price_str(price)} is off the tick {f.price_str(f.tick)}"
        notional = f.notional(price, intent.qty)
        if notional < f.min_notional:
            return f"filter MIN_NOTIONAL: {decimal_str(notional)} below {f.min_notional}"
        cap = self.limits.max_order_notional
        if cap is not None and notional > cap:
            return f"max order notional: {decimal_str(notional)} > {decimal_str(cap)}"
        return ""

    def mode_cancels(self, mode: Mode, working: Iterable[ManagedOrder]) -> list[str]:
        """Client ids of resting maker orders that ``mode`` requires pulling."""
        if mode is Mode.CANCEL_MAKERS or (mode is Mode.HALTED and self.limits.cancel_on_halt):
            return [o.client_order_id for o in working if o.is_resting_maker and o.state.value != "UNKNOWN"]
        return []

    # ----------------------------------------------------------------------------- state

    def roll(self, now_ns: int) -> None:
        """At a UTC day boundary the daily PnL and its latch reset (the session's do not)."""
        day = now_ns // DAY_NS
        if day != self.state.day:
            if day > self.state.day:
                self.state.daily_pnl = Fraction(0)
                self.state.daily_latched = False
            self.state.day = day

    def on_pnl(self, delta: Fraction, now_ns: int) -> None:
        """Realised PnL net of fees (and funding) of one fill or settlement."""
        self.roll(now_ns)
        s = self.state
        s.session_pnl += delta
        s.daily_pnl += delta
        lim = self.limits
        if lim.session_loss_limit is not None and s.session_pnl <= -lim.session_loss_limit:
            s.session_latched = True
        if lim.daily_loss_limit is not None and s.daily_pnl <= -lim.daily_loss_limit:
            s.daily_latched = True

    def on_round_trip(self, trip: RoundTrip, now_ns: int) -> bool:
        """Count a losing trip; returns True when it trips the symbol's breaker."""
        if not trip.losing:
            return False
        losses = self.state.losses.setdefault(trip.symbol, [])
        losses.append(now_ns)
        horizon = now_ns - self.limits.breaker_window_ns
        losses[:] = [t for t in losses if t >= horizon]
        if self.limits.breaker_losses and len(losses) >= self.limits.breaker_losses:
            self.state.breakers[trip.symbol] = now_ns + self.limits.breaker_cooldown_ns
            losses.clear()
            return True
        return False

    def breaker_until(self, symbol: str, now_ns: int) -> int:
        """0 when the breaker is closed; a passed cooldown resets it."""
        until = self.state.breakers.get(symbol, 0)
        if until and until <= now_ns:
            del self.state.breakers[symbol]
            return 0
        return until

    def snapshot(self, now_ns: int) -> dict[str, Any]:
        self.state.saved_ns = now_ns
        return self.state.to_dict()

    def view(self, now_ns: int) -> RiskView:
        s = self.state
        breakers = {sym: "ok" for sym in sorted(self.filters)}
        for sym, until in s.breakers.items():
            if until > now_ns:
                breakers[sym] = f"tripped until {format_utc_time(until)}"
        lim = self.limits
        limits = {
            "max_position_lots": str(lim.max_position_lots or "none"),
            "max_order_notional": decimal_str(lim.max_order_notional) if lim.max_order_notional is not None else "none",
            "session_loss_limit": decimal_str(lim.session_loss_limit) if lim.session_loss_limit is not None else "none",
            "daily_loss_limit": decimal_str(lim.daily_loss_limit) if lim.daily_loss_limit is not None else "none",
            "session_latched": str(s.session_latched),
            "daily_latched": str(s.daily_latched),
        }
        return RiskView(decimal_str(s.session_pnl), decimal_str(s.daily_pnl), breakers, limits)


def format_utc_time(ns: int) -> str:
    """A timestamp for operators (from the value itself, never from a clock)."""
    from datetime import datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%H:%M:%S UTC")

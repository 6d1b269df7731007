"""The strategy API: immutable market views in, desired orders (`OrderIntent`) out.

A strategy never sees a live book, never places orders itself and never reads a clock: the
engine builds a `MarketView` (a frozen copy of the top of the book, the position and the mode)
and the strategy answers with intents. The `Trader` passes every intent through the risk gates
and the order manager; a strategy learns what happened only through ``on_fill`` and the views
that follow.

Intent semantics (what the `Trader` does with one):

* ``tag`` names an order *slot* of the strategy (``"bid"``, ``"ask"``, ``"take"``). A new intent
  for a slot replaces the slot's working order (cancel, then place). An intent with ``qty == 0``
  only cancels the slot.
* Intents are desires, not commands: a gate may refuse them (the reason is logged and counted).

Strategies are chosen by name: ``get_strategy("quoter", {"half_spread_ticks": 3})``.
"""

from __future__ import annotations

from decimal import Decimal

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Literal, Mapping, Protocol, runtime_checkable

from core.market_view import MarketView, TradeTick
from core.modes import Mode

__all__ = [
    "MarketView",
    "OrderIntent",
    "Strategy",
    "StrategyError",
    "TradeTick",
    "get_strategy",
    "register_strategy",
    "strategy_names",
]

Side = Literal["BUY", "SELL"]
TAKER_TIFS = frozenset({"IOC", "FOK"})


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A desired order. ``qty`` in lots, ``price`` in price units (None for MARKET)."""

    symbol: str
    side: Side
    qty: int
    price: int | None = None
    order_type: str = "LIMIT"  # LIMIT | MARKET | LIMIT_MAKER
    tif: str | None = "GTC"  # GTC | IOC | FOK | GTX (post-only) | None for MARKET
    reduce_only: bool = False
    tag: str = ""

    @property
    def is_taker(self) -> bool:
        """Takes liquidity by construction (market or immediate-or-cancel)."""
        return self.order_type == "MARKET" or self.tif in TAKER_TIFS

    @property
    def signed_qty(self) -> int:
        return self.qty if self.side == "BUY" else -self.qty


@runtime_checkable
class Strategy(Protocol):
    """What the loop calls. Every hook returns the intents it causes (often none)."""

    name: str

    def on_book(self, view: MarketView) -> list[OrderIntent]: ...

    def on_trade(self, trade: TradeTick) -> list[OrderIntent]: ...

    def on_fill(self, fill) -> list[OrderIntent]: ...

    def on_mode_change(self, mode: Mode) -> list[OrderIntent]: ...

    def on_timer(self, now_ns: int) -> list[OrderIntent]: ...

    def on_history(self, symbol: str, candles) -> list[OrderIntent]:
        """Closed candles (`core.persistence.storage.Candle`, oldest first) fetched at start,
        to warm up before the first view. Optional: the default ignores them."""
        return []


class StrategyError(ValueError):
    """Unknown strategy name or bad parameters."""


_REGISTRY: dict[str, Callable[[Mapping[str, Any]], Strategy]] = {}
_builtins_loaded = False


def register_strategy(name: str, factory: Callable[[Mapping[str, Any]], Strategy]) -> None:
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise StrategyError(f"strategy {name!r} is already registered")
    _REGISTRY[name] = factory


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        from core.trading import momentum, quoter  # noqa: F401  (they register themselves)


def strategy_names() -> tuple[str, ...]:
    _load_builtins()
    return tuple(sorted(_REGISTRY))


def get_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Build the strategy registered as ``name`` with ``params`` over its defaults."""
    _load_builtins()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise StrategyError(f"unknown strategy {name!r}; available: {', '.join(strategy_names())}")
    return factory(dict(params or {}))


def lots_for_quote(view: "MarketView", quote: str) -> int:
    """Smallest whole number of lots worth at least ``quote`` (quote asset) at the mid.

    Lets a strategy size by value ("150 USDT") so one default works on every symbol, whatever
    its price and min-notional filter. 0 when the view has no price yet.
    """
    two_mid = view.two_mid
    if not two_mid:
        return 0
    amount = Fraction(Decimal(quote))
    codec = view.codec
    # lots * (two_mid / 2) / 10**pd * 10**-qd >= amount
    need = amount * 2 * 10 ** (codec.price_decimals + codec.qty_decimals) / two_mid
    lots = -((-need.numerator) // need.denominator)
    return max(1, lots)


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any], strategy: str) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown keys are an error (typos must not pass silently)."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise StrategyError(f"{strategy}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
    merged = dict(defaults)
    for key, value in params.items():
        default = defaults[key]
        if isinstance(default, bool) or isinstance(value, float):
            if type(value) is not type(default):
                raise StrategyError(f"{strategy}: parameter {key} must be {type(default).__name__}, got {value!r}")
        elif isinstance(default, int) and not isinstance(value, int):
            raise StrategyError(f"{strategy}: parameter {key} must be an integer, got {value!r}")
        merged[key] = value
    return merged


@dataclass
class _Base:
    """Small shared defaults so example strategies only override what they use."""

    name: str = "base"
    params: dict = field(default_factory=dict)

    def on_book(self, view: MarketView) -> list[OrderIntent]:
        return []

    def on_trade(self, trade: TradeTick) -> list[OrderIntent]:
        return []

    def on_fill(self, fill) -> list[OrderIntent]:
        return []

    def on_mode_change(self, mode: Mode) -> list[OrderIntent]:
        return []

    def on_timer(self, now_ns: int) -> list[OrderIntent]:
        return []

    def on_history(self, symbol: str, candles) -> list[OrderIntent]:
        return []

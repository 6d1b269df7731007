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

Strategies are plug-ins chosen by name: ``get_strategy("quoter", {"half_spread_ticks": 3})`` finds
the name in the ``epochbot.strategies`` entry-point group (epochbot's own `quoter` and
`momentum` are registered there like any user's package) and imports the module only then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from epochbot.engine.market_view import MarketView, TradeTick
from epochbot.model.modes import Mode

if TYPE_CHECKING:
    from epochbot.model.records import Candle
    from epochbot.model.trade_events import Fill

__all__ = [
    "BaseStrategy",
    "MarketView",
    "OrderIntent",
    "Strategy",
    "StrategyError",
    "TradeTick",
    "get_strategy",
    "load_strategy_factory",
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

    def on_fill(self, fill: Fill) -> list[OrderIntent]: ...

    def on_mode_change(self, mode: Mode) -> list[OrderIntent]: ...

    def on_timer(self, now_ns: int) -> list[OrderIntent]: ...

    def on_history(self, symbol: str, candles: Sequence[Candle]) -> list[OrderIntent]:
        """Closed candles (`epochbot.model.records.Candle`, oldest first) fetched at start,
        to warm up before the first view. Optional: the default ignores them."""
        return []


class StrategyError(ValueError):
    """Unknown strategy name or bad parameters."""


# Strategies are plug-ins: a distribution (epochbot itself, or a user's own package) names a
# factory in the ``epochbot.strategies`` entry-point group, ``name = "package.module:factory"``,
# where ``factory(params: dict) -> Strategy``. Names are listed from the installed metadata
# without importing anything; a strategy's module is imported only when it is asked for by name.
ENTRY_POINT_GROUP = "epochbot.strategies"

# epochbot's own two, exactly as pyproject.toml registers them (a test holds the two equal). Used
# only when epochbot runs from a source tree whose installed metadata predates the entry points
# (never installed, or installed from an older checkout): the examples must not vanish then.
BUILTIN_ENTRY_POINTS = {
    "momentum": "epochbot.trading.strategies.momentum:make_momentum",
    "quoter": "epochbot.trading.strategies.quoter:make_quoter",
}

StrategyFactory = Callable[[Mapping[str, Any]], Strategy]  # params -> a strategy (an entry point names one)

# Registered in-process (tests, notebooks): these win over entry points of the same name.
_REGISTRY: dict[str, StrategyFactory] = {}


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Register a factory in this process only (a package should use the entry point instead)."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise StrategyError(f"strategy {name!r} is already registered")
    _REGISTRY[name] = factory


def _entry_points() -> dict[str, EntryPoint]:
    """Installed strategy entry points by name (first distribution wins on a clash of the same
    value; two different values under one name are reported when that name is loaded)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    for name, value in BUILTIN_ENTRY_POINTS.items():
        found.setdefault(name, EntryPoint(name, value, ENTRY_POINT_GROUP))
    return found


def strategy_names() -> tuple[str, ...]:
    """Every strategy that can be named in the configuration (nothing is imported)."""
    return tuple(sorted({*_REGISTRY, *_entry_points()}))


def load_strategy_factory(name: str) -> StrategyFactory:
    """The factory registered as ``name``: its module is imported here (``EntryPoint.load``).

    Raises `StrategyError` with one line that says what to fix: an unknown name (with the
    available ones), or a plug-in that cannot be imported or does not name a callable."""
    factory = _REGISTRY.get(name)
    if factory is not None:
        return factory
    ep = _entry_points().get(name)
    if ep is None:
        raise StrategyError(f"unknown strategy {name!r}; available: {', '.join(strategy_names())}")
    clashes = sorted(
        {other.value for other in entry_points(group=ENTRY_POINT_GROUP) if other.name == name} - {ep.value}
    )
    if clashes:
        raise StrategyError(
            f"strategy {name!r} is registered twice ({ep.value} and {', '.join(clashes)}); uninstall one"
        )
    try:
        loaded = ep.load()
    except ImportError as exc:
        raise StrategyError(f"strategy {name!r} ({ep.value}) cannot be imported: {exc}") from None
    except AttributeError as exc:
        raise StrategyError(f"strategy {name!r} ({ep.value}) does not exist: {exc}") from None
    if not callable(loaded):
        raise StrategyError(f"strategy {name!r} ({ep.value}) is not a factory: {type(loaded).__name__} is not callable")
    plugin: StrategyFactory = loaded  # callable; what it builds is checked by get_strategy
    return plugin


def get_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Build the strategy registered as ``name`` with ``params`` over its defaults."""
    strategy = load_strategy_factory(name)(dict(params or {}))
    missing = [hook for hook in _REQUIRED_HOOKS if not callable(getattr(strategy, hook, None))]
    if missing:
        raise StrategyError(
            f"strategy {name!r}: its factory returned a {type(strategy).__name__} without {', '.join(missing)}"
        )
    return strategy


_REQUIRED_HOOKS = ("on_book", "on_trade", "on_fill", "on_mode_change", "on_timer")  # on_history is optional


def lots_for_quote(view: MarketView, quote: str) -> int:
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
    need = amount * 2 * Fraction(10) ** (codec.price_decimals + codec.qty_decimals) / two_mid
    lots = -((-need.numerator) // need.denominator)
    return max(1, lots)


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any], strategy: str) -> dict[str, Any]:
    """Defaults overlaid with ``params``; unknown keys are an error (typos must not pass silently)."""
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise StrategyError(
            f"{strategy}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}"
        )
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
class BaseStrategy:
    """Do-nothing hooks, so a strategy overrides only the ones it uses (the examples build on it)."""

    name: str = "base"
    params: dict[str, Any] = field(default_factory=dict)

    def on_book(self, view: MarketView) -> list[OrderIntent]:
        return []

    def on_trade(self, trade: TradeTick) -> list[OrderIntent]:
        return []

    def on_fill(self, fill: Fill) -> list[OrderIntent]:
        return []

    def on_mode_change(self, mode: Mode) -> list[OrderIntent]:
        return []

    def on_timer(self, now_ns: int) -> list[OrderIntent]:
        return []

    def on_history(self, symbol: str, candles: Sequence[Candle]) -> list[OrderIntent]:
        return []


# The name BaseStrategy had before it was public; tests/runtime/test_klines_funding.py still imports it.
_Base = BaseStrategy

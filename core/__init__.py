"""epochbot: the public API for plug-ins.

A strategy plug-in needs only what is named here, imported from the package root::

    from epochbot import MarketView, Mode, OrderIntent, StrategyError, TradeTick, lots_for_quote, merge_params

Everything else (``epochbot.engine``, ``epochbot.runtime``, ...) is internal and may move between
releases; these names will not. They are re-exported lazily (PEP 562): ``import epochbot`` imports
nothing else, and each name loads its module the first time it is read.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "Fill": "epochbot.model.trade_events",
    "MarketView": "epochbot.engine.market_view",
    "Mode": "epochbot.model.modes",
    "OrderIntent": "epochbot.trading.strategy",
    "Strategy": "epochbot.trading.strategy",
    "StrategyError": "epochbot.trading.strategy",
    "TradeTick": "epochbot.engine.market_view",
    "UnitCodec": "epochbot.model.numeric",
    "lots_for_quote": "epochbot.trading.strategy",
    "merge_params": "epochbot.trading.strategy",
}

__all__ = [
    "Fill",
    "MarketView",
    "Mode",
    "OrderIntent",
    "Strategy",
    "StrategyError",
    "TradeTick",
    "UnitCodec",
    "__version__",
    "lots_for_quote",
    "merge_params",
]

if TYPE_CHECKING:  # what type checkers (and the layer test) see; at run time __getattr__ loads them
    from epochbot.engine.market_view import MarketView, TradeTick
    from epochbot.model.modes import Mode
    from epochbot.model.numeric import UnitCodec
    from epochbot.model.trade_events import Fill
    from epochbot.trading.strategy import OrderIntent, Strategy, StrategyError, lots_for_quote, merge_params


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'epochbot' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later reads skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

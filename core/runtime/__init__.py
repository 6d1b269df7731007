"""The live I/O shell around the engine: `Runtime` (epochbot.runtime.runtime) and its configuration
(epochbot.runtime.config), re-exported lazily so that importing a part (the inbox, the budget)
does not import the whole runtime."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "JournalConfig": "epochbot.runtime.config",
    "Runtime": "epochbot.runtime.runtime",
    "RuntimeConfig": "epochbot.runtime.config",
    "TradingConfig": "epochbot.runtime.config",
    "VENUES": "epochbot.runtime.config",
    "VenueEndpoints": "epochbot.runtime.config",
}

__all__ = ["VENUES", "JournalConfig", "Runtime", "RuntimeConfig", "TradingConfig", "VenueEndpoints"]

if TYPE_CHECKING:
    from epochbot.runtime.config import VENUES, JournalConfig, RuntimeConfig, TradingConfig, VenueEndpoints
    from epochbot.runtime.runtime import Runtime


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'epochbot.runtime' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

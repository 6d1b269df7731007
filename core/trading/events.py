"""Trading events and commands: defined in `core.trade_events` (the vocabulary below the engine,
the trader, the venues and persistence); re-exported here for the trading package's readers."""

from core.trade_events import *  # noqa: F401,F403
from core.trade_events import Side, __all__  # noqa: F401

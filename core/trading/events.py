"""Trading events and commands: defined in `epochbot.trade_events` (the vocabulary below the engine,
the trader, the venues and persistence); re-exported here for the trading package's readers."""

from epochbot.trade_events import *
from epochbot.trade_events import Side, __all__

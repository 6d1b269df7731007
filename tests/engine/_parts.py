"""Builders for the engine's parts, wired by hand the way the facade wires them."""

from __future__ import annotations

from epochbot.book.book import OrderBook, VenueRules
from epochbot.engine.config import EngineConfig
from epochbot.engine.incidents import Incidents
from epochbot.engine.liveness import ReplacementGovernor
from epochbot.engine.log import EngineLog
from epochbot.engine.session import SessionMachine
from epochbot.engine.symbols import Symbols, SymbolState
from epochbot.model import events as ev
from tests.core._support import FakeClock

MS = 1_000_000


class Parts:
    """A symbol table, a session machine (subscribed, epoch 1), incidents, a log, counters."""

    def __init__(self, symbols: tuple[str, ...] = ("BTCUSDT",), **config) -> None:
        self.clock = FakeClock()
        self.config = EngineConfig(venue=VenueRules.USDM, symbols=symbols, **config)
        self.symbols: Symbols = {
            s: SymbolState(OrderBook(s, VenueRules.USDM, buffer_limit=self.config.book_buffer_limit)) for s in symbols
        }
        self.session = SessionMachine(self.config, ReplacementGovernor())
        self.log = EngineLog(self.clock, 100, self.session)
        self.incidents = Incidents()
        self.counters: dict[str, int] = {
            k: 0
            for k in (
                "gaps",
                "overflow_dropped",
                "malformed",
                "snapshots_failed",
                "snapshots_refetched",
                "unsolicited_snapshots",
                "book_resyncs",
                "funding_settlements",
            )
        }
        self.evaluated: list[int] = []
        self.fatal: list[str] = []

    def subscribe(self) -> Parts:
        now = self.clock()
        self.session.replace(now, "startup")
        self.session.opened(now, "wss://x", close_ms=0.0, dial_ms=0.0)
        self.session.acknowledged(now)
        return self

    def evaluate(self, now: int) -> None:
        self.evaluated.append(now)

    def go_fatal(self, now: int, why: str) -> ev.Commands:
        self.fatal.append(why)
        return (ev.Stop(reason=why, exit_code=3),)

    def messages(self) -> list[str]:
        return [r.msg for r in self.log.records]

"""Fakes the runtime's part tests share: a log that records, a REST client that answers from
tables, an engine for one USD-M symbol, a manual clock, and a drain of the inbox."""

from __future__ import annotations

from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.runtime.config import VENUES, RuntimeConfig, VenueEndpoints
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.venue_rest import VenueRest
from epochbot.venues.binance.rest import RestError, SymbolFilters

SYMBOL = "BTCUSDT"
VENUE = VenueEndpoints("test", "usdm", "http://127.0.0.1:9", "ws://127.0.0.1:9")


class Clock:
    """Nanoseconds that move only when told (``advance``), starting at ``start``."""

    def __init__(self, start: int = 1_700_000_000_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


class LogSpy:
    """A `epochbot.runtime.publish.RuntimeLog` that keeps every record."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict]] = []

    def __call__(self, level: str, msg: str, **fields) -> None:
        self.records.append((level, msg, fields))

    def find(self, msg: str) -> dict | None:
        return next((fields for _, m, fields in self.records if m == msg), None)


class FakeRest:
    """The `RestClient` surface the parts use, answering from what a test put in it."""

    market = "usdm"
    prefix = "/fapi/v1"
    base_url = VENUE.rest_url

    def __init__(self) -> None:
        self.depth_answers: list = []  # (last_id, bids, asks, ts) or a RestError, in order
        self.depth_calls: list[tuple[str, int]] = []
        self.filters: dict[str, SymbolFilters] | Exception = {}
        self.weight_limit_1m: int | None = None
        self.used_weight = 0
        self.offset: tuple[float, float] | Exception = (0.0, 1.0)
        self.klines_rows: list = []

    def depth_limit(self, wanted: int) -> int:
        return wanted

    async def depth(self, symbol: str, limit: int = 1000, on_body=None):
        self.depth_calls.append((symbol, limit))
        answer = self.depth_answers.pop(0) if self.depth_answers else (1, [], [], 0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def exchange_filters(self, symbols):
        if isinstance(self.filters, Exception):
            raise self.filters
        return self.filters

    async def server_time_offset(self, clock):
        if isinstance(self.offset, Exception):
            raise self.offset
        return self.offset

    async def klines(self, symbol, interval, start_ms=None, end_ms=None, limit=1000):
        return [row for row in self.klines_rows if start_ms <= row[0] <= end_ms][:limit]


def venue_rest(fake: FakeRest | None = None, log=None) -> tuple[VenueRest, FakeRest]:
    """A `VenueRest` already "open" on a fake client."""
    fake = fake or FakeRest()
    rest = VenueRest(VENUE, timeout_s=1.0, retry_after_cap_s=60.0, log=log or LogSpy())
    rest.opened = fake  # type: ignore[assignment]
    return rest, fake


def engine(clock=None, symbols=(SYMBOL,)) -> Engine:
    return Engine(EngineConfig(venue=VenueRules.USDM, symbols=tuple(symbols)), clock or Clock())


def config(**overrides) -> RuntimeConfig:
    return RuntimeConfig(venue=overrides.pop("venue", VENUE), symbols=overrides.pop("symbols", (SYMBOL,)), **overrides)


def drain(inbox: Inbox) -> list:
    out = []
    while (event := inbox.next()) is not None:
        out.append(event)
    return out


def btc_filters() -> dict[str, SymbolFilters]:
    return {SYMBOL: SymbolFilters(SYMBOL, "0.10", "0.001", "5", min_qty="0.001", max_qty="1000", quote_asset="USDT")}


__all__ = [
    "VENUE",
    "VENUES",
    "SYMBOL",
    "Clock",
    "FakeRest",
    "LogSpy",
    "RestError",
    "btc_filters",
    "config",
    "drain",
    "engine",
    "venue_rest",
]

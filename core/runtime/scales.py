"""Exact symbol scales from exchangeInfo, before any session exists.

`SymbolScales.prepare` asks the venue for each symbol's filters and hands the engine a
``SymbolSpec`` per symbol (journaled), so no book parses a level before its tick and step are
known (the book infers them from the first snapshot otherwise). The scales the books took are
kept in ``depth`` (symbol -> price and quantity decimals), which the transport uses to decode
those symbols' depth frames straight to integer units. The request-weight limit the venue
publishes in exchangeInfo replaces the configured default. Returns the filters (trading needs
them).
"""

from __future__ import annotations

from dataclasses import replace

from epochbot.engine.engine import Engine
from epochbot.model import events as ev
from epochbot.runtime.budget import WeightBudget
from epochbot.runtime.config import RuntimeConfig
from epochbot.runtime.publish import RuntimeLog
from epochbot.runtime.recorder import InputRecorder
from epochbot.runtime.venue_rest import VenueRest
from epochbot.venues.binance.rest import RestError, SymbolFilters

__all__ = ["SymbolScales"]


class SymbolScales:
    def __init__(
        self,
        config: RuntimeConfig,
        *,
        engine: Engine,
        rest: VenueRest,
        budget: WeightBudget,
        recorder: InputRecorder,
        log: RuntimeLog,
    ) -> None:
        self.config = config
        self.engine = engine
        self.rest = rest
        self.budget = budget
        self.recorder = recorder
        self.log = log
        self.depth: dict[str, tuple[int, int]] = {}

    async def prepare(self) -> dict[str, SymbolFilters]:
        rest = self.rest.client
        try:
            filters = await rest.exchange_filters(list(self.config.symbols))
        except (RestError, ValueError, KeyError, TypeError) as exc:
            self.log("warn", "exchangeInfo unavailable: scales will be inferred from snapshots", error=str(exc))
            return {}
        published = rest.weight_limit_1m
        budget = self.budget
        if published and self.config.weight_limit is None and published != budget.config.limit:
            budget.config = replace(budget.config, limit=published)
            self.log("info", "request weight limit from exchangeInfo", limit=published, cap=budget.config.cap)
        for symbol in self.config.symbols:
            f = filters.get(symbol)
            if f is None:
                self.log("warn", "symbol not listed by the venue", symbol=symbol)
                continue
            # Applied now, before any session exists, so that no book parses a level first.
            spec = ev.SymbolSpec(
                symbol=symbol, tick_size=f.tick_size, step_size=f.step_size, min_notional=f.min_notional
            )
            self.engine.handle(spec)
            self.recorder.event(spec)
            state = self.engine.symbols.get(symbol)
            codec = state.book.codec if state is not None else None  # the scale the book has now
            if codec is not None:
                self.depth[symbol] = (codec.price_decimals, codec.qty_decimals)
        return filters

"""Which streams the runtime subscribes to, and which symbols it trades.

Traded symbols get every stream (depth, bookTicker, aggTrade, markPrice, kline) and their
snapshots go first in the weight planner; watched symbols get every stream too, or only depth
when ``watched_streams`` is "depth". `routes` groups the streams by websocket route (spot has
one, USD-M ``/public`` and ``/market``), split to Binance's streams-per-connection limit.
"""

from __future__ import annotations

from epochbot.runtime.config import RuntimeConfig
from epochbot.runtime.transport import RouteSpec
from epochbot.venues.binance.wire import market_stream_url, streams_for

__all__ = ["StreamPlan"]


class StreamPlan:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config

    def is_traded(self, symbol: str) -> bool:
        traded = self.config.traded_symbols
        if traded is not None:
            return symbol in traded
        return self.config.trading is not None

    def full_symbols(self) -> list[str]:
        """Symbols that get every stream (all of them unless watched ones get depth only)."""
        if self.config.watched_streams == "all":
            return list(self.config.symbols)
        return [s for s in self.config.symbols if self.is_traded(s)]

    def routes(self) -> list[RouteSpec]:
        config = self.config
        venue = config.venue
        full = self.full_symbols()
        grouped = streams_for(
            full,
            venue.market,
            trades=config.trades,
            tickers=config.tickers,
            kline_interval=config.history_interval or None,
        )
        watched = [s for s in config.symbols if s not in set(full)]
        if watched:
            depth_only = streams_for(watched, venue.market, trades=False, tickers=False)
            for route, streams in depth_only.items():
                grouped.setdefault(route, []).extend(name for name in streams if "@depth" in name)
        routes = [
            RouteSpec(market_stream_url(venue.ws_url, route), tuple(streams))
            for route, streams in grouped.items()
            if streams
        ]
        return [part for route in routes for part in route.split()]

"""The REST connection to the venue: one aiohttp session and the `RestClient` on it.

The parts that ask the venue something (snapshots, probes, klines, server time, exchangeInfo,
trading) are built with this object and reach the client through ``client`` once the runtime
has opened it at start (an aiohttp session belongs to the running event loop, so it cannot be
made earlier); it is closed at the end of the shutdown.
"""

from __future__ import annotations

import aiohttp

from epochbot.runtime.config import VenueEndpoints
from epochbot.runtime.publish import RuntimeLog
from epochbot.venues.binance.rest import RestClient

__all__ = ["VenueRest"]


class VenueRest:
    def __init__(self, venue: VenueEndpoints, *, timeout_s: float, retry_after_cap_s: float, log: RuntimeLog) -> None:
        self.venue = venue
        self.timeout_s = timeout_s
        self.retry_after_cap_s = retry_after_cap_s
        self.log = log
        self.opened: RestClient | None = None
        self._http: aiohttp.ClientSession | None = None

    def open(self) -> RestClient:
        """The client, on a new session of the running event loop."""
        if not self.venue.rest_url or not self.venue.ws_url:
            raise ValueError(
                f"venue {self.venue.name!r} has no REST or WebSocket URL: start the venue first and pass its URLs"
            )
        connector = aiohttp.TCPConnector(limit=64, ttl_dns_cache=300)
        self._http = aiohttp.ClientSession(connector=connector)
        client = RestClient(
            self._http,
            self.venue.rest_url,
            self.venue.market,
            self.timeout_s,
            retry_after_cap_s=self.retry_after_cap_s,
        )
        client.log = self.log
        self.opened = client
        return client

    @property
    def client(self) -> RestClient:
        client = self.opened
        if client is None:
            raise RuntimeError("the venue's REST client is used before the runtime opened it")
        return client

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

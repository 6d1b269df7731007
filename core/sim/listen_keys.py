"""listenKeys: USD-M's REST user-data stream keys; on spot the retired endpoints answer 410 Gone.

A USD-M key is derived from the seed and the account (the same key while it is valid, as on
Binance; keys do not expire in the simulator) and is listened to on ``/private`` (in the URL, or
by ``SUBSCRIBE ["<listenKey>"]``); closing the key ends every listening, and closes the
connections that had it in their URL and listen to nothing else. REST ``/fapi/v1/listenKey`` and
the WebSocket API ``userDataStream.start/ping/stop`` share the keys.
Spot's ``/api/v3/userDataStream`` was removed on 2026-02-20: spot account events come only
through the WebSocket API (``userDataStream.subscribe``).
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl

from aiohttp import web

from epochbot.sim.auth import Credentials, SimApiError, verify_api_key
from epochbot.sim.conn import Connections
from epochbot.sim.rest import json_body
from epochbot.sim.user_data import UserEvents

__all__ = ["ListenKeys"]


class ListenKeys:
    """The listenKeys of one market: their REST endpoints, the WebSocket API's ``userDataStream.*``
    (USD-M) and the key -> account table the /private route reads."""

    def __init__(
        self,
        *,
        market: str,
        seed: int,
        accounts: dict[str, Credentials],
        user_events: UserEvents,
        connections: Connections,
    ) -> None:
        self._market = market
        self._seed = seed
        self._accounts = accounts
        self._user_events = user_events
        self._connections = connections
        self._keys: dict[str, str] = {}  # listenKey -> account_id
        self._made = 0

    def account_of(self, key: str | None) -> str | None:
        """The account a valid listenKey belongs to (None: no such key)."""
        return self._keys.get(key) if key is not None else None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        if self._market == "spot":  # removed on 2026-02-20: Binance answers 410 Gone
            for add in (router.add_post, router.add_put, router.add_delete):
                add("/api/v3/userDataStream", self._gone)
        else:
            router.add_post("/fapi/v1/listenKey", self._new)
            router.add_put("/fapi/v1/listenKey", self._keep)
            router.add_delete("/fapi/v1/listenKey", self._close)

    # ------------------------------------------------------------------ the keys (REST and WebSocket API)

    def start(self, account_id: str) -> str:
        """The account's listenKey: the one it has while it is valid (as on Binance), else a new one."""
        for key, acct in self._keys.items():
            if acct == account_id:
                return key
        digest = hashlib.sha256(f"{self._seed}:{account_id}:{self._made}".encode()).hexdigest()
        self._made += 1
        key = (digest + hashlib.sha256(digest.encode()).hexdigest())[:60]
        self._keys[key] = account_id
        return key

    def keepalive(self, account_id: str, key: str | None = None) -> str:
        """Keep the account's listenKey (or ``key``) alive; -1125 when it has none."""
        if key is None:
            key = next((k for k, a in self._keys.items() if a == account_id), None)
        if key is None or self._keys.get(key) != account_id:
            raise SimApiError(-1125, "This listenKey does not exist.")
        return key

    async def stop(self, account_id: str, key: str | None = None) -> None:
        """Close the account's listenKey (or ``key``): every connection stops listening to it, and a
        connection that had it in its URL and listens to nothing else is closed."""
        keys = [key] if key else [k for k, a in self._keys.items() if a == account_id]
        for k in keys:
            if self._keys.get(k) != account_id:
                continue
            del self._keys[k]
            for conn in self._user_events.end_key(k):
                await self._connections.close(conn)

    # ------------------------------------------------------------------ REST

    async def _new(self, request: web.Request) -> web.Response:
        creds = verify_api_key(request.headers.get("X-MBX-APIKEY"), self._accounts)
        return json_body({"listenKey": self.start(creds.account_id)})

    async def _gone(self, request: web.Request) -> web.Response:
        return json_body(
            {
                "code": -1000,
                "msg": "This endpoint is no longer available (removed 2026-02-20); "
                "use userDataStream.subscribe on the WebSocket API.",
            },
            status=410,
        )

    @staticmethod
    async def _params(request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.can_read_body:
            params.update(parse_qsl(await request.text()))
        return params

    async def _keep(self, request: web.Request) -> web.Response:
        creds = verify_api_key(request.headers.get("X-MBX-APIKEY"), self._accounts)
        key = (await self._params(request)).get("listenKey") or None
        return json_body({"listenKey": self.keepalive(creds.account_id, key)})

    async def _close(self, request: web.Request) -> web.Response:
        creds = verify_api_key(request.headers.get("X-MBX-APIKEY"), self._accounts)
        await self.stop(creds.account_id, (await self._params(request)).get("listenKey") or None)
        return json_body({})

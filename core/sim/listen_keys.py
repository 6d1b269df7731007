"""listenKeys: USD-M's REST user-data stream keys; on spot the retired endpoints answer 410 Gone.

A USD-M key is derived from the seed and the account (the same key while it is valid, as on
Binance) and opens ``/private/ws?listenKey=..`` sockets; closing the key closes its sockets.
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
    """The listenKey endpoints and the key -> account table the /private route reads."""

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

    async def _new(self, request: web.Request) -> web.Response:
        creds = verify_api_key(request.headers.get("X-MBX-APIKEY"), self._accounts)
        for key, acct in self._keys.items():  # Binance returns the same key while it is valid
            if acct == creds.account_id:
                return json_body({"listenKey": key})
        digest = hashlib.sha256(f"{self._seed}:{creds.account_id}:{len(self._keys)}".encode()).hexdigest()
        key = (digest + hashlib.sha256(digest.encode()).hexdigest())[:60]
        self._keys[key] = creds.account_id
        return json_body({"listenKey": key})

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
        verify_api_key(request.headers.get("X-MBX-APIKEY"), self._accounts)
        key = (await self._params(request)).get("listenKey") or next(iter(self._keys), None)
        if key is None:
            raise SimApiError(-1125, "This listenKey does not exist.")
        return json_body({"listenKey": key})

    async def _close(self, request: web.Request) -> web.Response:
        creds = verify_api_key(request.headers.get("X-MBX-APIKEY"), self._accounts)
        key = (await self._params(request)).get("listenKey")
        keys = [key] if key else [k for k, a in self._keys.items() if a == creds.account_id]
        for k in keys:
            acct = self._keys.pop(k, None)
            if acct is not None:
                for c in self._user_events.sockets(acct):
                    if c.listen_key == k:
                        await self._connections.close(c)
        return json_body({})

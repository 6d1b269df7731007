"""REST plumbing shared by every route: Binance's request-weight gate, errors as JSON, parameters.

`WeightGate` charges each request its Binance weight before it runs (429, then a 418 ban,
as `epochbot.sim.weights` decides), turns a `SimApiError` raised by a handler into Binance's
``{"code": .., "msg": ..}`` answer and stamps ``X-MBX-USED-WEIGHT-1M`` on every venue answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from epochbot.sim.auth import SimApiError
from epochbot.sim.clock import now_ms
from epochbot.sim.weights import WeightLimiter, request_weight

__all__ = [
    "UNKNOWN_ERROR_MSG",
    "Handler",
    "int_param",
    "json_body",
    "optional_symbol",
    "required_symbol",
    "WeightGate",
]

UNKNOWN_ERROR_MSG = "Unknown error, please check your request or try again later."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_body(body: Any, status: int = 200) -> web.Response:
    """A JSON answer serialised with orjson (compact, like Binance's)."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class WeightGate:
    """The aiohttp middleware that enforces request weight and renders API errors (`middleware`)."""

    def __init__(self, *, market: str, weights: WeightLimiter, weight_limit: int, stats: dict[str, Any]) -> None:
        self._market = market
        self._weights = weights
        self._weight_limit = weight_limit
        self._stats = stats

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        weight = request_weight(self._market, request.path, request.query, request.method)
        verdict = self._weights.check(weight)
        if weight:
            self._stats["rest_requests"] += 1
        if verdict.status == 418:
            banned_until = now_ms() + verdict.retry_after_s * 1000
            return web.json_response(
                {
                    "code": -1003,
                    "msg": f"Way too much request weight used; IP banned until {banned_until}. "
                    "Please use WebSocket Streams for live updates to avoid bans.",
                },
                status=418,
                headers={"Retry-After": str(verdict.retry_after_s), "X-MBX-USED-WEIGHT-1M": str(verdict.used)},
            )
        if verdict.status == 429:
            return web.json_response(
                {
                    "code": -1003,
                    "msg": f"Too many requests; current limit of IP(127.0.0.1) is "
                    f"{self._weight_limit} requests per minute. Please use the websocket for live "
                    "updates to avoid polling the API.",
                },
                status=429,
                headers={"Retry-After": str(verdict.retry_after_s), "X-MBX-USED-WEIGHT-1M": str(verdict.used)},
            )
        try:
            resp = await handler(request)
        except SimApiError as e:
            resp = web.json_response(e.to_json(), status=e.http_status, headers=e.headers)
        if weight and not isinstance(resp, web.WebSocketResponse):
            resp.headers["X-MBX-USED-WEIGHT-1M"] = str(verdict.used)
            resp.headers["X-MBX-USED-WEIGHT"] = str(verdict.used)
        return resp


def optional_symbol(request: web.Request, markets: Mapping[str, object]) -> str | None:
    """The request's ``symbol`` (upper-cased), None when absent; -1121 when not served."""
    sym = request.query.get("symbol")
    if sym is None:
        return None
    sym = sym.upper()
    if sym not in markets:
        raise SimApiError(-1121, "Invalid symbol.")
    return sym


def required_symbol(request: web.Request, markets: Mapping[str, object]) -> str:
    """The request's ``symbol`` (upper-cased); -1102 when absent, -1121 when not served."""
    sym = optional_symbol(request, markets)
    if sym is None:
        raise SimApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    return sym


def int_param(params: dict[str, str], name: str) -> int | None:
    """An optional integer parameter (-1100 when it is not one)."""
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise SimApiError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.")
    return int(text)

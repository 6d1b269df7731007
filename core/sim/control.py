"""The control API (``/_sim/*``): what a test or an operator uses to steer the simulator.

``POST /_sim/fault`` arms a fault (the board checks every parameter and answers 400 with what is
allowed), ``GET``/``DELETE /_sim/faults`` list and clear them, ``POST /_sim/market`` pauses or
resumes the market (``{"paused": true[, "duration_s": N]}``), ``GET /_sim/market`` and
``/_sim/stats`` report, ``GET /_sim/depth`` is the simulator's own full snapshot, weight-free.
The body checks are plain functions (`fault_spec`, `market_request`) so they can be tested alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from aiohttp import web

from epochbot.sim.faults import FaultBoard, FaultError, check_param
from epochbot.sim.rest import json_body, required_symbol

__all__ = ["ControlApi", "ControlError", "SimControls", "fault_spec", "market_request"]

MARKET_FIELDS = ("paused", "duration_s")


class ControlError(ValueError):
    """A control request was refused; ``body`` is the JSON 400 answer."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["error"])
        self.body = body


def fault_spec(raw: bytes) -> dict[str, Any]:
    """The fault description a ``POST /_sim/fault`` body holds (a body that is not an object names
    no kind). Raises orjson.JSONDecodeError."""
    spec = orjson.loads(raw)
    return spec if isinstance(spec, dict) else {"kind": None}


def market_request(raw: bytes) -> tuple[bool, float | None]:
    """``(paused, duration_s)`` from a ``POST /_sim/market`` body, or ControlError."""
    try:
        spec = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ControlError({"error": str(e)}) from None
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("paused"), bool)
        or any(k not in MARKET_FIELDS for k in spec)
    ):
        raise ControlError(
            {"error": 'body must be {"paused": true|false[, "duration_s": seconds]}', "known": list(MARKET_FIELDS)}
        )
    duration = spec.get("duration_s")
    if duration is not None:
        try:
            duration = check_param("duration_s", duration)
        except FaultError as e:
            raise ControlError({"error": str(e), "known": list(MARKET_FIELDS)}) from None
    return spec["paused"], duration


class SimControls(Protocol):
    """What the control API steers (`epochbot.sim.server.SimExchange` is one)."""

    @property
    def paused(self) -> bool: ...

    def inject(self, kind: str, **params: Any) -> dict[str, Any]: ...

    def pause_market(self, duration_s: float | None = None) -> None: ...

    def resume_market(self) -> None: ...

    def stats_json(self) -> dict[str, Any]: ...

    def update_ids(self) -> dict[str, int]: ...

    def depth_snapshot(self, symbol: str, limit: int) -> dict[str, Any]: ...


class ControlApi:
    """The ``/_sim/*`` routes of one simulator."""

    def __init__(self, sim: SimControls, faults: FaultBoard, markets: Mapping[str, object]) -> None:
        self._sim = sim
        self._faults = faults
        self._markets = markets

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/_sim/fault", self._fault)
        router.add_get("/_sim/faults", self._list)
        router.add_delete("/_sim/faults", self._clear)
        router.add_post("/_sim/market", self._market)
        router.add_get("/_sim/market", self._market_state)
        router.add_get("/_sim/stats", self._stats)
        router.add_get("/_sim/depth", self._depth)

    async def _fault(self, request: web.Request) -> web.Response:
        inject: Callable[..., dict[str, Any]] = self._sim.inject
        try:
            # Unpacked as keyword arguments, so a body whose names do not fit says so in the
            # interpreter's own words (kept as the answer's text since the simulator began).
            fault = inject(**fault_spec(await request.read()))
        except FaultError as e:
            body: dict[str, Any] = {"error": str(e)}
            if e.known:
                body["known"] = list(e.known)
            return json_body(body, status=400)
        except (orjson.JSONDecodeError, TypeError) as e:
            return json_body({"error": str(e)}, status=400)
        return json_body(fault)

    async def _list(self, request: web.Request) -> web.Response:
        return json_body(self._faults.to_json())

    async def _clear(self, request: web.Request) -> web.Response:
        return json_body({"cleared": self._faults.clear()})

    async def _market(self, request: web.Request) -> web.Response:
        try:
            paused, duration = market_request(await request.read())
        except ControlError as e:
            return json_body(e.body, status=400)
        if paused:
            self._sim.pause_market(duration)
        else:
            self._sim.resume_market()
        return self._market_state_body()

    async def _market_state(self, request: web.Request) -> web.Response:
        return self._market_state_body()

    def _market_state_body(self) -> web.Response:
        return json_body({"paused": self._sim.paused, "update_ids": self._sim.update_ids()})

    async def _stats(self, request: web.Request) -> web.Response:
        return json_body(self._sim.stats_json())

    async def _depth(self, request: web.Request) -> web.Response:
        """The simulator's own full-precision snapshot, weight-free (for tests comparing books)."""
        sym = required_symbol(request, self._markets)
        limit = int(request.query.get("limit", "5000"))
        return json_body(self._sim.depth_snapshot(sym, limit))

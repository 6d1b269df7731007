"""The fault board: which faults are armed, how often and how long they fire, and a timed log.

A `Fault` is armed by the control API (``POST /_sim/fault``), by ``--fault KIND[:json]`` at start,
or by ``SimExchange.inject``. It has an optional ``symbol`` (None = every symbol), ``count`` (how
many times it may fire; None = unlimited while active) and ``duration_s`` (None = until spent or
cleared). The server asks the board ``take(kind, symbol, now)`` at the point where a fault could
apply; a hit decrements the count and is logged with its time. Instant kinds (drop, shutdown,
expire) are executed by the server right when they are armed and logged then.

Kinds and their parameters:
  drop              close every websocket abruptly (no close frame)
  expire            close every websocket like the 24-hour limit (close frame 1000)
  server_shutdown   tell every open connection {"e":"serverShutdown","E":ms} in its shape (raw,
                    combined {"stream":"!serverShutdown",..}, WebSocket API {"event":..}), keep it
                    usable for ``grace_s`` (default 10: Binance documents no fixed warning time since
                    2026-06-09; Binance's SDK needs 5 s + 1 s to log out on the old connection), then
                    close 1000; ``grace_s`` 0: closed right after the announcement
  stall             send nothing on websockets (frames are dropped) for duration_s (default 5);
                    scope "open" (default): the connections open when armed; "all": every one
  gap               skip ``skip`` update ids (default 1) on a symbol's diff stream (count default 1)
  stale             E/T on market events lag by ``lag_ms`` (default 5000)
  latency           delay websocket delivery by ``ms`` (default 200), in order: frames behind a
                    delayed frame wait for it and the backlog drains in order when the spell ends
  snapshot_slow     delay REST depth by ``ms`` (default 2000)
  snapshot_fail     REST depth answers ``status`` (default 503)
  snapshot_ratelimit REST depth answers ``status`` 429 (default) or 418 with Retry-After ``retry_after``
  reject_subscribe  SUBSCRIBE (and stream URLs) are refused
  malformed         the next market frames are replaced by invalid JSON
  truncated         the next market frames are cut in half
  duplicate         the next diff events are sent twice
  out_of_order      the next diff events are swapped with their successor
  crossed_snapshot  REST depth returns a crossed book (best bid >= best ask)
  unknown_execution POST order returns 503 -1000; the order is placed or not by a seeded coin flip.
                    On the WebSocket API (order.place) ``how`` says what the client sees: "503"
                    (default: status 503 inside the response), "drop" (the connection is cut with
                    the request in flight) or "timeout" (no answer at all)
  order_delay       a new order (REST POST order, WebSocket API order.place) reaches the matching
                    engine ``ms`` later (default 300); cancels and queries are not held, so a cancel
                    sent right after its order can overtake it (-2011 "Unknown order sent."), as on
                    Binance when the two requests take different paths. While armed, the WebSocket
                    API serves each request of a connection on its own (answers may come out of order)
  symbol_status     the symbol's exchangeInfo status is ``status`` (default "HALT"; also BREAK,
                    CANCEL_ONLY, END_OF_DAY...) while armed: new orders are refused, cancels work

The board is strict: a parameter the kind does not know is refused with the list of the ones it
does (the HTTP handler answers 400 with that list), and every value is range-checked
(`PARAM_RULES`): integers where the venue has integers, real HTTP status codes, bounded durations,
lags and skips, so no request can hang the simulator or silence its generators.

A quiet market (the venue's book does not change while the connections stay up) is not a fault:
``POST /_sim/market {"paused": true[, "duration_s": N]}``.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMMON_PARAMS",
    "FAULT_KINDS",
    "INSTANT_KINDS",
    "PARAM_RULES",
    "Fault",
    "FaultBoard",
    "FaultError",
    "StallScopes",
    "check_param",
    "stale_time",
]

FAULT_KINDS: dict[str, dict[str, Any]] = {
    "drop": {},
    "expire": {},
    "server_shutdown": {"grace_s": 10.0},
    "stall": {"duration_s": 5.0, "scope": "open"},
    "gap": {"skip": 1, "count": 1},
    "stale": {"lag_ms": 5000},
    "latency": {"ms": 200},
    "snapshot_slow": {"ms": 2000},
    "snapshot_fail": {"status": 503},
    "snapshot_ratelimit": {"status": 429, "retry_after": 10},
    "reject_subscribe": {},
    "malformed": {"count": 1},
    "truncated": {"count": 1},
    "duplicate": {"count": 1},
    "out_of_order": {"count": 1},
    "crossed_snapshot": {"count": 1},
    "unknown_execution": {"count": 1, "how": "503"},
    "symbol_status": {"status": "HALT"},
    "order_delay": {"ms": 300},
}
INSTANT_KINDS = frozenset({"drop", "expire", "server_shutdown"})
_ALIASES = {"serverShutdown": "server_shutdown", "unknownExecution": "unknown_execution"}


# Parameters every kind accepts, and each parameter's type and range: (integral, low, high) for
# numbers, or the tuple of allowed strings.
COMMON_PARAMS = ("symbol", "count", "duration_s")
PARAM_RULES: dict[str, tuple] = {
    "count": (True, 0, 1_000_000),
    "duration_s": (False, 0, 86_400),  # a day at most
    "skip": (True, 1, 1_000_000),
    "lag_ms": (False, 0, 3_600_000),  # an hour
    "ms": (False, 0, 600_000),  # ten minutes
    "status": (True, 100, 599),  # a real HTTP status code
    "retry_after": (True, 0, 86_400),
    "grace_s": (False, 0, 600),  # ten minutes, the warning Binance first documented (2026-05-06)
    "scope": ("open", "all"),
}
_STATUS_BY_KIND = {"snapshot_ratelimit": (429, 418)}  # Binance's two rate-limit answers
# Parameters whose rule depends on the kind (string choices).
_KIND_RULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("unknown_execution", "how"): ("503", "drop", "timeout"),
    ("symbol_status", "status"): (
        "TRADING",
        "HALT",
        "BREAK",
        "END_OF_DAY",
        "CANCEL_ONLY",
        "PRE_TRADING",
        "POST_TRADING",
        "AUCTION_MATCH",
    ),
}


class FaultError(ValueError):
    """A fault request was invalid (unknown kind, bad parameter). ``known``: the accepted names."""

    def __init__(self, message: str, known: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.known = known


def check_param(name: str, value: Any, kind: str = "") -> Any:
    """The value if it is of the right type and in range, else FaultError saying what is allowed."""
    rule: tuple[Any, ...] | None = _KIND_RULES.get((kind, name)) or PARAM_RULES.get(name)
    if rule is None:
        return value
    if isinstance(rule[0], str):
        if value not in rule:
            raise FaultError(f"{name} must be one of {', '.join(rule)}; got {value!r}")
        return value
    integral, low, high = rule
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise FaultError(f"{name} must be a {'whole ' if integral else ''}number from {low} to {high}; got {value!r}")
    if integral and value != int(value):
        raise FaultError(f"{name} must be a whole number from {low} to {high}; got {value!r}")
    if not low <= value <= high:
        raise FaultError(f"{name} must be from {low} to {high}; got {value!r}")
    allowed = _STATUS_BY_KIND.get(kind) if name == "status" else None
    if allowed and int(value) not in allowed:
        raise FaultError(f"status for {kind} must be one of {', '.join(map(str, allowed))}; got {value!r}")
    return int(value) if integral else value


@dataclass
class Fault:
    id: int
    kind: str
    symbol: str | None
    count: int | None
    expires_at: float | None  # monotonic seconds
    params: dict[str, Any]
    armed_at_ms: int
    fired: int = 0

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "symbol": self.symbol,
            "count": self.count,
            "fired": self.fired,
            "remaining_s": None if self.expires_at is None else max(0.0, round(self.expires_at - now, 3)),
            "params": self.params,
            "armed_at": self.armed_at_ms,
        }


@dataclass
class FaultBoard:
    """Armed faults and the log of everything that fired."""

    faults: list[Fault] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def arm(self, spec: dict[str, Any], *, now: float | None = None, wall_ms: int | None = None) -> Fault:
        """Validate and arm a fault from its JSON description."""
        now = time.monotonic() if now is None else now
        wall_ms = int(time.time() * 1000) if wall_ms is None else wall_ms
        if not isinstance(spec, dict):
            raise FaultError("fault must be a JSON object")
        spec = dict(spec)
        kind = spec.pop("kind", None)
        kind = _ALIASES.get(kind, kind) if isinstance(kind, str) and kind else None
        if kind is None:
            raise FaultError("missing 'kind'")
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        known = tuple(dict.fromkeys((*COMMON_PARAMS, *FAULT_KINDS[kind])))
        unknown = [k for k in spec if k not in known]
        if unknown:
            raise FaultError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for {kind}; "
                f"known: kind, {', '.join(known)}",
                ("kind", *known),
            )
        params = {**FAULT_KINDS[kind], **{k: v for k, v in spec.items() if v is not None or k == "symbol"}}
        for name in list(params):
            if name != "symbol":
                params[name] = check_param(name, params[name], kind)
        symbol = params.pop("symbol", None)
        count = params.pop("count", None)
        duration = params.pop("duration_s", None)
        if symbol is not None:
            if not isinstance(symbol, str) or not symbol or len(symbol) > 20 or not symbol.isalnum():
                raise FaultError(f"symbol must be a symbol name like BTCUSDT; got {symbol!r}")
            symbol = symbol.upper()
        fault = Fault(
            next(self._ids),
            kind,
            symbol,
            None if count is None else int(count),
            None if duration is None else now + float(duration),
            params,
            wall_ms,
        )
        if kind not in INSTANT_KINDS:
            self.faults.append(fault)
        self._log("armed", fault, wall_ms)
        return fault

    def take(self, kind: str, symbol: str | None = None, *, now: float | None = None) -> Fault | None:
        """The active fault of ``kind`` that applies to ``symbol``, consuming one firing."""
        if not self.faults:
            return None
        now = time.monotonic() if now is None else now
        for fault in self.faults:
            if fault.kind != kind or (fault.symbol is not None and symbol is not None and fault.symbol != symbol):
                continue
            if fault.expires_at is not None and now >= fault.expires_at:
                continue
            fault.fired += 1
            if fault.count is not None:
                fault.count -= 1
            self._log("fired", fault)
            if fault.count is not None and fault.count <= 0:
                self.faults.remove(fault)
            return fault
        self.expire(now)
        return None

    def active(self, kind: str, symbol: str | None = None, *, now: float | None = None) -> Fault | None:
        """Like take() but without consuming (for duration faults checked on every frame)."""
        if not self.faults:
            return None
        now = time.monotonic() if now is None else now
        for fault in self.faults:
            if fault.kind == kind and (fault.symbol is None or symbol is None or fault.symbol == symbol):
                if fault.expires_at is None or now < fault.expires_at:
                    return fault
        return None

    def note_instant(self, fault: Fault) -> None:
        fault.fired += 1
        self._log("fired", fault)

    def expire(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        keep = [f for f in self.faults if f.expires_at is None or now < f.expires_at]
        if len(keep) != len(self.faults):
            for f in self.faults:
                if f not in keep:
                    self._log("expired", f)
            self.faults = keep

    def clear(self) -> int:
        n = len(self.faults)
        for f in self.faults:
            self._log("cleared", f)
        self.faults = []
        return n

    def to_json(self) -> dict[str, Any]:
        now = time.monotonic()
        self.expire(now)
        return {"active": [f.to_json(now) for f in self.faults], "log": self.log[-500:]}

    def _log(self, what: str, fault: Fault, wall_ms: int | None = None) -> None:
        entry = {
            "time": int(time.time() * 1000) if wall_ms is None else wall_ms,
            "event": what,
            "id": fault.id,
            "kind": fault.kind,
            "symbol": fault.symbol,
        }
        self.log.append(entry)
        if len(self.log) > 5000:
            del self.log[:1000]


class StallScopes:
    """Which connections each ``stall`` fault silences.

    A stall armed through `SimExchange.inject` with scope "open" (the default) silences the
    connections open at that moment (a dead route, a wedged server task: new connections work);
    scope "all", and a stall armed at start, silence every connection, new ones included.
    """

    def __init__(self) -> None:
        self._found: dict[int, set[int]] = {}  # stall fault id -> the connection ids it silences

    def note_armed(self, fault: Fault, open_ids: set[int]) -> None:
        """Record the connections a just-armed fault silences (only scoped stalls have any)."""
        if fault.kind == "stall" and fault.params.get("scope", "open") == "open":
            self._found[fault.id] = set(open_ids)

    def silenced(self, stall: Fault) -> set[int] | None:
        """The connection ids ``stall`` silences; None: every connection."""
        return self._found.get(stall.id)

    def silences(self, stall: Fault | None, conn_id: int) -> bool:
        """Whether ``stall`` (the active one, or None) silences connection ``conn_id``."""
        if stall is None:
            return False
        found = self._found.get(stall.id)
        return found is None or conn_id in found


def stale_time(board: FaultBoard, symbol: str, now_ms: int) -> int:
    """``now_ms`` as a symbol's event timestamps carry it: ``lag_ms`` behind while ``stale`` is armed."""
    fault = board.active("stale", symbol)
    return now_ms - int(fault.params.get("lag_ms", 0)) if fault else now_ms


def parse_fault_flag(text: str) -> dict[str, Any]:
    """``KIND[:json]`` from the command line to a fault spec."""
    import orjson

    kind, _, rest = text.partition(":")
    spec: dict[str, Any] = orjson.loads(rest) if rest.strip() else {}
    if not isinstance(spec, dict):
        raise FaultError(f"--fault {text!r}: parameters must be a JSON object")
    spec["kind"] = kind.strip()
    return spec

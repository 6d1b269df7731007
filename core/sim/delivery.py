"""Frame delivery: one serialised frame to every subscribed connection, with the frame faults.

Theory of operation
-------------------
`FrameDelivery.deliver` appends a frame to the send queue of each connection subscribed to its
stream and wakes the connection's writer. Send queues are bounded: a client that falls
``send_queue_limit`` frames behind is closed (1008) and counted as ``slow_disconnects``, like
Binance drops slow consumers. Combined-stream connections get the ``{"stream":..,"data":..}``
wrapper, built once per frame; spot connections that asked for ``timeUnit=MICROSECOND`` get the
frame with its time fields scaled (``time_unit.py``), also built once per frame.

The frame faults act here, at the point they affect:

* ``stall``: the connections it silences get nothing (counted in ``frames_dropped_stall``);
* on diff frames, at most one of ``malformed`` (cut + garbage), ``truncated`` (cut in half),
  ``out_of_order`` (held back and sent right after its successor; if none comes in 0.2 s it
  still arrives, late, so the stream loses nothing) and ``duplicate`` (sent twice);
* ``latency``: frames are held ``ms`` before they go out. A latency spell delays, it never
  reorders (real TCP does not): each symbol's delayed frames wait in one line, in order, and a
  frame that comes while the line is not empty (the spell over or not) waits behind it. When
  the spell ends the backlog drains in order, then delivery is immediate again.

Nothing here reads the wall clock; timers come from the event loop (or an injected scheduler).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

import orjson

from epochbot.sim.conn import Connections, WsConn
from epochbot.sim.faults import FaultBoard, StallScopes
from epochbot.sim.subscriptions import Subscriptions
from epochbot.sim.time_unit import event_in_micros

__all__ = ["OUT_OF_ORDER_RELEASE_S", "FrameDelivery", "Scheduler"]

OUT_OF_ORDER_RELEASE_S = 0.2  # a held out_of_order frame goes out after this long without a successor

# What a delayed line holds, per entry: (due time, action, stream name, payload, connections).
_SEND, _HOLD, _RELEASE = 0, 1, 2
_Entry = tuple[float, int, str, bytes, set[WsConn]]


class Scheduler(Protocol):
    """The part of an asyncio event loop that delivery's timers need."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Any, *args: Any) -> Any: ...

    def call_later(self, delay: float, callback: Any, *args: Any) -> Any: ...


class FrameDelivery:
    """Fans frames out to subscribers through the frame faults (see module docstring)."""

    def __init__(
        self,
        *,
        subscriptions: Subscriptions,
        connections: Connections,
        faults: FaultBoard,
        stalls: StallScopes,
        stats: dict[str, Any],
        send_queue_limit: int,
        scheduler: Scheduler | None = None,
    ) -> None:
        self._subs = subscriptions
        self._connections = connections
        self._faults = faults
        self._stalls = stalls
        self._stats = stats
        self._limit = send_queue_limit
        self._scheduler = scheduler
        self._delayed: dict[str, deque[_Entry]] = {}  # symbol -> frames held by latency, in order

    def deliver(self, name: str, payload: bytes, sym: str, *, is_diff: bool = False) -> None:
        """Send one frame of stream ``name`` (of symbol ``sym``) to its subscribers."""
        conns = self._subs.subscribers(name)
        if not conns:
            return
        board = self._faults
        if not board.faults and not self._delayed:
            self._deliver_now(name, payload, conns)
            return
        if board.faults:
            stall = board.active("stall", sym)
            if stall is not None:
                stalled = self._stalls.silenced(stall)
                live = conns if stalled is None else {c for c in conns if c.id not in stalled}
                if stalled is None or not live:
                    self._stats["frames_dropped_stall"] += len(conns)
                    return
                self._stats["frames_dropped_stall"] += len(conns) - len(live)
                conns = live
            if is_diff:
                if board.take("malformed", sym):
                    payload = payload[: len(payload) // 3] + b",,}}garbage"
                elif board.take("truncated", sym):
                    payload = payload[: len(payload) // 2]
                elif board.take("out_of_order", sym):
                    self._in_order(sym, _HOLD, name, payload, conns)
                    return
                elif board.take("duplicate", sym):
                    self._in_order(sym, _SEND, name, payload, conns)
        self._in_order(sym, _SEND, name, payload, conns)

    def delayed(self, sym: str) -> int:
        """How many frames (and held-frame releases) of ``sym`` wait behind a latency spell."""
        line = self._delayed.get(sym)
        return len(line) if line else 0

    # ------------------------------------------------------------------ the in-order delay line

    def _loop(self) -> Scheduler:
        return self._scheduler if self._scheduler is not None else asyncio.get_running_loop()

    def _in_order(self, sym: str, action: int, name: str, payload: bytes, conns: set[WsConn]) -> None:
        """Do ``action`` now, or at the end of ``sym``'s line of delayed frames."""
        lat = self._faults.active("latency", sym) if self._faults.faults else None
        line = self._delayed.get(sym)
        if lat is None and line is None:
            self._act(sym, action, name, payload, conns)
            return
        loop = self._loop()
        due = loop.time() + (float(lat.params.get("ms", 0)) / 1000.0 if lat is not None else 0.0)
        if line is None:
            line = self._delayed[sym] = deque()
            loop.call_at(due, self._drain, sym)
        line.append((due, action, name, payload, set(conns)))

    def _drain(self, sym: str) -> None:
        line = self._delayed.get(sym)
        if line is None:
            return
        loop = self._loop()
        now = loop.time()
        while line and line[0][0] <= now:
            _, action, name, payload, conns = line.popleft()
            self._act(sym, action, name, payload, conns)
        if line:
            loop.call_at(line[0][0], self._drain, sym)
        else:
            del self._delayed[sym]

    def _act(self, sym: str, action: int, name: str, payload: bytes, conns: set[WsConn]) -> None:
        if action == _SEND:
            self._deliver_now(name, payload, conns)
        elif action == _HOLD:
            for c in conns:
                c.held = (name, payload)
            # Swapped with its successor; if none comes (market paused), it still arrives, late,
            # so the stream loses nothing (and behind whatever a latency spell holds by then).
            self._loop().call_later(OUT_OF_ORDER_RELEASE_S, self._in_order, sym, _RELEASE, name, b"", set(conns))
        else:
            self._release_held(name, conns)

    # ------------------------------------------------------------------ to the send queues

    def _deliver_now(self, name: str, payload: bytes, conns: set[WsConn]) -> None:
        msgs = self._stats["messages"]
        msgs[name] = msgs.get(name, 0) + len(conns)
        wrapped: bytes | None = None
        micro: tuple[bytes, bytes] | None = None  # (raw, wrapped) in microseconds, made on first need
        limit = self._limit
        for c in conns:
            if c.closed:
                continue
            if c.micros:
                if micro is None:
                    raw = _in_micros(payload)
                    micro = (raw, b'{"stream":"' + name.encode() + b'","data":' + raw + b"}")
                frame = micro[1] if c.combined else micro[0]
            elif c.combined:
                if wrapped is None:
                    wrapped = b'{"stream":"' + name.encode() + b'","data":' + payload + b"}"
                frame = wrapped
            else:
                frame = payload
            q = c.queue
            q.append(frame)
            if c.held is not None and c.held[0] == name:
                held_name, held = c.held
                c.held = None
                held = _in_micros(held) if c.micros else held
                q.append(b'{"stream":"' + held_name.encode() + b'","data":' + held + b"}" if c.combined else held)
            if len(q) > limit:
                self._stats["slow_disconnects"] += 1
                self._connections.close_soon(c, 1008)
                continue
            c.wake.set()

    @staticmethod
    def _release_held(name: str, conns: set[WsConn]) -> None:
        for c in conns:
            if c.closed or c.held is None or c.held[0] != name:
                continue
            _, held = c.held
            c.held = None
            held = _in_micros(held) if c.micros else held
            c.queue.append(b'{"stream":"' + name.encode() + b'","data":' + held + b"}" if c.combined else held)
            c.wake.set()


def _in_micros(payload: bytes) -> bytes:
    """An event payload with its time fields in microseconds (spot ``timeUnit=MICROSECOND``); a
    payload a frame fault broke is passed on as it is."""
    try:
        return orjson.dumps(event_in_micros(orjson.loads(payload)))
    except orjson.JSONDecodeError:
        return payload

"""Frame delivery: one serialised frame to every subscribed connection, with the frame faults.

Theory of operation
-------------------
`FrameDelivery.deliver` appends a frame to the send queue of each connection subscribed to its
stream and wakes the connection's writer. Send queues are bounded: a client that falls
``send_queue_limit`` frames behind is closed (1008) and counted as ``slow_disconnects``, like
Binance drops slow consumers. Combined-stream connections get the ``{"stream":..,"data":..}``
wrapper, built once per frame.

The frame faults act here, at the point they affect:

* ``stall``: the connections it silences get nothing (counted in ``frames_dropped_stall``);
* on diff frames, at most one of ``malformed`` (cut + garbage), ``truncated`` (cut in half),
  ``out_of_order`` (held back and sent right after its successor; if none comes in 0.2 s it
  still arrives, late, so the stream loses nothing) and ``duplicate`` (sent twice);
* ``latency``: each frame is sent ``ms`` later (its own timer).

Nothing here reads the wall clock; timers come from the event loop (or an injected scheduler).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from epochbot.sim.conn import Connections, WsConn
from epochbot.sim.faults import FaultBoard, StallScopes
from epochbot.sim.subscriptions import Subscriptions

__all__ = ["OUT_OF_ORDER_RELEASE_S", "FrameDelivery", "Scheduler"]

OUT_OF_ORDER_RELEASE_S = 0.2  # a held out_of_order frame goes out after this long without a successor


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

    def deliver(self, name: str, payload: bytes, sym: str, *, is_diff: bool = False) -> None:
        """Send one frame of stream ``name`` (of symbol ``sym``) to its subscribers."""
        conns = self._subs.subscribers(name)
        if not conns:
            return
        board = self._faults
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
                    for c in conns:
                        c.held = (name, payload)
                    # Swapped with its successor; if none comes (market paused), it still
                    # arrives, late, so the stream loses nothing.
                    self._loop().call_later(OUT_OF_ORDER_RELEASE_S, self._release_held, name, set(conns))
                    return
                elif board.take("duplicate", sym):
                    self._deliver_now(name, payload, conns)
            lat = board.active("latency", sym)
            if lat is not None:
                delay = float(lat.params.get("ms", 0)) / 1000.0
                self._loop().call_later(delay, self._deliver_now, name, payload, set(conns))
                return
        self._deliver_now(name, payload, conns)

    def _loop(self) -> Scheduler:
        return self._scheduler if self._scheduler is not None else asyncio.get_running_loop()

    # ------------------------------------------------------------------ to the send queues

    def _deliver_now(self, name: str, payload: bytes, conns: set[WsConn]) -> None:
        msgs = self._stats["messages"]
        msgs[name] = msgs.get(name, 0) + len(conns)
        wrapped: bytes | None = None
        limit = self._limit
        for c in conns:
            if c.closed:
                continue
            if c.combined:
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
            c.queue.append(b'{"stream":"' + name.encode() + b'","data":' + held + b"}" if c.combined else held)
            c.wake.set()

"""`UserEvents`: the paper venue's account events, carried to whoever listens for that account.

After every order call and every market step the hub drains the venue's queued events and hands
each one, in order, to the sinks (the WebSocket API's user-data subscriptions) and to the
account's USD-M ``/private`` listenKey sockets (filtered by the ``events`` they asked for).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from epochbot.sim.conn import WsConn
from epochbot.sim.matching import PaperVenue

__all__ = ["UserEvents"]

Sink = Callable[[str, dict], None]


class UserEvents:
    """Account events from the venue to WebSocket API subscriptions and /private sockets."""

    def __init__(self, venue: PaperVenue) -> None:
        self._venue = venue
        self._sinks: list[Sink] = []
        self._sockets: dict[str, set[WsConn]] = {}  # account id -> its /private connections

    def add_sink(self, sink: Sink) -> None:
        """Also hand every event to ``sink(account_id, event)`` (before the sockets get it)."""
        self._sinks.append(sink)

    def attach(self, conn: WsConn, account_id: str, listen_key: str, events: frozenset[str] | None) -> None:
        """A /private socket of ``account_id`` opened with ``listen_key`` (``events``: None = all)."""
        conn.account_id = account_id
        conn.listen_key = listen_key
        conn.user_events = events
        self._sockets.setdefault(account_id, set()).add(conn)

    def detach(self, conn: WsConn) -> None:
        """A connection closed (a close hook: any connection may be passed)."""
        if conn.account_id is not None:
            self._sockets.get(conn.account_id, set()).discard(conn)

    def sockets(self, account_id: str) -> list[WsConn]:
        """The account's open /private connections."""
        return list(self._sockets.get(account_id, ()))

    def pump(self) -> None:
        """Hand out every event the venue queued since the last pump."""
        for account_id, event in self._venue.drain_user_events():
            for sink in self._sinks:
                sink(account_id, event)
            conns = self._sockets.get(account_id)
            if not conns:
                continue
            payload = orjson.dumps(event)
            for c in conns:
                if not c.closed and (c.user_events is None or event.get("e") in c.user_events):
                    c.queue.append(payload)
                    c.wake.set()

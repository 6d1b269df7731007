"""`UserEvents`: the paper venue's account events, carried to whoever listens for that account.

After every order call and every market step the hub drains the venue's queued events and hands
each one, in order, to the sinks (the WebSocket API's user-data subscriptions) and to the USD-M
``/private`` connections that listen to one of the account's listenKeys.

A ``/private`` connection listens to listenKeys in two ways, as Binance serves them: keys in its
URL (``/private/ws?listenKey=K&events=A/B``, or in stream mode several ``listenKey``/``events``
pairs) or keys subscribed afterwards with ``SUBSCRIBE ["<listenKey>"]`` (what Binance's official
USD-M SDK does on a query-less ``/private/stream``). Each key carries its ``events`` filter (None:
every event). A combined (``/stream``) connection gets ``{"stream": "<listenKey>", "data": event}``,
a raw (``/ws``) one the bare event.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from epochbot.sim.conn import WsConn
from epochbot.sim.matching import PaperVenue

__all__ = ["UserEvents"]

Sink = Callable[[str, dict], None]


class UserEvents:
    """Account events from the venue to WebSocket API subscriptions and /private connections."""

    def __init__(self, venue: PaperVenue) -> None:
        self._venue = venue
        self._sinks: list[Sink] = []
        self._by_account: dict[str, dict[WsConn, None]] = {}  # account id -> its listening connections

    def add_sink(self, sink: Sink) -> None:
        """Also hand every event to ``sink(account_id, event)`` (before the connections get it)."""
        self._sinks.append(sink)

    def listen(self, conn: WsConn, account_id: str, listen_key: str, events: frozenset[str] | None) -> None:
        """``conn`` listens to ``listen_key`` of ``account_id`` (``events``: None = every event)."""
        conn.listen_keys[listen_key] = (account_id, events)
        self._by_account.setdefault(account_id, {})[conn] = None

    def stop_listening(self, conn: WsConn, listen_key: str) -> bool:
        """``conn`` no longer listens to ``listen_key``; whether it did."""
        entry = conn.listen_keys.pop(listen_key, None)
        if entry is None:
            return False
        account_id = entry[0]
        if not any(acct == account_id for acct, _ in conn.listen_keys.values()):
            self._by_account.get(account_id, {}).pop(conn, None)
        return True

    def end_key(self, listen_key: str) -> list[WsConn]:
        """A listenKey was closed: every connection stops listening to it. Returns the connections
        that had it in their URL and now listen to nothing (their stream is over: close them)."""
        done = []
        for conns in list(self._by_account.values()):
            for conn in list(conns):
                if self.stop_listening(conn, listen_key) and conn.keys_in_url and not conn.listen_keys:
                    done.append(conn)
        return done

    def detach(self, conn: WsConn) -> None:
        """A connection closed (a close hook: any connection may be passed)."""
        for account_id, _ in conn.listen_keys.values():
            self._by_account.get(account_id, {}).pop(conn, None)
        conn.listen_keys.clear()

    def pump(self) -> None:
        """Hand out every event the venue queued since the last pump."""
        for account_id, event in self._venue.drain_user_events():
            for sink in self._sinks:
                sink(account_id, event)
            conns = self._by_account.get(account_id)
            if not conns:
                continue
            payload = orjson.dumps(event)
            kind = event.get("e")
            for c in conns:
                if c.closed:
                    continue
                for key, (acct, events) in c.listen_keys.items():
                    if acct != account_id or (events is not None and kind not in events):
                        continue
                    frame = b'{"stream":"' + key.encode() + b'","data":' + payload + b"}" if c.combined else payload
                    c.queue.append(frame)
                    c.wake.set()

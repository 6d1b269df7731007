"""`Subscriptions`: which connection listens to which stream, and which streams each symbol feeds.

The registry is written by the subscribe protocol (URL streams, SUBSCRIBE/UNSUBSCRIBE) and by
connection close, and read by the market feed (the streams a symbol must produce) and by
delivery (the connections a frame goes to). When a stream loses its last subscriber it stops
being produced and its listeners (`on_stream_closed`) forget what they kept for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from epochbot.sim.conn import WsConn
from epochbot.sim.streams import StreamSpec, parse_stream

__all__ = ["Subscriptions"]


class Subscriptions:
    """Stream name -> subscribed connections, and symbol -> the streams it feeds."""

    def __init__(self, market: str, symbols: list[str]) -> None:
        self._market = market
        self._by_name: dict[str, set[WsConn]] = {}
        self._by_symbol: dict[str, dict[str, StreamSpec]] = {s: {} for s in symbols}
        self._closed_hooks: list[Callable[[str], None]] = []

    def on_stream_closed(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(name)`` when a stream loses its last subscriber."""
        self._closed_hooks.append(hook)

    def subscribers(self, name: str) -> set[WsConn] | None:
        """The connections subscribed to ``name`` (None or empty: nobody). Read, never keep."""
        return self._by_name.get(name)

    def streams_of(self, symbol: str) -> Mapping[str, StreamSpec]:
        """The streams a served symbol feeds, in subscription order (a live view: copy to iterate)."""
        return self._by_symbol[symbol]

    def add(self, conn: WsConn, name: str, spec: StreamSpec) -> None:
        if name in conn.subs:
            return
        conn.subs.add(name)
        self._by_name.setdefault(name, set()).add(conn)
        if spec.symbol in self._by_symbol:
            self._by_symbol[spec.symbol][name] = spec

    def remove(self, conn: WsConn, name: str) -> None:
        conn.subs.discard(name)
        subs = self._by_name.get(name)
        if subs is None:
            return
        subs.discard(conn)
        if subs:
            return
        del self._by_name[name]
        spec = parse_stream(name, self._market)
        if spec is not None and spec.symbol in self._by_symbol:
            self._by_symbol[spec.symbol].pop(name, None)
        for hook in self._closed_hooks:
            hook(name)

    def drop(self, conn: WsConn) -> None:
        """Unsubscribe a closing connection from everything."""
        for name in list(conn.subs):
            self.remove(conn, name)

    def counts(self) -> dict[str, int]:
        """Subscribers per stream, for /_sim/stats."""
        return {name: len(c) for name, c in self._by_name.items() if c}

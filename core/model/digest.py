"""What a state digest is fed through: anything with ``update(bytes)`` (a `hashlib` hash).

The engine's ``state_hash`` is one sha256 over the books (`epochbot.book.book.OrderBook.feed_hash`)
and the trader's orders and positions (`epochbot.engine.trader_port.TraderPort.feed_hash`): each
part feeds its own state, so none reads another's internals, and a replay reproduces the hash.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Digest"]


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

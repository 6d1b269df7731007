"""Typed events in, typed commands out.

Every *inbound* event carries the epoch of the transport session that produced it (0 for events
that belong to no session: timers, operator actions), a local receive timestamp ``recv_ts``
(wall clock, integer nanoseconds, taken right after the frame was decoded) and gets its
``process_ts`` (same clock) when the strategy loop takes it. Market events also carry the venue's
``exchange_ts`` (integer milliseconds, from the payload).

Market events are classes with ``__slots__`` and positional construction because the engine
creates one per websocket frame; control events and commands are frozen-ish dataclasses because
they are rare and readability wins.

Depth levels stay as the venue's decimal strings until the book applies them: parsing into
integer ticks/lots needs the symbol's scale, which may only be known once a snapshot arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

Levels = list[list[str]]  # as sent by Binance: [["price", "qty"], ...]
# A depth diff's levels: the venue's strings, or packed int64 (price, qty) unit pairs from the C
# decoder (see `DepthDiff`).
DiffLevels = Levels | bytes

# --------------------------------------------------------------------------------------------
# Market events (hot path)
# --------------------------------------------------------------------------------------------


class MarketEvent:
    __slots__ = ("epoch", "symbol", "exchange_ts", "recv_ts", "process_ts")
    kind: ClassVar[Literal["market"]] = "market"

    epoch: int
    symbol: str
    exchange_ts: int
    recv_ts: int
    process_ts: int

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _all_slots(type(self)))
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, name) == getattr(other, name) for name in _all_slots(type(self))
        )

    __hash__ = None  # type: ignore[assignment]


def _all_slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        names.extend(getattr(klass, "__slots__", ()))
    return names


class DepthDiff(MarketEvent):
    """A diff-depth event (`<sym>@depth@100ms`): update ids ``first_id``..``final_id``.

    ``prev_final_id`` is USD-M's ``pu`` (None on spot).

    ``bids``/``asks`` are the venue's ``[price, qty]`` decimal strings when ``scale`` is None.
    When the C decoder converted them (``epochbot.book._fastbook.decode_depth``), ``scale`` is the
    ``(price_decimals, qty_decimals)`` used and ``bids``/``asks`` are bytes of native int64
    ``(price_units, qty_units)`` pairs at that scale (qty 0 = delete); the book applies them
    directly only when the scale equals its codec's, else it turns them back into exact strings
    (``epochbot.book.book.unit_levels_as_strings``).
    """

    __slots__ = ("first_id", "final_id", "prev_final_id", "bids", "asks", "scale")

    def __init__(
        self,
        epoch: int,
        symbol: str,
        first_id: int,
        final_id: int,
        prev_final_id: int | None,
        bids: DiffLevels,
        asks: DiffLevels,
        exchange_ts: int,
        recv_ts: int,
        scale: tuple[int, int] | None = None,
    ) -> None:
        self.epoch = epoch
        self.symbol = symbol
        self.first_id = first_id
        self.final_id = final_id
        self.prev_final_id = prev_final_id
        self.bids = bids
        self.asks = asks
        self.exchange_ts = exchange_ts
        self.recv_ts = recv_ts
        self.process_ts = 0
        self.scale = scale


class AggTrade(MarketEvent):
    __slots__ = ("trade_id", "price", "qty", "buyer_is_maker", "trade_ts")

    def __init__(
        self,
        epoch: int,
        symbol: str,
        trade_id: int,
        price: str,
        qty: str,
        buyer_is_maker: bool,
        trade_ts: int,
        exchange_ts: int,
        recv_ts: int,
    ) -> None:
        self.epoch = epoch
        self.symbol = symbol
        self.trade_id = trade_id
        self.price = price  # decimal string
        self.qty = qty  # decimal string
        self.buyer_is_maker = buyer_is_maker
        self.trade_ts = trade_ts
        self.exchange_ts = exchange_ts
        self.recv_ts = recv_ts
        self.process_ts = 0


class BookTicker(MarketEvent):
    __slots__ = ("update_id", "bid_price", "bid_qty", "ask_price", "ask_qty")

    def __init__(
        self,
        epoch: int,
        symbol: str,
        update_id: int,
        bid_price: str,
        bid_qty: str,
        ask_price: str,
        ask_qty: str,
        exchange_ts: int,
        recv_ts: int,
    ) -> None:
        self.epoch = epoch
        self.symbol = symbol
        self.update_id = update_id
        self.bid_price = bid_price
        self.bid_qty = bid_qty
        self.ask_price = ask_price
        self.ask_qty = ask_qty
        self.exchange_ts = exchange_ts  # spot bookTicker has no E; the reader passes 0
        self.recv_ts = recv_ts
        self.process_ts = 0


class MarkPrice(MarketEvent):
    __slots__ = ("mark_price", "index_price", "funding_rate", "next_funding_ts")

    def __init__(
        self,
        epoch: int,
        symbol: str,
        mark_price: str,
        index_price: str,
        funding_rate: str,
        next_funding_ts: int,
        exchange_ts: int,
        recv_ts: int,
    ) -> None:
        self.epoch = epoch
        self.symbol = symbol
        self.mark_price = mark_price
        self.index_price = index_price
        self.funding_rate = funding_rate
        self.next_funding_ts = next_funding_ts
        self.exchange_ts = exchange_ts
        self.recv_ts = recv_ts
        self.process_ts = 0


class ForceOrder(MarketEvent):
    __slots__ = ("side", "price", "qty", "status")

    def __init__(
        self, epoch: int, symbol: str, side: str, price: str, qty: str, status: str, exchange_ts: int, recv_ts: int
    ) -> None:
        self.epoch = epoch
        self.symbol = symbol
        self.side = side
        self.price = price
        self.qty = qty
        self.status = status
        self.exchange_ts = exchange_ts
        self.recv_ts = recv_ts
        self.process_ts = 0


class Kline(MarketEvent):
    __slots__ = ("interval", "open_ts", "close_ts", "open", "high", "low", "close", "volume", "closed")

    def __init__(
        self,
        epoch: int,
        symbol: str,
        interval: str,
        open_ts: int,
        close_ts: int,
        open: str,
        high: str,
        low: str,
        close: str,
        volume: str,
        closed: bool,
        exchange_ts: int,
        recv_ts: int,
    ) -> None:
        self.epoch = epoch
        self.symbol = symbol
        self.interval = interval
        self.open_ts = open_ts
        self.close_ts = close_ts
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.closed = closed
        self.exchange_ts = exchange_ts
        self.recv_ts = recv_ts
        self.process_ts = 0


MARKET_EVENTS = (DepthDiff, AggTrade, BookTicker, MarkPrice, ForceOrder, Kline)

# --------------------------------------------------------------------------------------------
# Control events: connection lifecycle, snapshots, timers, operator
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class ControlEvent:
    epoch: int = 0
    recv_ts: int = 0
    process_ts: int = 0
    kind: ClassVar[Literal["control"]] = "control"


@dataclass(slots=True, kw_only=True)
class SessionOpened(ControlEvent):
    """The transport for ``epoch`` is connected (dial finished); timings measured by the runtime."""

    url: str = ""
    close_ms: float = 0.0
    dial_ms: float = 0.0


@dataclass(slots=True, kw_only=True)
class SubscriptionConfirmed(ControlEvent):
    request_id: int = 0
    streams: tuple[str, ...] = ()


@dataclass(slots=True, kw_only=True)
class SubscriptionFailed(ControlEvent):
    request_id: int = 0
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class Disconnected(ControlEvent):
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class WriteFailed(ControlEvent):
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class GapDetected(ControlEvent):
    """A reader saw a sequence break before the engine did (e.g. a stream-level check)."""

    symbol: str = ""
    expected: int = 0
    got: int = 0


@dataclass(slots=True, kw_only=True)
class ServerShutdownNotice(ControlEvent):
    """The venue announced it will close the connection (serverShutdown, 24 h limit)."""

    reason: str = ""


@dataclass(slots=True, kw_only=True)
class MalformedFrame(ControlEvent):
    """A frame (or an event a handler could not use) that was skipped as a data error.
    ``event``/``symbol`` route the repair: a bad depth event of a known symbol resyncs it."""

    reason: str = ""
    sample: str = ""
    event: str = ""
    symbol: str = ""


@dataclass(slots=True, kw_only=True)
class SnapshotReady(ControlEvent):
    """A REST depth snapshot arrived for the request ``request_id`` (raw strings)."""

    symbol: str = ""
    request_id: int = 0
    last_update_id: int = 0
    bids: Levels = field(default_factory=list)
    asks: Levels = field(default_factory=list)
    exchange_ts: int = 0
    fetch_ms: float = 0.0


@dataclass(slots=True, kw_only=True)
class SnapshotFailed(ControlEvent):
    symbol: str = ""
    request_id: int = 0
    reason: str = ""
    retry_after_ms: int = 0


@dataclass(slots=True, kw_only=True)
class SymbolSpec(ControlEvent):
    """Filters from exchangeInfo: fixes the symbol's tick and lot scale."""

    symbol: str = ""
    tick_size: str = ""
    step_size: str = ""
    min_notional: str = "0"


@dataclass(slots=True, kw_only=True)
class ClockOffsetMeasured(ControlEvent):
    """venue_time - local_time in ms, from a REST /time round trip (midpoint method)."""

    offset_ms: float = 0.0
    rtt_ms: float = 0.0


@dataclass(slots=True, kw_only=True)
class SnapshotBudget(ControlEvent):
    """The REST request-weight planner's state (core/runtime/budget.py): snapshot requests queued
    because the venue's per-minute weight is spent, in the order they will go out."""

    waiting: tuple[str, ...] = ()
    used: int = 0  # this minute's used weight as the planner knows it
    cap: int = 0  # what it plans to use at most per minute


@dataclass(slots=True, kw_only=True)
class Resynchronized(ControlEvent):
    """Published by the engine itself into its history; also accepted as input for replay."""

    symbol: str = ""


@dataclass(slots=True, kw_only=True)
class LatencyDegraded(ControlEvent):
    metric: str = ""
    value_ms: float = 0.0


@dataclass(slots=True, kw_only=True)
class MarketQueueOverflow(ControlEvent):
    """The runtime could not enqueue market events: each symbol listed lost at least one."""

    symbols: tuple[str, ...] = ()
    dropped: int = 0


@dataclass(slots=True, kw_only=True)
class OperatorForceResync(ControlEvent):
    """Resync one symbol's book, all books (symbol None), or replace the session."""

    symbol: str | None = None
    replace_session: bool = False


@dataclass(slots=True, kw_only=True)
class OperatorSetMode(ControlEvent):
    mode: str = "halted"
    source: str = "operator"


@dataclass(slots=True, kw_only=True)
class OperatorPause(ControlEvent):
    paused: bool = True


@dataclass(slots=True, kw_only=True)
class OperatorCancelAll(ControlEvent):
    """Cancel every working order (of ``symbol``, or all); ``pause`` also pauses the strategy."""

    symbol: str | None = None
    pause: bool = True


@dataclass(slots=True, kw_only=True)
class OperatorFlatten(ControlEvent):
    """Close ``symbol``'s position (or every position) with a reduce-only market order."""

    symbol: str | None = None
    pause: bool = True


@dataclass(slots=True, kw_only=True)
class ShutdownRequested(ControlEvent):
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class TimerTick(ControlEvent):
    # Filled by the runtime's timer (core/runtime/loop_load.py); -1: not known (replay of an older
    # journal, tests, backtest). ``market_backlog_ns``: age of the oldest market event queued
    # behind this tick; ``loop_busy``: share of the loop's time not spent waiting since the last.
    market_backlog_ns: int = -1
    loop_busy: float = -1.0


@dataclass(slots=True, kw_only=True)
class ProbeResult(ControlEvent):
    """The venue's answer to a liveness probe (``ProbeVenue``): its book's ``lastUpdateId`` now,
    or ``ok=False`` with the reason when the request failed."""

    symbol: str = ""
    request_id: int = 0
    last_update_id: int = 0
    ok: bool = True
    reason: str = ""
    fetch_ms: float = 0.0
    market_backlog_ns: int = -1  # as on TimerTick: age of the oldest market event queued behind it


# --------------------------------------------------------------------------------------------
# Outbound commands: what the engine asks the runtime to do
# --------------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True, kw_only=True)
class Command:
    epoch: int = 0


# What a handler returns: the commands an event causes, often none (an empty tuple).
Commands = Sequence[Command]


@dataclass(slots=True, frozen=True, kw_only=True)
class ReplaceSession(Command):
    """Close the current transport (if any) and open a new one for ``epoch``."""

    cause: str = ""
    delay_ms: float = 0.0


@dataclass(slots=True, frozen=True, kw_only=True)
class CloseConnection(Command):
    reason: str = ""


@dataclass(slots=True, frozen=True, kw_only=True)
class Subscribe(Command):
    streams: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True, kw_only=True)
class Unsubscribe(Command):
    streams: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True, kw_only=True)
class FetchSnapshot(Command):
    symbol: str = ""
    request_id: int = 0
    limit: int = 1000
    delay_ms: float = 0.0


@dataclass(slots=True, frozen=True, kw_only=True)
class ProbeVenue(Command):
    """Ask the venue cheaply (REST depth with a small ``limit``) whether ``symbol``'s book moved
    past ours: a silent stream is dead or the market is quiet. Answered by ``ProbeResult``. A
    command of its own (not a FetchSnapshot) so a REST weight budget can price and route it."""

    symbol: str = ""
    request_id: int = 0
    limit: int = 5
    delay_ms: float = 0.0  # ask this much later (a liveness confirmation after its grace)


@dataclass(slots=True, frozen=True, kw_only=True)
class PlaceOrder(Command):
    symbol: str = ""
    side: Literal["BUY", "SELL"] = "BUY"
    order_type: str = "LIMIT"
    qty: str = "0"
    price: str | None = None
    time_in_force: str | None = "GTC"
    reduce_only: bool = False
    client_order_id: str = ""


@dataclass(slots=True, frozen=True, kw_only=True)
class CancelOrder(Command):
    symbol: str = ""
    client_order_id: str = ""


@dataclass(slots=True, frozen=True, kw_only=True)
class Stop(Command):
    """The engine is done (shutdown or fatal); ``exit_code`` is what the process should return."""

    reason: str = ""
    exit_code: int = 0

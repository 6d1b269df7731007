"""Order lifecycle: client ids, the state machine, and reconciliation of unknown outcomes.

Theory of operation
-------------------
Every order the loop sends gets a fresh client order id ``eb{session}-{seq}`` (hex), where
``session`` comes from a persistent counter (``SqliteStorage.next_session()``, bumped once per
process start) and ``seq`` counts orders within the session: a restart can never reuse an id,
and the manager never sends the same id twice.

States and transitions (the table ``TRANSITIONS`` is the single source of truth)::

    PENDING_NEW --accepted--> NEW | PARTIALLY_FILLED | FILLED | EXPIRED (IOC answered at once)
    PENDING_NEW --rejected--> REJECTED            (venue code + message recorded)
    PENDING_NEW --unknown---> UNKNOWN             (timeout, 5xx, 503 "Unknown error")
    UNKNOWN     --query-----> NEW | PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
    UNKNOWN     --not found-> REJECTED            (never placed: code NOT_FOUND)
    NEW / PARTIALLY_FILLED --fill/update--> PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
    NEW / PARTIALLY_FILLED --cancel unknown--> UNKNOWN (queried like a place)
    FILLED, CANCELED, REJECTED, EXPIRED: terminal

An illegal move raises `IllegalOrderTransition` and leaves the order untouched. Acks that arrive
after the user-data stream already moved the order further (a late REST 200 after the FILLED
execution report) are recognised as stale and ignored, not treated as illegal.

Unknown outcomes are never retried blindly: the manager answers `OrderUnknown` with a
`QueryOrder` and refuses any new order for the same *intent key* (symbol + strategy slot tag,
or symbol + side + type + price + qty when untagged) until the query resolves it. Orders still
PENDING_NEW after ``ack_timeout_ns`` become UNKNOWN on the next timer, and UNKNOWN orders are
queried again every ``query_retry_ns`` until the venue answers.

Every transition is appended to ``journal`` (drained by the runtime into the orders table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.events import CancelOrder, PlaceOrder
from core.records import OrderState, OrderTransition
from core.snapshot import OrderView
from core.trading import events as tev
from core.trading.filters import SymbolFilters
from core.trading.strategy import OrderIntent

__all__ = [
    "CLIENT_ID_PATTERN",
    "IllegalOrderTransition",
    "ManagedOrder",
    "OrderManager",
    "OrderRefused",
    "OrderState",
    "OrderTransition",
    "TERMINAL",
    "TRANSITIONS",
    "WORKING",
]

CLIENT_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


_S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _S.PENDING_NEW: frozenset({_S.NEW, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED, _S.UNKNOWN}),
    _S.UNKNOWN: frozenset({_S.NEW, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED}),
    _S.NEW: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.UNKNOWN}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.UNKNOWN}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}
TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
WORKING = frozenset({_S.PENDING_NEW, _S.NEW, _S.PARTIALLY_FILLED, _S.UNKNOWN})
# How far along each state is; an ack naming an earlier stage than the current one is stale.
_PROGRESS = {_S.PENDING_NEW: 0, _S.UNKNOWN: 0, _S.NEW: 1, _S.PARTIALLY_FILLED: 2}
_VENUE_STATUS = {
    "NEW": _S.NEW,
    "PARTIALLY_FILLED": _S.PARTIALLY_FILLED,
    "FILLED": _S.FILLED,
    "CANCELED": _S.CANCELED,
    "PENDING_CANCEL": _S.NEW,  # spot: unused by Binance today
    "REJECTED": _S.REJECTED,
    "EXPIRED": _S.EXPIRED,
    "EXPIRED_IN_MATCH": _S.EXPIRED,  # spot self-trade prevention
}


class IllegalOrderTransition(RuntimeError):
    pass


class OrderRefused(Exception):
    """The manager will not send this order (the reason says why)."""


@dataclass(slots=True)
class ManagedOrder:
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    qty: int
    price: int | None
    tif: str | None
    reduce_only: bool
    tag: str
    created_ns: int
    state: OrderState = OrderState.PENDING_NEW
    updated_ns: int = 0
    filled_qty: int = 0
    venue_order_id: str = ""
    reject_code: int | str | None = None
    reject_msg: str = ""
    cancel_requested_ns: int = 0
    last_query_ns: int = 0
    fill_ids: set = field(default_factory=set)

    @property
    def remaining(self) -> int:
        return max(0, self.qty - self.filled_qty)

    @property
    def intent_key(self) -> tuple:
        return intent_key(self.symbol, self.side, self.order_type, self.price, self.qty, self.tag)

    @property
    def is_resting_maker(self) -> bool:
        return self.order_type != "MARKET" and self.tif not in ("IOC", "FOK")

    @property
    def signed_remaining(self) -> int:
        return self.remaining if self.side == "BUY" else -self.remaining


def intent_key(symbol: str, side: str, order_type: str, price: int | None, qty: int, tag: str) -> tuple:
    return (symbol, tag) if tag else (symbol, side, order_type, price, qty)


class OrderManager:
    """Owns every order of the session; driven only by the strategy loop."""

    def __init__(
        self,
        session: int,
        *,
        filters: dict[str, SymbolFilters] | None = None,
        start_seq: int = 0,
        ack_timeout_ns: int = 10_000_000_000,
        query_retry_ns: int = 2_000_000_000,
        keep_terminal: int = 500,
    ) -> None:
        if session < 0:
            raise ValueError("session must be >= 0")
        self.session = session
        self.seq = start_seq
        self.filters = filters or {}
        self.ack_timeout_ns = ack_timeout_ns
        self.query_retry_ns = query_retry_ns
        self.keep_terminal = keep_terminal
        self.orders: dict[str, ManagedOrder] = {}
        self.journal: list[OrderTransition] = []
        self._sent_ids: set[str] = set()
        self.counters = {"placed": 0, "stale_acks": 0, "unknown": 0, "refused_unknown": 0, "unknown_ids": 0, "missing_fills": 0}

    # ----------------------------------------------------------------------------- ids

    def next_client_id(self) -> str:
        coid = f"eb{self.session:x}-{self.seq:x}"
        self.seq += 1
        if not CLIENT_ID_PATTERN.match(coid):  # only when session/seq are absurdly large
            raise ValueError(f"client order id {coid!r} breaks Binance's rule")
        return coid

    # ----------------------------------------------------------------------------- commands

    def place(self, intent: OrderIntent, now_ns: int, epoch: int = 0) -> PlaceOrder:
        """Register a new order for ``intent`` and return the command that sends it.

        Raises `OrderRefused` while an order with the same intent key is UNKNOWN.
        """
        key = intent_key(intent.symbol, intent.side, intent.order_type, intent.price, intent.qty, intent.tag)
        for order in self.orders.values():
            if order.state is OrderState.UNKNOWN and order.intent_key == key:
                self.counters["refused_unknown"] += 1
                raise OrderRefused(f"order {order.client_order_id} for the same intent is unknown: reconciling first")
        coid = self.next_client_id()
        if coid in self._sent_ids:  # defensive: would mean a corrupt sequence
            raise OrderRefused(f"client id {coid} was already sent")
        self._sent_ids.add(coid)
        order = ManagedOrder(
            coid, intent.symbol, intent.side, intent.order_type, intent.qty, intent.price, intent.tif,
            intent.reduce_only, intent.tag, created_ns=now_ns, updated_ns=now_ns,
        )
        self.orders[coid] = order
        self._journal(order, "", now_ns, "sent")
        self.counters["placed"] += 1
        f = self.filters.get(intent.symbol)
        qty = f.qty_str(intent.qty) if f else str(intent.qty)
        price = None if intent.price is None else (f.price_str(intent.price) if f else str(intent.price))
        return PlaceOrder(
            epoch=epoch, symbol=intent.symbol, side=intent.side, order_type=intent.order_type, qty=qty,
            price=price, time_in_force=intent.tif, reduce_only=intent.reduce_only, client_order_id=coid,
        )

    def cancel(self, client_order_id: str, now_ns: int, epoch: int = 0) -> CancelOrder | None:
        """A cancel for a working order, once (None if terminal, unknown or already requested)."""
        order = self.orders.get(client_order_id)
        if order is None or order.state not in (OrderState.PENDING_NEW, OrderState.NEW, OrderState.PARTIALLY_FILLED):
            return None
        if order.cancel_requested_ns:
            return None
        order.cancel_requested_ns = now_ns
        return CancelOrder(epoch=epoch, symbol=order.symbol, client_order_id=client_order_id)

    # ----------------------------------------------------------------------------- transitions

    def transition(self, order: ManagedOrder, target: OrderState, now_ns: int, reason: str = "") -> None:
        """Move ``order`` to ``target`` per the table; raises (order untouched) if illegal."""
        allowed = TRANSITIONS[order.state]
        if target not in allowed:
            raise IllegalOrderTransition(f"{order.client_order_id}: {order.state.value} -> {target.value} ({reason})")
        prev = order.state
        order.state = target
        order.updated_ns = now_ns
        self._journal(order, prev.value, now_ns, reason)

    def _journal(self, order: ManagedOrder, prev: str, now_ns: int, reason: str) -> None:
        self.journal.append(
            OrderTransition(
                now_ns, order.client_order_id, order.symbol, order.side, order.order_type, order.qty, order.price,
                order.tif, order.reduce_only, order.tag, prev, order.state.value, order.filled_qty,
                order.venue_order_id, reason,
            )
        )

    def drain_journal(self) -> list[OrderTransition]:
        out, self.journal = self.journal, []
        return out

    # ----------------------------------------------------------------------------- events

    def on_event(self, event) -> list:
        """Apply one venue answer; returns follow-up commands (`QueryOrder`)."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"order manager cannot handle {type(event).__name__}")
        order = self.orders.get(event.client_order_id)
        if order is None:
            self.counters["unknown_ids"] += 1  # not ours, or long forgotten
            return []
        return handler(self, order, event)

    def _on_accepted(self, order: ManagedOrder, event: tev.OrderAccepted) -> list:
        order.venue_order_id = event.venue_order_id or order.venue_order_id
        target = _VENUE_STATUS.get(event.status, OrderState.NEW)
        if order.state in TERMINAL or _PROGRESS.get(order.state, 0) > _PROGRESS.get(target, 9):
            self.counters["stale_acks"] += 1
            return []
        if target is order.state:
            return []
        self.transition(order, target, event.ts_ns, "accepted")
        return []

    def _on_rejected(self, order: ManagedOrder, event: tev.OrderRejected) -> list:
        order.reject_code, order.reject_msg = event.code, event.msg
        self.transition(order, OrderState.REJECTED, event.ts_ns, f"rejected {event.code}: {event.msg}")
        return []

    def _on_unknown(self, order: ManagedOrder, event: tev.OrderUnknown) -> list:
        if order.state in TERMINAL or order.state is OrderState.UNKNOWN:
            return []  # the stream already told us, or a query is already under way
        self.transition(order, OrderState.UNKNOWN, event.ts_ns, f"unknown: {event.reason}")
        self.counters["unknown"] += 1
        order.last_query_ns = event.ts_ns
        return [tev.QueryOrder(epoch=event.epoch, symbol=order.symbol, client_order_id=order.client_order_id)]

    def _on_fill(self, order: ManagedOrder, fill: tev.Fill) -> list:
        if fill.trade_id and fill.trade_id in order.fill_ids:
            return []
        if fill.trade_id:
            order.fill_ids.add(fill.trade_id)
        order.filled_qty = min(order.qty, order.filled_qty + fill.qty)
        target = OrderState.FILLED if order.filled_qty >= order.qty else OrderState.PARTIALLY_FILLED
        if order.state in TERMINAL:
            # A fill after CANCELED/EXPIRED happens only if the venue reported them out of
            # order; the fill is real (the portfolio takes it) but the state stays terminal.
            return []
        self.transition(order, target, fill.ts_ns, f"fill {fill.qty}@{fill.price}")
        return []

    def _on_update(self, order: ManagedOrder, event: tev.OrderUpdate) -> list:
        target = _VENUE_STATUS.get(event.status)
        if target is None:
            return []
        order.venue_order_id = event.venue_order_id or order.venue_order_id
        if event.filled_qty > order.filled_qty:
            order.filled_qty = min(order.qty, event.filled_qty)
        if target is order.state and target is not OrderState.PARTIALLY_FILLED:
            return []
        if order.state in TERMINAL or (target in _PROGRESS and _PROGRESS.get(order.state, 0) > _PROGRESS[target]):
            self.counters["stale_acks"] += 1
            return []
        if target is OrderState.REJECTED:
            order.reject_code, order.reject_msg = "STREAM", event.reason
        self.transition(order, target, event.ts_ns, f"update {event.status} {event.reason}".strip())
        return []

    def _on_query(self, order: ManagedOrder, result: tev.OrderQueryResult) -> list:
        if order.state is not OrderState.UNKNOWN:
            return []
        if result.error:
            return []  # still unknown: the timer asks again
        if not result.found:
            order.reject_code, order.reject_msg = "NOT_FOUND", "venue has no such order: never placed"
            self.transition(order, OrderState.REJECTED, result.ts_ns, "reconciled: not found")
            return []
        target = _VENUE_STATUS.get(result.status, OrderState.NEW)
        order.venue_order_id = result.venue_order_id or order.venue_order_id
        if result.filled_qty > order.filled_qty:
            # The venue executed more than our fills say; the fills are still to come on the
            # stream (or must be fetched with myTrades/userTrades by the runtime).
            self.counters["missing_fills"] += 1
            order.filled_qty = min(order.qty, result.filled_qty)
        self.transition(order, target, result.ts_ns, f"reconciled: {result.status}")
        return []

    def _on_cancel_rejected(self, order: ManagedOrder, event: tev.CancelRejected) -> list:
        order.cancel_requested_ns = 0  # usually already filled/cancelled: the stream will say
        return []

    def _on_cancel_unknown(self, order: ManagedOrder, event: tev.CancelUnknown) -> list:
        if order.state not in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
            return []
        self.transition(order, OrderState.UNKNOWN, event.ts_ns, f"cancel unknown: {event.reason}")
        self.counters["unknown"] += 1
        order.last_query_ns = event.ts_ns
        return [tev.QueryOrder(epoch=event.epoch, symbol=order.symbol, client_order_id=order.client_order_id)]

    # ----------------------------------------------------------------------------- timer

    def on_timer(self, now_ns: int, epoch: int = 0) -> list:
        """PENDING_NEW past the ack timeout -> UNKNOWN + query; re-query unresolved UNKNOWNs."""
        commands = []
        for order in list(self.orders.values()):
            if order.state is OrderState.PENDING_NEW and now_ns - order.created_ns >= self.ack_timeout_ns:
                self.transition(order, OrderState.UNKNOWN, now_ns, "ack timeout")
                self.counters["unknown"] += 1
                order.last_query_ns = now_ns
                commands.append(tev.QueryOrder(epoch=epoch, symbol=order.symbol, client_order_id=order.client_order_id))
            elif order.state is OrderState.UNKNOWN and now_ns - order.last_query_ns >= self.query_retry_ns:
                order.last_query_ns = now_ns
                commands.append(tev.QueryOrder(epoch=epoch, symbol=order.symbol, client_order_id=order.client_order_id))
        self._forget_old_terminal()
        return commands

    def _forget_old_terminal(self) -> None:
        terminal = [o for o in self.orders.values() if o.state in TERMINAL]
        excess = len(terminal) - self.keep_terminal
        if excess > 0:
            for order in sorted(terminal, key=lambda o: o.updated_ns)[:excess]:
                del self.orders[order.client_order_id]

    # ----------------------------------------------------------------------------- queries

    def working(self, symbol: str | None = None) -> list[ManagedOrder]:
        """Orders that may still execute (incl. PENDING_NEW and UNKNOWN), oldest first."""
        return [o for o in self.orders.values() if o.state in WORKING and (symbol is None or o.symbol == symbol)]

    def by_tag(self, symbol: str, tag: str) -> list[ManagedOrder]:
        return [o for o in self.working(symbol) if o.tag == tag]

    def adopt_open_orders(self, rows, now_ns: int, epoch: int = 0) -> list:
        """Adopt the open orders of a previous run (`Storage.load_open_orders()` rows).

        Their state after the restart is unknown by definition: each becomes UNKNOWN (journaled)
        and a `QueryOrder` is returned for it, so nothing with the same intent is sent before
        the venue has said what became of it.
        """
        commands = []
        for row in rows:
            if row.client_order_id in self.orders:
                continue
            order = ManagedOrder(
                row.client_order_id, row.symbol, row.side, row.order_type, row.qty, row.price, row.tif,
                row.reduce_only, row.tag, created_ns=row.ts_ns, updated_ns=row.ts_ns,
                state=OrderState(row.state), filled_qty=row.filled_qty, venue_order_id=row.venue_order_id,
            )
            self.orders[order.client_order_id] = order
            self._sent_ids.add(order.client_order_id)
            if order.state is not OrderState.UNKNOWN:
                self.transition(order, OrderState.UNKNOWN, now_ns, "adopted after restart")
            order.last_query_ns = now_ns
            commands.append(tev.QueryOrder(epoch=epoch, symbol=order.symbol, client_order_id=order.client_order_id))
        return commands

    def views(self) -> tuple[OrderView, ...]:
        out = []
        for o in sorted(self.orders.values(), key=lambda o: o.created_ns):
            f = self.filters.get(o.symbol)
            price = "" if o.price is None else (f.price_str(o.price) if f else str(o.price))
            out.append(
                OrderView(
                    o.client_order_id, o.symbol, o.side, o.order_type, price or "MKT",
                    f.qty_str(o.qty) if f else str(o.qty), f.qty_str(o.filled_qty) if f else str(o.filled_qty),
                    o.state.value, o.updated_ns,
                )
            )
        return tuple(out)


_HANDLERS = {
    tev.OrderAccepted: OrderManager._on_accepted,
    tev.OrderRejected: OrderManager._on_rejected,
    tev.OrderUnknown: OrderManager._on_unknown,
    tev.Fill: OrderManager._on_fill,
    tev.OrderUpdate: OrderManager._on_update,
    tev.OrderQueryResult: OrderManager._on_query,
    tev.CancelRejected: OrderManager._on_cancel_rejected,
    tev.CancelUnknown: OrderManager._on_cancel_unknown,
}

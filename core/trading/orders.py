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
    UNKNOWN     --not found-> UNKNOWN             (queried again with backoff, inside the window)
    UNKNOWN     --not found-> REJECTED            (after the window: never placed, code NOT_FOUND)
    REJECTED(NOT_FOUND) --late venue event--> NEW | PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
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
queried again with backoff (``query_retry_ns`` doubling up to ``query_backoff_max_ns``) until
the venue answers.

"Not found" is not final at once: Binance can process a request after answering 5xx, so an
UNKNOWN order the venue does not know yet stays UNKNOWN (and counts as working, so the gates
and the intent block still see it) until ``unknown_window_ns`` has passed since the request was
signed (``created_ns``; the venue refuses a request older than its ``recvWindow``, so the
window only needs to exceed that plus clock skew). Only then is it REJECTED with code
NOT_FOUND. Even then a later venue event for that client id (stream update, fill, query) is
never dropped as stale: the order comes back to the state the venue reports (journaled with
reason "late venue event") and counts as working again; ``counters["resolved_late"]`` counts
these. NOT_FOUND orders are never forgotten, so such a late event always finds its order.

Every transition is appended to ``journal`` (drained by the runtime into the orders table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from epochbot.model import trade_events as tev
from epochbot.model.events import CancelOrder, Command, PlaceOrder
from epochbot.model.records import OrderState, OrderTransition
from epochbot.model.trade_events import CLIENT_ID_PATTERN
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.strategy import OrderIntent
from epochbot.views.snapshot import OrderView

if TYPE_CHECKING:
    from epochbot.trading.adoption import Adoption

IntentKey = tuple[object, ...]  # (symbol, tag), or (symbol, side, type, price, qty) when untagged

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


_S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _S.PENDING_NEW: frozenset(
        {_S.NEW, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED, _S.UNKNOWN}
    ),
    _S.UNKNOWN: frozenset({_S.NEW, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED}),
    _S.NEW: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.UNKNOWN}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED, _S.UNKNOWN}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}
TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
_LATE_TARGETS = frozenset({_S.NEW, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED})
WORKING = frozenset({_S.PENDING_NEW, _S.NEW, _S.PARTIALLY_FILLED, _S.UNKNOWN})
# How far along each state is; an ack naming an earlier stage than the current one is stale.
_CANCELLABLE = frozenset({_S.NEW, _S.PARTIALLY_FILLED})
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
    cancel_requested_ns: int = 0  # a cancel is in flight (0: none)
    cancel_wanted: bool = False  # we asked to cancel it: it must not stay open when it turns up
    cancel_refused_ns: int = 0  # when the venue last refused our cancel (0: it has not)
    last_query_ns: int = 0
    queries: int = 0  # unanswered / not-found queries since it became UNKNOWN (backoff exponent)
    booked_qty: int = 0  # lots of the fills booked for it (vs. filled_qty: what the venue reports)
    fill_ids: set[str] = field(default_factory=set)

    @property
    def remaining(self) -> int:
        return max(0, self.qty - self.filled_qty)

    @property
    def intent_key(self) -> IntentKey:
        return intent_key(self.symbol, self.side, self.order_type, self.price, self.qty, self.tag)

    @property
    def is_resting_maker(self) -> bool:
        return self.order_type != "MARKET" and self.tif not in ("IOC", "FOK")

    @property
    def signed_remaining(self) -> int:
        return self.remaining if self.side == "BUY" else -self.remaining


def intent_key(symbol: str, side: str, order_type: str, price: int | None, qty: int, tag: str) -> IntentKey:
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
        unknown_window_ns: int = 15_000_000_000,
        query_backoff_max_ns: int = 8_000_000_000,
        cancel_retry_ns: int = 1_000_000_000,
    ) -> None:
        if session < 0:
            raise ValueError("session must be >= 0")
        self.session = session
        self.seq = start_seq
        self.filters = filters or {}
        self.ack_timeout_ns = ack_timeout_ns
        self.query_retry_ns = query_retry_ns
        self.cancel_retry_ns = cancel_retry_ns
        self.keep_terminal = keep_terminal
        self.unknown_window_ns = unknown_window_ns
        self.query_backoff_max_ns = query_backoff_max_ns
        self.orders: dict[str, ManagedOrder] = {}
        self.journal: list[OrderTransition] = []
        self._sent_ids: set[str] = set()
        self.counters = {
            "placed": 0,
            "stale_acks": 0,
            "unknown": 0,
            "refused_unknown": 0,
            "unknown_ids": 0,
            "missing_fills": 0,
            "not_found_pending": 0,
            "resolved_late": 0,
            "bad_venue_events": 0,
            "cancels_reissued": 0,
        }

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
            coid,
            intent.symbol,
            intent.side,
            intent.order_type,
            intent.qty,
            intent.price,
            intent.tif,
            intent.reduce_only,
            intent.tag,
            created_ns=now_ns,
            updated_ns=now_ns,
        )
        self.orders[coid] = order
        self._journal(order, "", now_ns, "sent")
        self.counters["placed"] += 1
        f = self.filters.get(intent.symbol)
        qty = f.qty_str(intent.qty) if f else str(intent.qty)
        price = None if intent.price is None else (f.price_str(intent.price) if f else str(intent.price))
        return PlaceOrder(
            epoch=epoch,
            symbol=intent.symbol,
            side=intent.side,
            order_type=intent.order_type,
            qty=qty,
            price=price,
            time_in_force=intent.tif,
            reduce_only=intent.reduce_only,
            client_order_id=coid,
        )

    def cancel(self, client_order_id: str, now_ns: int, epoch: int = 0) -> CancelOrder | None:
        """A cancel for a working order, once (None if terminal, unknown or already requested).

        The wish outlives the request: an order whose outcome is UNKNOWN cannot be cancelled
        by client id yet, and a cancel can overtake its own order (the venue answers "unknown
        order" while the order is still on its way). Either way, when the venue later reports
        the order open, `on_event` sends the cancel again."""
        order = self.orders.get(client_order_id)
        if order is None:
            return None
        if order.state is OrderState.UNKNOWN:
            order.cancel_wanted = True
            return None
        if order.state not in (OrderState.PENDING_NEW, OrderState.NEW, OrderState.PARTIALLY_FILLED):
            return None
        order.cancel_wanted = True
        if order.cancel_requested_ns:
            return None
        if order.cancel_refused_ns and now_ns - order.cancel_refused_ns < self.cancel_retry_ns:
            return None  # refused a moment ago: the timer (or the order turning up) sends it again
        order.cancel_requested_ns = now_ns
        return CancelOrder(epoch=epoch, symbol=order.symbol, client_order_id=client_order_id)

    # ----------------------------------------------------------------------------- transitions

    def transition(self, order: ManagedOrder, target: OrderState, now_ns: int, reason: str = "") -> None:
        """Move ``order`` to ``target`` per the table; raises (order untouched) if illegal.

        The one exception: a REJECTED order whose rejection was only "not found after an
        unknown outcome" moves to whatever a late venue event says (see the module doc)."""
        allowed = TRANSITIONS[order.state]
        if self._late(order) and target in _LATE_TARGETS:
            order.reject_code, order.reject_msg = None, ""
            self.counters["resolved_late"] += 1
            reason = f"late venue event: {reason}"
        elif target not in allowed:
            raise IllegalOrderTransition(f"{order.client_order_id}: {order.state.value} -> {target.value} ({reason})")
        prev = order.state
        order.state = target
        order.updated_ns = now_ns
        self._journal(order, prev.value, now_ns, reason)

    def _journal(self, order: ManagedOrder, prev: str, now_ns: int, reason: str) -> None:
        self.journal.append(
            OrderTransition(
                now_ns,
                order.client_order_id,
                order.symbol,
                order.side,
                order.order_type,
                order.qty,
                order.price,
                order.tif,
                order.reduce_only,
                order.tag,
                prev,
                order.state.value,
                order.filled_qty,
                order.venue_order_id,
                reason,
            )
        )

    @staticmethod
    def _late(order: ManagedOrder) -> bool:
        return order.state is OrderState.REJECTED and order.reject_code == "NOT_FOUND"

    def drain_journal(self) -> list[OrderTransition]:
        out, self.journal = self.journal, []
        return out

    # ----------------------------------------------------------------------------- events

    def on_event(self, event: Any) -> list[Command]:
        """Apply one venue answer (an order event of `_HANDLERS`); returns follow-up commands (`QueryOrder`)."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"order manager cannot handle {type(event).__name__}")
        order = self.orders.get(event.client_order_id)
        if order is None:
            self.counters["unknown_ids"] += 1  # not ours, or long forgotten
            return []
        before = order.state
        commands = handler(self, order, event)
        if (
            order.cancel_wanted
            and order.state in _CANCELLABLE
            and before not in _CANCELLABLE
            and not order.cancel_requested_ns
        ):
            # Our cancel overtook the order (rejected as unknown while it was in flight, or its
            # outcome was unknown): now the venue has it open, cancel it again.
            commands = [*commands, self._cancel_again(order, event.ts_ns, getattr(event, "epoch", 0))]
        return commands

    def _cancel_again(self, order: ManagedOrder, now_ns: int, epoch: int) -> CancelOrder:
        self.counters["cancels_reissued"] += 1
        order.cancel_requested_ns, order.cancel_refused_ns = now_ns, 0
        return CancelOrder(epoch=epoch, symbol=order.symbol, client_order_id=order.client_order_id)

    def _on_accepted(self, order: ManagedOrder, event: tev.OrderAccepted) -> list[Command]:
        order.venue_order_id = event.venue_order_id or order.venue_order_id
        target = _VENUE_STATUS.get(event.status, OrderState.NEW)
        if self._late(order) and target in _LATE_TARGETS:
            self.transition(order, target, event.ts_ns, "accepted")
            return []
        if order.state in TERMINAL or _PROGRESS.get(order.state, 0) > _PROGRESS.get(target, 9):
            self.counters["stale_acks"] += 1
            return []
        if target is order.state:
            return []
        self.transition(order, target, event.ts_ns, "accepted")
        return []

    def _on_rejected(self, order: ManagedOrder, event: tev.OrderRejected) -> list[Command]:
        order.reject_code, order.reject_msg = event.code, event.msg
        self.transition(order, OrderState.REJECTED, event.ts_ns, f"rejected {event.code}: {event.msg}")
        return []

    def _on_unknown(self, order: ManagedOrder, event: tev.OrderUnknown) -> list[Command]:
        if order.state in TERMINAL or order.state is OrderState.UNKNOWN:
            return []  # the stream already told us, or a query is already under way
        self.transition(order, OrderState.UNKNOWN, event.ts_ns, f"unknown: {event.reason}")
        self.counters["unknown"] += 1
        order.last_query_ns = event.ts_ns
        order.queries = 0
        return [tev.QueryOrder(epoch=event.epoch, symbol=order.symbol, client_order_id=order.client_order_id)]

    def _on_fill(self, order: ManagedOrder, fill: tev.Fill) -> list[Command]:
        if fill.trade_id and fill.trade_id in order.fill_ids:
            return []
        if fill.trade_id:
            order.fill_ids.add(fill.trade_id)
        order.booked_qty += fill.qty
        order.filled_qty = min(order.qty, max(order.filled_qty, order.booked_qty))
        target = OrderState.FILLED if order.filled_qty >= order.qty else OrderState.PARTIALLY_FILLED
        if order.state in TERMINAL and not self._late(order):
            # A fill after CANCELED/EXPIRED happens only if the venue reported them out of
            # order; the fill is real (the portfolio takes it) but the state stays terminal.
            return []
        self.transition(order, target, fill.ts_ns, f"fill {fill.qty}@{fill.price}")
        return []

    def _on_update(self, order: ManagedOrder, event: tev.OrderUpdate) -> list[Command]:
        target = _VENUE_STATUS.get(event.status)
        if target is None:
            return []
        order.venue_order_id = event.venue_order_id or order.venue_order_id
        if event.filled_qty > order.filled_qty:
            order.filled_qty = min(order.qty, event.filled_qty)
        if target is order.state and target is not OrderState.PARTIALLY_FILLED:
            return []
        if self._late(order) and target in _LATE_TARGETS:
            self.transition(order, target, event.ts_ns, f"update {event.status} {event.reason}".strip())
            return self._fetch_if_missing(order, event.filled_qty, event.epoch)
        if order.state in TERMINAL or (target in _PROGRESS and _PROGRESS.get(order.state, 0) > _PROGRESS[target]):
            self.counters["stale_acks"] += 1
            return []
        if target is OrderState.REJECTED:
            order.reject_code, order.reject_msg = "STREAM", event.reason
        self.transition(order, target, event.ts_ns, f"update {event.status} {event.reason}".strip())
        if target in TERMINAL:  # its final word: every execution it reports must be booked
            return self._fetch_if_missing(order, event.filled_qty, event.epoch)
        return []

    def _fetch_if_missing(self, order: ManagedOrder, venue_filled: int, epoch: int = 0) -> list[Command]:
        """The venue reports more executed than the fills we booked (a lost or unusable
        execution report): fetch the order's executions from the trade history."""
        if venue_filled <= order.booked_qty or not order.venue_order_id:
            return []
        self.counters["missing_fills"] += 1
        return [
            tev.FetchOrderTrades(
                epoch=epoch,
                symbol=order.symbol,
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                since_ms=max(0, order.created_ns // 1_000_000 - 60_000),
            )
        ]

    def _on_query(self, order: ManagedOrder, result: tev.OrderQueryResult) -> list[Command]:
        late = self._late(order) and result.found and not result.error
        if order.state is not OrderState.UNKNOWN and not late:
            if result.found and not result.error:
                # Settled meanwhile (a late ack or stream event), but the query may still show
                # executions whose reports were lost.
                order.venue_order_id = order.venue_order_id or result.venue_order_id
                return self._fetch_if_missing(order, result.filled_qty, result.epoch)
            return []
        if result.error:
            order.queries += 1
            return []  # still unknown: the timer asks again (with backoff)
        if not result.found:
            waited = result.ts_ns - order.created_ns
            if waited < self.unknown_window_ns:
                # Binance may still process the request (a 5xx is not a "no"): ask again later.
                order.queries += 1
                self.counters["not_found_pending"] += 1
                return []
            order.reject_code, order.reject_msg = "NOT_FOUND", "venue has no such order: never placed"
            self.transition(
                order, OrderState.REJECTED, result.ts_ns, f"reconciled: not found after {waited // 1_000_000} ms"
            )
            return []
        target = _VENUE_STATUS.get(result.status, OrderState.NEW)
        if late and target not in _LATE_TARGETS:
            return []
        order.venue_order_id = result.venue_order_id or order.venue_order_id
        commands = self._fetch_if_missing(order, result.filled_qty, result.epoch)
        if result.filled_qty > order.filled_qty:
            order.filled_qty = min(order.qty, result.filled_qty)
        if target is order.state:
            return commands
        self.transition(order, target, result.ts_ns, f"reconciled: {result.status}")
        return commands

    def _on_data_error(self, order: ManagedOrder, event: tev.VenueDataError) -> list[Command]:
        """A bad venue message about a working order: what it said is unknown; ask the venue."""
        self.counters["bad_venue_events"] += 1
        if order.state in (OrderState.FILLED, OrderState.CANCELED, OrderState.EXPIRED):
            # Settled, but the lost message may have carried an execution: the query's answer
            # fetches any execution we never booked (see _on_query).
            order.last_query_ns = event.ts_ns
            return [tev.QueryOrder(epoch=event.epoch, symbol=order.symbol, client_order_id=order.client_order_id)]
        if order.state not in (OrderState.PENDING_NEW, OrderState.NEW, OrderState.PARTIALLY_FILLED):
            return []  # UNKNOWN is being queried already; a rejected order never executed
        self.transition(order, OrderState.UNKNOWN, event.ts_ns, f"bad venue event: {event.reason[:200]}")
        self.counters["unknown"] += 1
        order.last_query_ns = event.ts_ns
        order.queries = 0
        return [tev.QueryOrder(epoch=event.epoch, symbol=order.symbol, client_order_id=order.client_order_id)]

    def _on_cancel_rejected(self, order: ManagedOrder, event: tev.CancelRejected) -> list[Command]:
        # Usually already filled/cancelled (the stream will say), or the cancel overtook the
        # order itself: `cancel_wanted` stays, so on_event cancels again when it turns up open,
        # and the timer retries (once per ``cancel_retry_ns``) while the venue shows it open.
        order.cancel_requested_ns = 0
        order.cancel_refused_ns = event.ts_ns or 1
        return []

    def _on_cancel_unknown(self, order: ManagedOrder, event: tev.CancelUnknown) -> list[Command]:
        if order.state not in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
            return []
        self.transition(order, OrderState.UNKNOWN, event.ts_ns, f"cancel unknown: {event.reason}")
        self.counters["unknown"] += 1
        order.last_query_ns = event.ts_ns
        order.queries = 0
        return [tev.QueryOrder(epoch=event.epoch, symbol=order.symbol, client_order_id=order.client_order_id)]

    # ----------------------------------------------------------------------------- timer

    def on_timer(self, now_ns: int, epoch: int = 0) -> list[Command]:
        """PENDING_NEW past the ack timeout -> UNKNOWN + query; re-query unresolved UNKNOWNs;
        send again a cancel the venue refused while the order still shows open (once per
        ``cancel_retry_ns``: a refused cancel is never resent on every event)."""
        commands: list[Command] = []
        for order in list(self.orders.values()):
            if order.state is OrderState.PENDING_NEW and now_ns - order.created_ns >= self.ack_timeout_ns:
                self.transition(order, OrderState.UNKNOWN, now_ns, "ack timeout")
                self.counters["unknown"] += 1
                order.last_query_ns = now_ns
                commands.append(tev.QueryOrder(epoch=epoch, symbol=order.symbol, client_order_id=order.client_order_id))
            elif order.state is OrderState.UNKNOWN and now_ns - order.last_query_ns >= self._query_delay(order):
                order.last_query_ns = now_ns
                commands.append(tev.QueryOrder(epoch=epoch, symbol=order.symbol, client_order_id=order.client_order_id))
            elif (
                order.cancel_wanted
                and order.cancel_refused_ns
                and not order.cancel_requested_ns
                and order.state in _CANCELLABLE
                and now_ns - order.cancel_refused_ns >= self.cancel_retry_ns
            ):
                commands.append(self._cancel_again(order, now_ns, epoch))
        self._forget_old_terminal()
        return commands

    def _query_delay(self, order: ManagedOrder) -> int:
        """Backoff between queries of one UNKNOWN order: doubling, capped."""
        return min(self.query_backoff_max_ns, self.query_retry_ns << min(max(0, order.queries - 1), 16))

    def _forget_old_terminal(self) -> None:
        # NOT_FOUND rejections are kept: a late venue event must still find its order.
        terminal = [o for o in self.orders.values() if o.state in TERMINAL and not self._late(o)]
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

    def adopt_open_orders(self, rows: Iterable[OrderTransition], now_ns: int, epoch: int = 0) -> list[Command]:
        """Adopt the open orders of a previous run (`Storage.load_open_orders()` rows).

        Their state after the restart is unknown by definition: each becomes UNKNOWN (journaled)
        and a `QueryOrder` is returned for it, so nothing with the same intent is sent before
        the venue has said what became of it.
        """
        commands: list[Command] = []
        for row in rows:
            if row.client_order_id in self.orders:
                continue
            order = ManagedOrder(
                row.client_order_id,
                row.symbol,
                row.side,
                row.order_type,
                row.qty,
                row.price,
                row.tif,
                row.reduce_only,
                row.tag,
                created_ns=row.ts_ns,
                updated_ns=row.ts_ns,
                state=OrderState(row.state),
                filled_qty=row.filled_qty,
                venue_order_id=row.venue_order_id,
            )
            self.orders[order.client_order_id] = order
            self._sent_ids.add(order.client_order_id)
            if order.state is not OrderState.UNKNOWN:
                self.transition(order, OrderState.UNKNOWN, now_ns, "adopted after restart")
            order.last_query_ns = now_ns
            commands.append(tev.QueryOrder(epoch=epoch, symbol=order.symbol, client_order_id=order.client_order_id))
        return commands

    def adopt_venue_order(self, a: Adoption, now_ns: int, epoch: int = 0) -> list[Command]:
        """Take over an order of ours that the venue has and the journal does not know (an
        `epochbot.trading.adoption.Adoption`). It is journaled with the venue's state; an open one
        becomes a working order of this session (untagged: no strategy slot owns it) and, for
        the "cancel" action, a `CancelOrder` for it is returned."""
        if a.client_order_id in self.orders:
            return []
        f = self.filters.get(a.symbol)
        codec = f.codec if f else None

        def units(text: str, kind: str) -> int:
            if codec is None:
                raise ValueError(f"no filters for {a.symbol}")
            return (codec.qty if kind == "qty" else codec.price)[text]

        state = _VENUE_STATUS.get(a.status, OrderState.NEW)
        price = units(a.price, "price") if a.price else 0
        order = ManagedOrder(
            a.client_order_id,
            a.symbol,
            a.side,
            a.order_type,
            units(a.qty, "qty"),
            price or None,
            a.tif or None,
            a.reduce_only,
            "",
            created_ns=now_ns,
            updated_ns=now_ns,
            state=state,
            filled_qty=units(a.executed, "qty"),
            venue_order_id=a.venue_order_id,
        )
        self.orders[order.client_order_id] = order
        self._sent_ids.add(order.client_order_id)
        self._journal(order, "", now_ns, f"venue order unknown to the journal: {a.action}")
        if a.action == "cancel" and state in (OrderState.NEW, OrderState.PARTIALLY_FILLED):
            command = self.cancel(order.client_order_id, now_ns, epoch)
            return [command] if command is not None else []
        return []

    def views(self) -> tuple[OrderView, ...]:
        out = []
        for o in sorted(self.orders.values(), key=lambda o: o.created_ns):
            f = self.filters.get(o.symbol)
            price = "" if o.price is None else (f.price_str(o.price) if f else str(o.price))
            out.append(
                OrderView(
                    o.client_order_id,
                    o.symbol,
                    o.side,
                    o.order_type,
                    price or "MKT",
                    f.qty_str(o.qty) if f else str(o.qty),
                    f.qty_str(o.filled_qty) if f else str(o.filled_qty),
                    o.state.value,
                    o.updated_ns,
                )
            )
        return tuple(out)


_HANDLERS: dict[type[tev.TradingEvent], Callable[[OrderManager, ManagedOrder, Any], list[Command]]] = {
    tev.OrderAccepted: OrderManager._on_accepted,
    tev.OrderRejected: OrderManager._on_rejected,
    tev.OrderUnknown: OrderManager._on_unknown,
    tev.Fill: OrderManager._on_fill,
    tev.OrderUpdate: OrderManager._on_update,
    tev.OrderQueryResult: OrderManager._on_query,
    tev.CancelRejected: OrderManager._on_cancel_rejected,
    tev.CancelUnknown: OrderManager._on_cancel_unknown,
    tev.VenueDataError: OrderManager._on_data_error,
}

"""Order lifecycle: client ids, the transition table, unknown outcomes and reconciliation."""

from __future__ import annotations

import pytest

from epochbot.model import trade_events as tev
from epochbot.model.events import CancelOrder, PlaceOrder
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.orders import (
    CLIENT_ID_PATTERN,
    TRANSITIONS,
    IllegalOrderTransition,
    OrderManager,
    OrderRefused,
    OrderState,
)
from epochbot.trading.strategy import OrderIntent

BTC = SymbolFilters.from_strings("BTCUSDT", "0.01", "0.001", min_qty="0.001", min_notional="5")
BID = OrderIntent("BTCUSDT", "BUY", 10, 2_000_000, tag="bid")


def manager(session: int = 1, **kw) -> OrderManager:
    return OrderManager(session, filters={"BTCUSDT": BTC}, **kw)


def test_client_ids_are_unique_sequential_and_match_binance_rule():
    om = manager(session=0xABC)

    commands = [om.place(OrderIntent("BTCUSDT", "BUY", 1, 100 + i), now_ns=i) for i in range(300)]

    ids = [c.client_order_id for c in commands]
    assert len(set(ids)) == 300
    assert ids[0] == "ebabc-0" and ids[255] == "ebabc-ff"
    assert all(CLIENT_ID_PATTERN.match(i) and len(i) <= 36 for i in ids)


def test_a_later_session_never_reuses_an_earlier_sessions_ids():
    first = {manager(session=7).place(BID, 0).client_order_id for _ in range(1)}
    earlier = manager(session=7)
    earlier_ids = {earlier.place(OrderIntent("BTCUSDT", "BUY", 1, 100 + i), 0).client_order_id for i in range(50)}

    later = manager(session=8)
    later_ids = {later.place(OrderIntent("BTCUSDT", "BUY", 1, 100 + i), 0).client_order_id for i in range(50)}

    assert first <= earlier_ids
    assert not (earlier_ids & later_ids)


def test_place_returns_a_command_with_exact_decimal_strings():
    om = manager()

    command = om.place(BID, now_ns=5)

    assert isinstance(command, PlaceOrder)
    assert (command.symbol, command.side, command.qty, command.price, command.time_in_force) == (
        "BTCUSDT",
        "BUY",
        "0.01",
        "20000",
        "GTC",
    )
    assert om.orders[command.client_order_id].state is OrderState.PENDING_NEW


@pytest.mark.parametrize("source", list(OrderState))
@pytest.mark.parametrize("target", list(OrderState))
def test_transition_table_is_enforced_and_illegal_moves_leave_the_order_untouched(source, target):
    om = manager()
    coid = om.place(BID, 0).client_order_id
    order = om.orders[coid]
    order.state = source
    journal_before = len(om.journal)

    if target in TRANSITIONS[source]:
        om.transition(order, target, 1, "test")
        assert order.state is target
    else:
        with pytest.raises(IllegalOrderTransition):
            om.transition(order, target, 1, "test")
        assert order.state is source
        assert len(om.journal) == journal_before


def test_accept_then_fills_walk_new_partially_filled_filled():
    om = manager()
    coid = om.place(BID, 0).client_order_id

    om.on_event(tev.OrderAccepted(client_order_id=coid, venue_order_id="42", ts_ns=1))
    om.on_event(
        tev.Fill(client_order_id=coid, symbol="BTCUSDT", side="BUY", qty=4, price=2_000_000, trade_id="t1", ts_ns=2)
    )
    states = [om.orders[coid].state]
    om.on_event(
        tev.Fill(client_order_id=coid, symbol="BTCUSDT", side="BUY", qty=6, price=2_000_000, trade_id="t2", ts_ns=3)
    )

    assert states == [OrderState.PARTIALLY_FILLED]
    order = om.orders[coid]
    assert order.state is OrderState.FILLED and order.filled_qty == 10 and order.venue_order_id == "42"


def test_rejection_records_the_venue_code_and_message():
    om = manager()
    coid = om.place(BID, 0).client_order_id

    om.on_event(tev.OrderRejected(client_order_id=coid, code=-2010, msg="Account has insufficient balance", ts_ns=1))

    order = om.orders[coid]
    assert order.state is OrderState.REJECTED
    assert (order.reject_code, order.reject_msg) == (-2010, "Account has insufficient balance")


def test_unknown_outcome_asks_the_venue_and_blocks_a_retry_of_the_same_intent():
    om = manager()
    coid = om.place(BID, 0).client_order_id

    commands = om.on_event(tev.OrderUnknown(client_order_id=coid, reason="HTTP 503 Unknown error", ts_ns=1))

    assert commands == [tev.QueryOrder(symbol="BTCUSDT", client_order_id=coid)]
    assert om.orders[coid].state is OrderState.UNKNOWN
    with pytest.raises(OrderRefused, match="reconciling"):
        om.place(BID, 2)
    assert om.counters["placed"] == 1


def test_unknown_then_not_found_after_the_window_is_treated_as_not_placed_and_a_retry_gets_a_fresh_id():
    om = manager(unknown_window_ns=1_000)
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="timeout", ts_ns=1))

    om.on_event(tev.OrderQueryResult(client_order_id=coid, found=False, ts_ns=1_000))
    retry = om.place(BID, 1_001)

    assert om.orders[coid].state is OrderState.REJECTED
    assert om.orders[coid].reject_code == "NOT_FOUND"
    assert retry.client_order_id != coid


def test_unknown_then_found_filled_resolves_without_sending_a_second_order():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="timeout", ts_ns=1))

    om.on_event(tev.OrderQueryResult(client_order_id=coid, found=True, status="FILLED", filled_qty=10, ts_ns=2))

    assert om.orders[coid].state is OrderState.FILLED
    assert om.counters["placed"] == 1
    assert [t.state for t in om.journal] == ["PENDING_NEW", "UNKNOWN", "FILLED"]


def test_a_failed_query_keeps_the_order_unknown_and_the_timer_asks_again():
    om = manager(query_retry_ns=1_000)
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="timeout", ts_ns=10))

    om.on_event(tev.OrderQueryResult(client_order_id=coid, error="HTTP 502", ts_ns=20))
    too_soon = om.on_timer(500)
    again = om.on_timer(1_010)

    assert om.orders[coid].state is OrderState.UNKNOWN
    assert too_soon == [] and again == [tev.QueryOrder(symbol="BTCUSDT", client_order_id=coid)]


def test_pending_new_past_the_ack_timeout_becomes_unknown_and_is_queried():
    om = manager(ack_timeout_ns=1_000)
    coid = om.place(BID, 0).client_order_id

    early = om.on_timer(999)
    late = om.on_timer(1_000)

    assert early == []
    assert late == [tev.QueryOrder(symbol="BTCUSDT", client_order_id=coid)]
    assert om.orders[coid].state is OrderState.UNKNOWN


def test_a_late_rest_ack_after_the_stream_reported_the_fill_is_ignored_as_stale():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(
        tev.Fill(client_order_id=coid, symbol="BTCUSDT", side="BUY", qty=10, price=2_000_000, trade_id="t1", ts_ns=1)
    )

    om.on_event(tev.OrderAccepted(client_order_id=coid, status="NEW", ts_ns=2))

    assert om.orders[coid].state is OrderState.FILLED
    assert om.counters["stale_acks"] == 1


def test_a_replayed_fill_is_counted_once():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    fill = tev.Fill(client_order_id=coid, symbol="BTCUSDT", side="BUY", qty=4, price=2_000_000, trade_id="t1", ts_ns=1)

    om.on_event(fill)
    om.on_event(fill)

    assert om.orders[coid].filled_qty == 4


def test_cancel_is_sent_once_and_never_for_a_finished_order():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, ts_ns=1))

    first = om.cancel(coid, 2)
    second = om.cancel(coid, 3)
    om.on_event(tev.OrderUpdate(client_order_id=coid, status="CANCELED", ts_ns=4))
    after = om.cancel(coid, 5)

    assert first == CancelOrder(symbol="BTCUSDT", client_order_id=coid)
    assert second is None and after is None
    assert om.orders[coid].state is OrderState.CANCELED


def test_a_cancel_with_unknown_outcome_is_reconciled_by_query():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, ts_ns=1))
    om.cancel(coid, 2)

    commands = om.on_event(tev.CancelUnknown(client_order_id=coid, reason="timeout", ts_ns=3))
    om.on_event(tev.OrderQueryResult(client_order_id=coid, found=True, status="CANCELED", ts_ns=4))

    assert commands == [tev.QueryOrder(symbol="BTCUSDT", client_order_id=coid)]
    assert om.orders[coid].state is OrderState.CANCELED


@pytest.mark.parametrize(
    "arrives",
    [
        tev.OrderAccepted(client_order_id="", status="NEW", ts_ns=4),
        tev.OrderUpdate(client_order_id="", status="NEW", ts_ns=4),
        tev.OrderUpdate(client_order_id="", status="PARTIALLY_FILLED", filled_qty=3, ts_ns=4),
    ],
    ids=["rest-ack", "stream-new", "stream-partial"],
)
def test_a_cancel_that_overtook_its_order_is_sent_again_when_the_order_turns_up_open(arrives):
    om = manager()
    coid = om.place(BID, 0).client_order_id
    first = om.cancel(coid, 1)  # sent while the order is still on its way
    om.on_event(tev.CancelRejected(client_order_id=coid, code=-2011, msg="Unknown order sent.", ts_ns=2))
    arrives.client_order_id = coid

    commands = om.on_event(arrives)
    again = om.on_event(tev.OrderUpdate(client_order_id=coid, status=arrives.status, filled_qty=3, ts_ns=5))

    assert first == CancelOrder(symbol="BTCUSDT", client_order_id=coid)
    assert commands == [CancelOrder(symbol="BTCUSDT", client_order_id=coid)]
    assert again == [] and om.counters["cancels_reissued"] == 1  # once, not on every later event


def test_a_refused_cancel_is_resent_at_most_once_per_retry_interval_not_on_every_call():
    om = manager(cancel_retry_ns=1_000)
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, ts_ns=1))
    om.cancel(coid, 2)
    om.on_event(tev.CancelRejected(client_order_id=coid, code=-1003, msg="Too many requests", ts_ns=10))

    storm = [om.cancel(coid, t) for t in range(11, 1_010)]  # a mode that cancels on every event
    timer_early = om.on_timer(500)
    timer_due = om.on_timer(1_010)
    after = om.cancel(coid, 1_011)

    assert storm == [None] * len(storm) and timer_early == []
    assert timer_due == [CancelOrder(symbol="BTCUSDT", client_order_id=coid)]
    assert after is None  # that retry is in flight


def test_a_cancel_that_lost_the_race_to_a_fill_is_not_sent_again():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, ts_ns=1))
    om.cancel(coid, 2)

    rejected = om.on_event(tev.CancelRejected(client_order_id=coid, code=-2011, msg="Unknown order sent.", ts_ns=3))
    filled = om.on_event(tev.OrderUpdate(client_order_id=coid, status="FILLED", filled_qty=10, ts_ns=4))

    assert rejected == [] and filled == []
    assert om.orders[coid].state is OrderState.FILLED


def test_cancelling_an_order_of_unknown_outcome_cancels_it_once_the_query_finds_it_open():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="503", ts_ns=1))

    now = om.cancel(coid, 2)  # cannot be cancelled by client id before the venue has said
    found = om.on_event(tev.OrderQueryResult(client_order_id=coid, found=True, status="NEW", ts_ns=3))

    assert now is None
    assert found == [CancelOrder(symbol="BTCUSDT", client_order_id=coid)]


def test_an_order_never_asked_to_be_cancelled_is_left_alone_when_it_turns_up():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="503", ts_ns=1))

    found = om.on_event(tev.OrderQueryResult(client_order_id=coid, found=True, status="NEW", ts_ns=3))

    assert found == [] and om.orders[coid].state is OrderState.NEW


def test_every_transition_is_journaled_with_its_reason():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, ts_ns=1))
    om.on_event(tev.OrderUpdate(client_order_id=coid, status="EXPIRED", ts_ns=2))

    rows = om.drain_journal()

    assert [(r.prev_state, r.state) for r in rows] == [("", "PENDING_NEW"), ("PENDING_NEW", "NEW"), ("NEW", "EXPIRED")]
    assert om.drain_journal() == []


def test_order_views_show_decimal_strings_for_the_dashboard():
    om = manager()
    coid = om.place(BID, 7).client_order_id

    (view,) = om.views()

    assert (view.client_order_id, view.price, view.qty, view.filled, view.status) == (
        coid,
        "20000",
        "0.01",
        "0",
        "PENDING_NEW",
    )


def test_open_orders_of_a_previous_run_are_adopted_as_unknown_and_queried():
    earlier = manager(session=1)
    coid = earlier.place(BID, 0).client_order_id
    earlier.on_event(tev.OrderAccepted(client_order_id=coid, ts_ns=1))
    last_row = earlier.drain_journal()[-1]
    restarted = manager(session=2)

    commands = restarted.adopt_open_orders([last_row], now_ns=10)

    assert commands == [tev.QueryOrder(symbol="BTCUSDT", client_order_id=coid)]
    assert restarted.orders[coid].state is OrderState.UNKNOWN
    with pytest.raises(OrderRefused):
        restarted.place(BID, 11)


def test_not_found_inside_the_window_keeps_the_order_unknown_working_and_queried_with_backoff():
    om = manager(unknown_window_ns=10_000, query_retry_ns=100, query_backoff_max_ns=400)
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="HTTP 503", ts_ns=1))

    om.on_event(tev.OrderQueryResult(client_order_id=coid, found=False, ts_ns=50))
    first_retry_too_soon = om.on_timer(90)
    first_retry = om.on_timer(101)
    om.on_event(tev.OrderQueryResult(client_order_id=coid, found=False, ts_ns=110))
    second_retry_too_soon = om.on_timer(250)  # the second wait is twice as long
    second_retry = om.on_timer(301)

    assert om.orders[coid].state is OrderState.UNKNOWN
    assert [o.client_order_id for o in om.working("BTCUSDT")] == [coid]
    assert first_retry_too_soon == [] and second_retry_too_soon == []
    assert first_retry == second_retry == [tev.QueryOrder(symbol="BTCUSDT", client_order_id=coid)]
    with pytest.raises(OrderRefused):
        om.place(BID, 700)


@pytest.mark.parametrize(
    "late",
    [
        tev.OrderUpdate(client_order_id="", status="NEW", ts_ns=5_000),
        tev.OrderAccepted(client_order_id="", status="NEW", ts_ns=5_000),
        tev.OrderQueryResult(client_order_id="", found=True, status="NEW", ts_ns=5_000),
    ],
    ids=["stream update", "late 200", "query"],
)
def test_a_late_venue_event_revives_an_order_rejected_as_not_found_and_it_counts_as_working(late):
    om = manager(unknown_window_ns=1_000)
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="HTTP 503", ts_ns=1))
    om.on_event(tev.OrderQueryResult(client_order_id=coid, found=False, ts_ns=2_000))
    assert om.orders[coid].state is OrderState.REJECTED
    for _ in range(3):
        om.on_timer(3_000)  # never forgotten, whatever keep_terminal says

    late.client_order_id = coid
    om.on_event(late)

    assert om.orders[coid].state is OrderState.NEW
    assert om.counters["resolved_late"] == 1
    assert [o.client_order_id for o in om.working("BTCUSDT")] == [coid]
    assert om.journal[-1].reason.startswith("late venue event")


def test_a_late_fill_of_an_order_rejected_as_not_found_moves_it_to_filled():
    om = manager(unknown_window_ns=0)
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUnknown(client_order_id=coid, reason="timeout", ts_ns=1))
    om.on_event(tev.OrderQueryResult(client_order_id=coid, found=False, ts_ns=2))

    om.on_event(
        tev.Fill(client_order_id=coid, symbol="BTCUSDT", side="BUY", qty=10, price=2_000_000, trade_id="9", ts_ns=3)
    )

    assert om.orders[coid].state is OrderState.FILLED
    assert om.orders[coid].filled_qty == 10


def test_a_query_showing_more_executed_than_the_booked_fills_asks_for_the_orders_trade_history():
    om = manager()
    coid = om.place(BID, 5_000_000_000).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, venue_order_id="77", ts_ns=5_000_000_001))
    om.on_event(
        tev.Fill(
            client_order_id=coid,
            symbol="BTCUSDT",
            side="BUY",
            qty=4,
            price=2_000_000,
            trade_id="1",
            ts_ns=5_000_000_002,
        )
    )
    om.on_event(tev.VenueDataError(client_order_id=coid, reason="fill quantity must be positive", ts_ns=5_000_000_003))

    commands = om.on_event(
        tev.OrderQueryResult(
            client_order_id=coid, found=True, status="FILLED", filled_qty=10, venue_order_id="77", ts_ns=5_000_000_004
        )
    )

    assert commands == [tev.FetchOrderTrades(symbol="BTCUSDT", client_order_id=coid, venue_order_id="77", since_ms=0)]
    assert om.orders[coid].state is OrderState.FILLED
    assert om.orders[coid].booked_qty == 4


def test_an_update_with_the_cumulative_quantity_before_its_fill_does_not_count_the_fill_twice():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderUpdate(client_order_id=coid, status="PARTIALLY_FILLED", filled_qty=4, ts_ns=1))

    om.on_event(
        tev.Fill(client_order_id=coid, symbol="BTCUSDT", side="BUY", qty=4, price=2_000_000, trade_id="1", ts_ns=2)
    )

    assert om.orders[coid].filled_qty == 4


def test_a_query_answer_after_the_order_settled_still_fetches_executions_never_booked():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, venue_order_id="77", ts_ns=1))
    om.on_event(tev.VenueDataError(client_order_id=coid, reason="fill quantity must be positive", ts_ns=2))
    om.on_event(tev.OrderUpdate(client_order_id=coid, status="FILLED", filled_qty=10, venue_order_id="77", ts_ns=3))

    late_answer = om.on_event(
        tev.OrderQueryResult(
            client_order_id=coid, found=True, status="FILLED", filled_qty=10, venue_order_id="77", ts_ns=4
        )
    )

    assert om.orders[coid].state is OrderState.FILLED
    assert late_answer == [
        tev.FetchOrderTrades(symbol="BTCUSDT", client_order_id=coid, venue_order_id="77", since_ms=0)
    ]


def test_a_bad_report_about_an_order_already_filled_still_asks_the_venue_for_what_it_carried():
    om = manager()
    coid = om.place(BID, 0).client_order_id
    om.on_event(tev.OrderAccepted(client_order_id=coid, venue_order_id="77", status="FILLED", ts_ns=1))

    commands = om.on_event(tev.VenueDataError(client_order_id=coid, reason="fill quantity must be positive", ts_ns=2))
    answer = om.on_event(
        tev.OrderQueryResult(
            client_order_id=coid, found=True, status="FILLED", filled_qty=10, venue_order_id="77", ts_ns=3
        )
    )

    assert commands == [tev.QueryOrder(symbol="BTCUSDT", client_order_id=coid)]
    assert om.orders[coid].state is OrderState.FILLED
    assert answer == [tev.FetchOrderTrades(symbol="BTCUSDT", client_order_id=coid, venue_order_id="77", since_ms=0)]

"""Operator cancel-all and flatten in the trader: cancels first, then one reduce-only market
order sized from the position when the venue has confirmed the cancels."""

from __future__ import annotations

from epochbot.model import trade_events as tev
from epochbot.model.events import CancelOrder, PlaceOrder
from epochbot.trading.state_view import trading_view
from epochbot.trading.strategy import OrderIntent
from tests.trading.test_trader import trader, view


def working_pair(t, s):
    s.queue = [
        OrderIntent("BTCUSDT", "BUY", 10, 1_999_990, tag="bid"),
        OrderIntent("BTCUSDT", "SELL", 10, 2_000_010, tag="ask"),
    ]
    bid, ask = t.on_view(view(1))
    for p in (bid, ask):
        t.on_event(tev.OrderAccepted(client_order_id=p.client_order_id, ts_ns=2))
    return bid, ask


def fill(place, qty, side, trade_id, ts=5, price=2_000_000):
    return tev.Fill(
        client_order_id=place.client_order_id,
        symbol="BTCUSDT",
        side=side,
        qty=qty,
        price=price,
        trade_id=trade_id,
        ts_ns=ts,
    )


def test_cancel_all_cancels_every_working_order_once():
    t, s = trader()
    bid, ask = working_pair(t, s)

    first = t.cancel_all(None, 3)
    again = t.cancel_all(None, 4)

    assert first == [
        CancelOrder(symbol="BTCUSDT", client_order_id=bid.client_order_id),
        CancelOrder(symbol="BTCUSDT", client_order_id=ask.client_order_id),
    ]
    assert again == []


def test_flatten_waits_for_the_cancels_then_sends_a_reduce_only_market_order_for_the_position_then():
    t, s = trader()
    bid, ask = working_pair(t, s)
    t.on_event(fill(bid, 10, "BUY", "1"))  # long 0.010

    commands, targets = t.flatten("BTCUSDT", 6)
    assert targets == ["BTCUSDT"] and commands == [CancelOrder(symbol="BTCUSDT", client_order_id=ask.client_order_id)]
    # The ask fills in part while its cancel travels: the position is now 0.004, not 0.010.
    t.on_event(fill(ask, 6, "SELL", "2", ts=7))
    placed = t.on_event(tev.OrderUpdate(client_order_id=ask.client_order_id, status="CANCELED", filled_qty=6, ts_ns=8))

    (market,) = placed
    assert isinstance(market, PlaceOrder)
    assert (market.side, market.order_type, market.qty, market.reduce_only, market.price) == (
        "SELL",
        "MARKET",
        "0.004",
        True,
        None,
    )


def test_a_flat_symbol_is_not_flattened_and_the_strategy_cannot_requote_a_symbol_being_flattened():
    t, s = trader()
    assert t.flatten("BTCUSDT", 1) == ([], [])

    bid, ask = working_pair(t, s)
    t.on_event(fill(bid, 10, "BUY", "1"))
    t.flatten("BTCUSDT", 6)
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_980, tag="bid")]

    assert t.on_view(view(7)) == []


def test_the_trading_view_counts_outcomes_fills_and_names_the_quote_asset():
    t, s = trader()
    bid, ask = working_pair(t, s)
    t.on_event(fill(bid, 10, "BUY", "1"))
    t.cancel_all(None, 6)
    t.on_event(tev.OrderUpdate(client_order_id=ask.client_order_id, status="CANCELED", ts_ns=7))

    tv = trading_view(t)

    assert tv.fill_count == 1 and tv.recent_fills[0].qty == "0.01" and tv.recent_fills[0].price == "20000"
    assert dict(tv.orders_by_outcome) == {"FILLED": 1, "CANCELED": 1, "placed": 2}
    assert tv.working_orders == () and tv.pnl.quote_asset == "USDT"
    assert [b.name for b in tv.breakers] == ["BTCUSDT", "session-loss", "daily-loss"] and not tv.tripped


def test_a_flatten_the_gates_refuse_says_why():
    from epochbot.model.modes import Mode

    t, s = trader()
    bid, ask = working_pair(t, s)
    t.on_event(fill(bid, 10, "BUY", "1"))
    t.cancel_all(None, 6)
    t.on_event(tev.OrderUpdate(client_order_id=ask.client_order_id, status="CANCELED", ts_ns=7))
    t.set_mode(Mode.HALTED, 8)

    commands, _ = t.flatten("BTCUSDT", 9)

    assert commands == []
    level, msg, fields = t.notices[-1]
    assert level == "error" and "mode halted" in msg and fields["qty"] == "0.01"


def test_a_requote_waiting_for_its_cancel_is_dropped_when_the_operator_pauses_the_strategy():
    t, s = trader()
    bid, ask = working_pair(t, s)
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_980, tag="bid")]  # move the bid: cancel, then re-quote
    (cancel,) = t.on_view(view(3))
    assert cancel == CancelOrder(symbol="BTCUSDT", client_order_id=bid.client_order_id)

    t.pause(True)  # the operator pauses while the cancel travels
    after = t.on_event(tev.OrderUpdate(client_order_id=bid.client_order_id, status="CANCELED", ts_ns=4))

    assert after == [] and t.pending == {}


def test_the_shutdown_pause_holds_after_the_engine_stopped_so_no_strategy_order_is_made_while_the_venue_answers():
    from epochbot.model import events as ev
    from tests.core.test_hostile_input import trading_engine

    engine = trading_engine()
    engine.handle(ev.ShutdownRequested(reason="test"))

    engine.handle(ev.OperatorPause(paused=True))  # the clean stop pauses after the loop has stopped

    assert engine.trader.paused and engine.paused

"""The Trader glue: slot replacement waits for cancels, modes pull makers, fills feed PnL and risk."""

from __future__ import annotations

from dataclasses import dataclass, field

from epochbot.model import trade_events as tev
from epochbot.model.events import CancelOrder, PlaceOrder
from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.orders import OrderState, OrderTransition
from epochbot.trading.strategy import MarketView, OrderIntent
from epochbot.trading.trader import RiskSnapshot, Trader

BTC = SymbolFilters.from_strings("BTCUSDT", "0.01", "0.001", min_qty="0.001", min_notional="5")


@dataclass
class Scripted:
    """A strategy that returns whatever the test queued for the next book view."""

    name: str = "scripted"
    queue: list = field(default_factory=list)
    fills: list = field(default_factory=list)

    def on_book(self, view):
        out, self.queue = self.queue, []
        return out

    def on_trade(self, trade):
        return []

    def on_fill(self, fill):
        self.fills.append(fill)
        return []

    def on_mode_change(self, mode):
        return []

    def on_timer(self, now_ns):
        return []


def view(ts: int = 1) -> MarketView:
    return MarketView("BTCUSDT", ts, UnitCodec(2, 3), 1, 2_000_000, 2_000_002)


def trader() -> tuple[Trader, Scripted]:
    s = Scripted()
    return Trader(s, {"BTCUSDT": BTC}, session=3), s


def test_an_intent_for_a_busy_slot_cancels_first_and_places_after_the_cancel_is_confirmed():
    t, s = trader()
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_990, tag="bid")]
    (first,) = t.on_view(view(1))
    t.on_event(tev.OrderAccepted(client_order_id=first.client_order_id, ts_ns=2))

    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_995, tag="bid")]
    replace = t.on_view(view(3))
    placed = t.on_event(tev.OrderUpdate(client_order_id=first.client_order_id, status="CANCELED", ts_ns=4))

    assert replace == [CancelOrder(symbol="BTCUSDT", client_order_id=first.client_order_id)]
    assert len(placed) == 1 and isinstance(placed[0], PlaceOrder) and placed[0].price == "19999.95"


def test_a_refused_intent_is_recorded_with_its_reason_and_sends_nothing():
    t, s = trader()
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 2_000_000)]
    t.set_mode(Mode.REDUCE_ONLY, 0)

    commands = t.on_view(view())

    assert commands == []
    assert "would not reduce" in t.refusals[-1].reason


def test_switching_to_cancel_makers_pulls_resting_orders():
    t, s = trader()
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_990, tag="bid")]
    (place,) = t.on_view(view())
    t.on_event(tev.OrderAccepted(client_order_id=place.client_order_id, ts_ns=2))

    commands = t.set_mode(Mode.CANCEL_MAKERS, 3)

    assert commands == [CancelOrder(symbol="BTCUSDT", client_order_id=place.client_order_id)]


def test_fills_update_the_position_risk_and_the_records_to_persist():
    t, s = trader()
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 2_000_002, tif="IOC")]
    (place,) = t.on_view(view())
    fill = tev.Fill(
        client_order_id=place.client_order_id,
        symbol="BTCUSDT",
        side="BUY",
        qty=10,
        price=2_000_002,
        trade_id="1",
        ts_ns=5,
    )

    t.on_event(fill)
    t.on_event(fill)  # replayed by the stream: booked once

    assert t.portfolio.qty("BTCUSDT") == 10 and s.fills == [fill]
    assert t.orders.orders[place.client_order_id].state is OrderState.FILLED
    kinds = [type(r) for r in t.drain_records()]
    assert kinds.count(type(fill)) == 1 and RiskSnapshot in kinds and OrderTransition in kinds


def test_trader_views_feed_the_dashboard_snapshot():
    t, s = trader()
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_990, tag="bid")]
    t.on_view(view())

    views = t.views()

    assert [o.status for o in views["orders"]] == ["PENDING_NEW"]
    assert views["risk"].breakers == {"BTCUSDT": "ok"}


def test_an_intent_identical_to_the_working_order_of_its_slot_sends_nothing():
    t, s = trader()
    intent = OrderIntent("BTCUSDT", "BUY", 10, 1_999_990, tag="bid")
    s.queue = [intent]
    (place,) = t.on_view(view(1))
    t.on_event(tev.OrderAccepted(client_order_id=place.client_order_id, ts_ns=2))

    s.queue = [intent]
    again = t.on_view(view(3))

    assert again == []


def test_a_symbol_outside_trading_gets_no_new_orders_but_its_resting_orders_can_be_cancelled():
    t, s = trader()
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_990, tag="bid")]
    (first,) = t.on_view(view(1))
    t.on_event(tev.OrderAccepted(client_order_id=first.client_order_id, ts_ns=2))

    assert t.on_event(tev.SymbolStatus(symbol="BTCUSDT", status="HALT", ts_ns=3)) == []
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_995, tag="bid")]
    (cancel,) = t.on_view(view(4))  # the slot's resting order is cancelled ...
    assert isinstance(cancel, CancelOrder)
    assert t.on_event(tev.OrderUpdate(client_order_id=first.client_order_id, status="CANCELED", ts_ns=5)) == []
    assert t.refusals[-1].reason == "symbol status HALT"  # ... but its replacement is not sent

    t.on_event(tev.SymbolStatus(symbol="BTCUSDT", status="TRADING", ts_ns=6))
    s.queue = [OrderIntent("BTCUSDT", "BUY", 10, 1_999_995, tag="bid")]
    (placed,) = t.on_view(view(7))  # the strategy's next wish goes out again
    assert isinstance(placed, PlaceOrder) and placed.client_order_id != first.client_order_id

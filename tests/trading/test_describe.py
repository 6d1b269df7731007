"""The log lines of trading traffic: one table entry per event and command type."""

from __future__ import annotations

import dataclasses

import pytest

from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.strategy import BaseStrategy
from epochbot.trading.trader import Trader

SYM = "BTCUSDT"

ORDER_EVENTS = [
    cls
    for cls in vars(tev).values()
    if isinstance(cls, type)
    and issubclass(cls, tev.TradingEvent)
    and cls is not tev.Fill
    and "client_order_id" in {f.name for f in dataclasses.fields(cls)}
]


def trader() -> Trader:
    return Trader(BaseStrategy(), {SYM: SymbolFilters.from_strings(SYM, "0.1", "0.001")})


@pytest.mark.parametrize("cls", ORDER_EVENTS, ids=lambda cls: cls.__name__)
def test_every_order_event_the_venue_sends_has_a_log_line_of_its_own(cls):
    required = {
        f.name: "NEW" if f.name == "status" else "c1"
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }

    level, message, fields = trader().describe_event(cls(**required))

    assert level in ("debug", "warn")
    assert not message.startswith(f"order {cls.__name__}")  # the fallback for a type the table lacks
    assert fields["client_order_id"] == "c1"


def test_a_rejection_is_a_warning_with_the_venues_code_and_message():
    level, message, fields = trader().describe_event(tev.OrderRejected(client_order_id="c1", code=-2010, msg="no"))

    assert (level, message) == ("warn", "order rejected")
    assert (fields["code"], fields["venue_msg"]) == (-2010, "no")


def test_a_rejected_order_update_is_a_warning_and_carries_the_filled_quantity():
    level, message, fields = trader().describe_event(
        tev.OrderUpdate(client_order_id="c1", status="REJECTED", filled_qty=0)
    )

    assert (level, message, fields["status"], fields["filled"]) == ("warn", "order update", "REJECTED", "0")


def test_a_fill_booked_already_is_a_debug_line():
    t = trader()
    fill = tev.Fill(client_order_id="c1", symbol=SYM, side="BUY", qty=5, price=100, trade_id="t1")
    t.import_fill(fill)

    level, message, _ = t.describe_event(fill)

    assert (level, message) == ("debug", "fill already booked (replayed)")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (ev.PlaceOrder(symbol=SYM, side="SELL", qty="0.005", price="10.0", client_order_id="c1"), "order place SELL"),
        (ev.CancelOrder(symbol=SYM, client_order_id="c1"), "order cancel"),
        (tev.QueryOrder(symbol=SYM, client_order_id="c1"), "order query"),
    ],
)
def test_order_commands_are_debug_lines(command, message):
    level, text, fields = trader().describe_command(command)

    assert level == "debug" and text.startswith(message) and fields["client_order_id"] == "c1"


def test_commands_that_are_not_orders_are_not_logged():
    assert trader().describe_command(ev.Stop(reason="done")) is None

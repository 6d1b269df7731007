"""Binance user-data frames and order answers -> trading events."""

from __future__ import annotations

from decimal import Decimal

import orjson

from epochbot.model import trade_events as tev
from epochbot.model.numeric import UnitCodec
from epochbot.venues.binance.user import order_response_events, user_frame_events

CODECS = {"BTCUSDT": UnitCodec(2, 5)}
QUOTES = {"BTCUSDT": "USDT"}


def execution_report(**overrides) -> bytes:
    frame = {
        "e": "executionReport",
        "E": 1_700_000_000_100,
        "s": "BTCUSDT",
        "c": "eb1-2",
        "S": "BUY",
        "o": "LIMIT",
        "x": "TRADE",
        "X": "PARTIALLY_FILLED",
        "i": 42,
        "l": "0.00100",
        "z": "0.00100",
        "L": "27000.10",
        "n": "0.0108",
        "N": "USDT",
        "T": 1_700_000_000_099,
        "t": 7,
        "m": True,
        "C": "",
    }
    frame.update(overrides)
    return orjson.dumps(frame)


def test_a_trade_execution_report_becomes_a_fill_then_an_update_in_exact_units():
    fill, update = user_frame_events(execution_report(), CODECS, 5, QUOTES)

    assert type(fill) is tev.Fill and type(update) is tev.OrderUpdate
    assert (fill.qty, fill.price, fill.fee, fill.trade_id, fill.is_maker) == (
        100,
        2_700_010,
        Decimal("0.0108"),
        "7",
        True,
    )
    assert (update.status, update.filled_qty) == ("PARTIALLY_FILLED", 100)


def test_a_fee_paid_in_the_quote_asset_counts_as_quote_so_pnl_includes_it():
    fill, _ = user_frame_events(execution_report(), CODECS, 5, QUOTES)
    bnb, _ = user_frame_events(execution_report(N="BNB"), CODECS, 5, QUOTES)

    assert fill.fee_asset == ""
    assert bnb.fee_asset == "BNB"


def test_a_canceled_report_is_keyed_by_the_original_client_order_id():
    (update,) = user_frame_events(
        execution_report(x="CANCELED", X="CANCELED", c="web_x", C="eb1-2", l="0", z="0"), CODECS, 5, QUOTES
    )

    assert (update.client_order_id, update.status) == ("eb1-2", "CANCELED")


def test_a_full_spot_order_answer_lists_its_fills():
    body = {
        "symbol": "BTCUSDT",
        "orderId": 9,
        "status": "FILLED",
        "side": "SELL",
        "transactTime": 1_700_000_000_000,
        "fills": [
            {"price": "27000.00", "qty": "0.00200", "commission": "0.054", "commissionAsset": "USDT", "tradeId": 11}
        ],
    }

    accepted, fill = order_response_events(body, CODECS, "eb1-3", 5, QUOTES)

    assert (accepted.status, accepted.venue_order_id) == ("FILLED", "9")
    assert (fill.qty, fill.price, fill.side, fill.fee_asset) == (200, 2_700_000, "SELL", "")

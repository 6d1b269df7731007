"""Binance frame decoding and stream routing."""

from __future__ import annotations

import orjson
import pytest

from epochbot.model import events as ev
from epochbot.venues.binance.wire import Ack, FrameError, ServerShutdown, decode_frame, decode_snapshot, streams_for

DEPTH = {"e": "depthUpdate", "E": 1700, "s": "BTCUSDT", "U": 10, "u": 12, "b": [["1.0", "2.0"]], "a": []}


def frame(obj, stream: str | None = None) -> bytes:
    return orjson.dumps({"stream": stream, "data": obj} if stream else obj)


def test_combined_spot_depth_update_decodes_to_depth_diff():
    event = decode_frame(frame(DEPTH, "btcusdt@depth@100ms"), 3, 99)

    assert type(event) is ev.DepthDiff
    assert (event.epoch, event.symbol, event.first_id, event.final_id, event.prev_final_id) == (
        3,
        "BTCUSDT",
        10,
        12,
        None,
    )
    assert (event.bids, event.asks, event.exchange_ts, event.recv_ts) == ([["1.0", "2.0"]], [], 1700, 99)


def test_bare_usdm_depth_update_carries_pu():
    event = decode_frame(frame({**DEPTH, "pu": 9}), 1, 0)

    assert event.prev_final_id == 9


def test_agg_trade_decodes():
    raw = frame(
        {"e": "aggTrade", "E": 5, "s": "BTCUSDT", "a": 77, "p": "1.5", "q": "2", "f": 1, "l": 2, "T": 4, "m": True}
    )

    event = decode_frame(raw, 1, 0)

    assert type(event) is ev.AggTrade
    assert (event.trade_id, event.price, event.qty, event.buyer_is_maker, event.trade_ts, event.exchange_ts) == (
        77,
        "1.5",
        "2",
        True,
        4,
        5,
    )


def test_raw_trade_stream_print_decodes_as_a_one_fill_trade():
    # Binance's @trade stream (the 2024 capture records it): its trade id stands in for "a".
    raw = frame(
        {"e": "trade", "E": 5, "s": "BTCUSDT", "t": 91, "p": "1.5", "q": "2", "T": 4, "m": False, "M": True},
        "btcusdt@trade",
    )

    event = decode_frame(raw, 1, 0)

    assert type(event) is ev.AggTrade
    assert (event.trade_id, event.price, event.qty, event.buyer_is_maker, event.trade_ts, event.exchange_ts) == (
        91,
        "1.5",
        "2",
        False,
        4,
        5,
    )


def test_spot_book_ticker_without_event_type_decodes_with_zero_exchange_ts():
    raw = frame({"u": 400, "s": "BNBUSDT", "b": "25.3", "B": "31.2", "a": "25.4", "A": "40.6"}, "bnbusdt@bookTicker")

    event = decode_frame(raw, 1, 0)

    assert type(event) is ev.BookTicker
    assert (event.update_id, event.bid_price, event.ask_qty, event.exchange_ts) == (400, "25.3", "40.6", 0)


def test_usdm_book_ticker_with_event_type_keeps_exchange_ts():
    raw = frame(
        {
            "e": "bookTicker",
            "u": 400,
            "E": 1568014460893,
            "T": 1,
            "s": "BNBUSDT",
            "b": "25.3",
            "B": "31.2",
            "a": "25.4",
            "A": "40.6",
        }
    )

    assert decode_frame(raw, 1, 0).exchange_ts == 1568014460893


def test_mark_price_update_decodes():
    raw = frame(
        {
            "e": "markPriceUpdate",
            "E": 9,
            "s": "BTCUSDT",
            "p": "11794.15",
            "i": "11784.62",
            "r": "0.00038167",
            "T": 1562306400000,
        }
    )

    event = decode_frame(raw, 1, 0)

    assert type(event) is ev.MarkPrice
    assert (event.mark_price, event.index_price, event.funding_rate, event.next_funding_ts) == (
        "11794.15",
        "11784.62",
        "0.00038167",
        1562306400000,
    )


def test_kline_decodes():
    k = {"t": 1, "T": 2, "s": "BTCUSDT", "i": "1m", "o": "1", "c": "2", "h": "3", "l": "0.5", "v": "10", "x": False}
    event = decode_frame(frame({"e": "kline", "E": 3, "s": "BTCUSDT", "k": k}), 1, 0)

    assert type(event) is ev.Kline
    assert (event.interval, event.open, event.high, event.low, event.close, event.volume, event.closed) == (
        "1m",
        "1",
        "3",
        "0.5",
        "2",
        "10",
        False,
    )


def test_force_order_decodes():
    o = {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "p": "9910", "q": "0.014", "X": "FILLED"}
    event = decode_frame(frame({"e": "forceOrder", "E": 8, "o": o}), 1, 0)

    assert type(event) is ev.ForceOrder
    assert (event.symbol, event.side, event.price, event.qty, event.status) == (
        "BTCUSDT",
        "SELL",
        "9910",
        "0.014",
        "FILLED",
    )


def test_server_shutdown_decodes():
    assert decode_frame(frame({"e": "serverShutdown", "E": 42}), 1, 0) == ServerShutdown(42)


def test_subscription_ack_decodes():
    assert decode_frame(b'{"result":null,"id":1}', 1, 0) == Ack(1, None, None)


def test_subscription_error_ack_carries_code_and_message():
    ack = decode_frame(b'{"error":{"code":2,"msg":"Invalid request"},"id":7}', 1, 0)

    assert ack == Ack(7, None, "2: Invalid request")


def test_unknown_event_type_is_ignorable():
    assert decode_frame(frame({"e": "ACCOUNT_UPDATE", "E": 1}), 1, 0) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"stream":"x","data":{"e":"depthUpdate"',  # truncated
        b"[1, 2]",
        b'"text"',
        b'{"foo": 1}',
        orjson.dumps({k: v for k, v in DEPTH.items() if k != "u"}),
        orjson.dumps({k: v for k, v in DEPTH.items() if k != "s"}),
        orjson.dumps({**DEPTH, "U": "10"}),
        orjson.dumps({**DEPTH, "U": True}),
        orjson.dumps({**DEPTH, "U": 13}),  # U > u
        orjson.dumps({**DEPTH, "pu": "9"}),
        orjson.dumps({**DEPTH, "b": "1.0"}),
        orjson.dumps({**DEPTH, "a": {"1.0": "2"}}),
        orjson.dumps({"e": "aggTrade", "E": 5, "s": "BTCUSDT"}),
        orjson.dumps({"e": "kline", "E": 5, "s": "BTCUSDT", "k": "oops"}),
        b'{"result":null,"id":"abc"}',
    ],
)
def test_malformed_frames_raise_frame_error(raw):
    with pytest.raises(FrameError):
        decode_frame(raw, 1, 0)


def test_decode_snapshot_returns_ids_and_levels():
    assert decode_snapshot(b'{"lastUpdateId":5,"E":7,"bids":[["1","2"]],"asks":[]}') == (5, [["1", "2"]], [], 7)


@pytest.mark.parametrize("raw", [b"{", b'{"bids":[],"asks":[]}', b'{"lastUpdateId":"x","bids":[],"asks":[]}', b"[]"])
def test_decode_snapshot_rejects_malformed_bodies(raw):
    with pytest.raises(FrameError):
        decode_snapshot(raw)


def test_usdm_streams_route_depth_and_book_ticker_under_public_and_trades_under_market():
    routes = streams_for(["BTCUSDT"], "usdm")

    assert routes == {
        "/public": ["btcusdt@depth@100ms", "btcusdt@bookTicker"],
        "/market": ["btcusdt@aggTrade", "btcusdt@markPrice@1s"],
    }


def test_spot_streams_share_one_route():
    routes = streams_for(["BTCUSDT", "ETHBTC"], "spot")

    assert list(routes) == [""]
    assert "ethbtc@depth@100ms" in routes[""] and "btcusdt@aggTrade" in routes[""]
    assert not any("markPrice" in s for s in routes[""])

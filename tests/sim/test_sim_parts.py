"""The simulator's server-side parts on their own: the subscription registry, stall scopes, stream
validation, the trading status and the REST parameter helpers (no sockets)."""

from __future__ import annotations

import pytest

from epochbot.sim.auth import SimApiError
from epochbot.sim.conn import WsConn
from epochbot.sim.exchange_info import ExchangeInfo
from epochbot.sim.faults import FaultBoard, StallScopes, stale_time
from epochbot.sim.market import default_spec
from epochbot.sim.rest import int_param
from epochbot.sim.streams import parse_stream
from epochbot.sim.subscriptions import Subscriptions
from epochbot.sim.ws import validate_streams


def conn(cid: int) -> WsConn:
    return WsConn(cid, None, None, "public", False)  # type: ignore[arg-type]  # no socket needed here


def subscribe(subs: Subscriptions, c: WsConn, name: str) -> None:
    spec = parse_stream(name, "usdm")
    assert spec is not None
    subs.add(c, name, spec)


# ------------------------------------------------------------------ subscriptions


def test_a_symbol_feeds_its_streams_in_subscription_order_and_unknown_symbols_feed_nothing():
    subs = Subscriptions("usdm", ["BTCUSDT"])
    a = conn(1)

    for name in ("btcusdt@depth@100ms", "xrpusdt@depth@100ms", "btcusdt@bookTicker"):
        subscribe(subs, a, name)

    assert list(subs.streams_of("BTCUSDT")) == ["btcusdt@depth@100ms", "btcusdt@bookTicker"]
    assert subs.subscribers("xrpusdt@depth@100ms") == {a}  # accepted, but no generator serves it
    assert subs.counts() == {"btcusdt@depth@100ms": 1, "xrpusdt@depth@100ms": 1, "btcusdt@bookTicker": 1}


def test_a_stream_stops_and_its_listeners_forget_it_only_when_its_last_subscriber_leaves():
    subs = Subscriptions("usdm", ["BTCUSDT"])
    closed: list[str] = []
    subs.on_stream_closed(closed.append)
    a, b = conn(1), conn(2)
    subscribe(subs, a, "btcusdt@depth@500ms")
    subscribe(subs, b, "btcusdt@depth@500ms")

    subs.remove(a, "btcusdt@depth@500ms")
    assert closed == [] and "btcusdt@depth@500ms" in subs.streams_of("BTCUSDT")
    subs.drop(b)  # b closes

    assert closed == ["btcusdt@depth@500ms"] and dict(subs.streams_of("BTCUSDT")) == {}
    assert subs.subscribers("btcusdt@depth@500ms") is None and b.subs == set()


def test_subscribing_twice_is_one_subscription():
    subs = Subscriptions("usdm", ["BTCUSDT"])
    a = conn(1)

    subscribe(subs, a, "btcusdt@aggTrade")
    subscribe(subs, a, "btcusdt@aggTrade")

    assert subs.counts() == {"btcusdt@aggTrade": 1}


# ------------------------------------------------------------------ stream validation


def test_stream_validation_refuses_the_first_bad_name_in_binances_words():
    assert validate_streams(["btcusdt@depth", 5], "public", "usdm") == ([], "Invalid request: params must be strings")
    assert validate_streams(["btcusdt@nope"], "public", "usdm") == ([], "Invalid request: invalid stream btcusdt@nope")
    assert validate_streams(["btcusdt@aggTrade"], "public", "usdm") == (
        [],
        "Invalid request: stream btcusdt@aggTrade is not served on /public",
    )


def test_spot_serves_every_stream_on_its_one_route():
    valid, err = validate_streams(["btcusdt@aggTrade", "btcusdt@depth5"], "", "spot")

    assert err is None and [name for name, _ in valid] == ["btcusdt@aggTrade", "btcusdt@depth5"]


# ------------------------------------------------------------------ faults applied


def test_a_scoped_stall_silences_the_connections_open_when_armed_and_a_global_one_every_connection():
    board, stalls = FaultBoard(), StallScopes()
    scoped = board.arm({"kind": "stall", "duration_s": 5}, now=0.0)
    stalls.note_armed(scoped, {1, 2})
    everywhere = board.arm({"kind": "stall", "scope": "all"}, now=0.0)
    stalls.note_armed(everywhere, {1, 2})

    assert stalls.silenced(scoped) == {1, 2} and stalls.silences(scoped, 1) and not stalls.silences(scoped, 3)
    assert stalls.silenced(everywhere) is None and stalls.silences(everywhere, 3)
    assert not stalls.silences(None, 1)


def test_a_stall_armed_without_a_record_of_open_connections_silences_every_one():
    board, stalls = FaultBoard(), StallScopes()
    at_start = board.arm({"kind": "stall"}, now=0.0)  # --fault at start: never noted

    assert stalls.silences(at_start, 42)


def test_stale_time_lags_only_while_the_fault_is_armed_for_that_symbol():
    board = FaultBoard()
    board.arm({"kind": "stale", "symbol": "BTCUSDT", "lag_ms": 1500})

    assert stale_time(board, "BTCUSDT", 10_000) == 8_500
    assert stale_time(board, "ETHUSDT", 10_000) == 10_000


@pytest.mark.parametrize(
    ("market", "code", "msg"), [("spot", -2010, "Market is closed."), ("usdm", -1122, "Invalid symbol status.")]
)
def test_a_halted_symbol_shows_its_status_and_refuses_new_orders_as_binance_does(market, code, msg):
    board = FaultBoard()
    info = ExchangeInfo(
        market=market, weight_limit=100, specs={"BTCUSDT": default_spec(market, "BTCUSDT", 7)}, faults=board
    )
    info.refuse_unless_trading("BTCUSDT")  # TRADING: nothing happens
    board.arm({"kind": "symbol_status", "symbol": "BTCUSDT", "status": "BREAK"})

    with pytest.raises(SimApiError) as refused:
        info.refuse_unless_trading("BTCUSDT")

    assert (refused.value.code, str(refused.value)) == (code, f"{code}: {msg}")
    assert [s["status"] for s in info.document()["symbols"]] == ["BREAK"]


# ------------------------------------------------------------------ REST parameters


def test_an_integer_parameter_is_optional_but_never_garbage():
    assert int_param({}, "limit") is None and int_param({"limit": ""}, "limit") is None
    assert int_param({"fromId": "-3"}, "fromId") == -3
    with pytest.raises(SimApiError) as info:
        int_param({"limit": "1e3"}, "limit")
    assert info.value.code == -1100 and "'limit'" in str(info.value)

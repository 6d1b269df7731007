"""Hostile input never reaches the loop as an exception.

Property tests (hypothesis) over every stream and message the decoders handle: a valid frame of
each kind with one field replaced by an arbitrary JSON value (wrong type, out of range, huge,
nested, oversized), plus arbitrary bytes. Each must either decode to an event whose every field
the core reads is sound - and then the engine (with a trader attached) handles it without
raising - or be refused with `FrameError` (market) / dropped and counted (user data, order
answers). The known killers from the audit are listed explicitly as well.
"""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epochbot.book.book import VenueRules
from epochbot.engine.engine import Engine, EngineConfig
from epochbot.model import events as ev
from epochbot.model import trade_events as tev
from epochbot.model.trade_checks import problem
from epochbot.runtime.inbox import Inbox
from epochbot.runtime.order_gateway import OrderGateway
from epochbot.trading.filters import SymbolFilters
from epochbot.trading.strategy import get_strategy
from epochbot.trading.trader import Trader
from epochbot.venues.binance.rest import RestError
from epochbot.venues.binance.wire import FrameError, decode_frame, decode_snapshot

SYM = "BTCUSDT"
BTC = SymbolFilters.from_strings(SYM, "0.10", "0.001", min_qty="0.001", min_notional="5", market="usdm")
E = 1_700_000_000_000

MARKET_FRAMES = {
    "depth": {
        "stream": "btcusdt@depth@100ms",
        "data": {
            "e": "depthUpdate",
            "E": E,
            "T": E,
            "s": SYM,
            "U": 101,
            "u": 102,
            "pu": 100,
            "b": [["100.00", "1.000"]],
            "a": [["101.00", "0.500"]],
        },
    },
    "aggTrade": {
        "stream": "btcusdt@aggTrade",
        "data": {
            "e": "aggTrade",
            "E": E,
            "s": SYM,
            "a": 5,
            "p": "100.50",
            "q": "0.010",
            "f": 1,
            "l": 2,
            "T": E,
            "m": True,
        },
    },
    "markPrice": {
        "stream": "btcusdt@markPrice@1s",
        "data": {
            "e": "markPriceUpdate",
            "E": E,
            "s": SYM,
            "p": "100.10",
            "i": "100.00",
            "P": "100.2",
            "r": "0.00010000",
            "T": E + 3_600_000,
        },
    },
    "kline": {
        "stream": "btcusdt@kline_1m",
        "data": {
            "e": "kline",
            "E": E,
            "s": SYM,
            "k": {
                "t": E - 60_000,
                "T": E - 1,
                "s": SYM,
                "i": "1m",
                "o": "100.0",
                "h": "101.0",
                "l": "99.0",
                "c": "100.5",
                "v": "2.000",
                "x": True,
            },
        },
    },
    "bookTicker": {
        "stream": "btcusdt@bookTicker",
        "data": {
            "e": "bookTicker",
            "u": 400,
            "E": E,
            "T": E,
            "s": SYM,
            "b": "100.00",
            "B": "1.000",
            "a": "101.00",
            "A": "2.000",
        },
    },
    "spotBookTicker": {"u": 400, "s": SYM, "b": "100.00", "B": "1.000", "a": "101.00", "A": "2.000"},
    "forceOrder": {
        "stream": "btcusdt@forceOrder",
        "data": {
            "e": "forceOrder",
            "E": E,
            "o": {
                "s": SYM,
                "S": "SELL",
                "o": "LIMIT",
                "f": "IOC",
                "q": "0.014",
                "p": "99.00",
                "ap": "99.10",
                "X": "FILLED",
                "l": "0.014",
                "z": "0.014",
                "T": E,
            },
        },
    },
    "ack": {"result": None, "id": 3},
    "serverShutdown": {"e": "serverShutdown", "E": E},
}

USER_FRAMES = {
    "ORDER_TRADE_UPDATE": {
        "e": "ORDER_TRADE_UPDATE",
        "E": E,
        "T": E,
        "o": {
            "s": SYM,
            "c": "eb1-0",
            "S": "BUY",
            "o": "LIMIT",
            "f": "GTC",
            "q": "0.010",
            "p": "100.00",
            "ap": "100.00",
            "x": "TRADE",
            "X": "FILLED",
            "i": 77,
            "l": "0.010",
            "z": "0.010",
            "L": "100.00",
            "n": "0.0004",
            "N": "USDT",
            "T": E,
            "t": 9,
            "m": True,
            "R": False,
        },
    },
    "executionReport": {
        "e": "executionReport",
        "E": E,
        "s": SYM,
        "c": "eb1-0",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "0.010",
        "p": "100.00",
        "x": "TRADE",
        "X": "PARTIALLY_FILLED",
        "r": "NONE",
        "i": 77,
        "l": "0.004",
        "z": "0.004",
        "L": "100.00",
        "n": "0.00001",
        "N": "BTC",
        "T": E,
        "t": 9,
        "m": False,
    },
    "ACCOUNT_UPDATE": {
        "e": "ACCOUNT_UPDATE",
        "E": E,
        "T": E,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": "100", "cw": "100", "bc": "0"}],
            "P": [{"s": SYM, "pa": "0.010", "ep": "100", "up": "0", "mt": "cross"}],
        },
    },
    "balanceUpdate": {"e": "balanceUpdate", "E": E, "a": "USDT", "d": "10.0", "T": E},
    "outboundAccountPosition": {
        "e": "outboundAccountPosition",
        "E": E,
        "u": E,
        "B": [{"a": "USDT", "f": "100.0", "l": "0.0"}],
    },
}

ORDER_ANSWER = {
    "symbol": SYM,
    "orderId": 77,
    "clientOrderId": "eb1-0",
    "status": "NEW",
    "executedQty": "0.000",
    "origQty": "0.010",
    "price": "100.00",
    "side": "BUY",
    "type": "LIMIT",
    "updateTime": E,
    "fills": [{"price": "100.00", "qty": "0.010", "commission": "0.0004", "commissionAsset": "USDT", "tradeId": 9}],
}

hostile_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["x", "", "0", "0.000", "-1", "1e5", "NaN", "Infinity", "-0.0", "1" * 100, "１", "0x10", " 1"]),
)
hostile = st.recursive(
    hostile_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8,
)


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _mutate(template, path, value, delete: bool):
    frame = copy.deepcopy(template)
    target = frame
    for key in path[:-1]:
        target = target[key]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return frame


def mutated(templates: dict):
    def build(draw):
        name = draw(st.sampled_from(sorted(templates)))
        template = templates[name]
        path = draw(st.sampled_from(list(_paths(template))))
        return name, _mutate(template, path, draw(hostile), draw(st.booleans()))

    return st.composite(lambda draw: build(draw))()


def trading_engine() -> Engine:
    t = [E * 1_000_000]

    def clock():
        t[0] += 1_000_000
        return t[0]

    trader = Trader(get_strategy("quoter", {"half_spread_ticks": 1}), {SYM: BTC}, session=1)
    engine = Engine(EngineConfig(venue=VenueRules.USDM, symbols=(SYM,)), clock, trader=trader)
    engine.handle(ev.SymbolSpec(symbol=SYM, tick_size="0.10", step_size="0.001", min_notional="5"))
    for _command in engine.start():
        pass
    engine.handle(ev.SessionOpened(epoch=engine.epoch, url="wss://x"))
    for command in engine.handle(ev.SubscriptionConfirmed(epoch=engine.epoch, request_id=1)):
        if type(command) is ev.FetchSnapshot:
            engine.handle(
                ev.SnapshotReady(
                    epoch=engine.epoch,
                    symbol=SYM,
                    request_id=command.request_id,
                    last_update_id=100,
                    bids=[["100.00", "1.000"]],
                    asks=[["101.00", "1.000"]],
                )
            )
    return engine


ENGINE = trading_engine()


def feed(engine: Engine, event) -> None:
    """What the loop does with a decoded event; must not raise."""
    if isinstance(event, ev.MarketEvent):
        event.epoch = engine.epoch
        engine.handle(event)


# ------------------------------------------------------------------ market streams


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(MARKET_FRAMES), st.booleans())
def test_a_market_frame_with_any_field_hostile_is_refused_or_handled_without_raising(case, fast):
    name, frame = case
    raw = orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS) if _jsonable(frame) else b"{"
    try:
        event = decode_frame(raw, ENGINE.epoch, E * 1_000_000, {SYM: (2, 3)} if fast else None)
    except FrameError as exc:
        assert exc.event == "" or isinstance(exc.event, str)
        return
    feed(ENGINE, event)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_are_refused_as_frame_errors(raw):
    try:
        event = decode_frame(raw, ENGINE.epoch, 0, {SYM: (2, 3)})
    except FrameError:
        return
    feed(ENGINE, event)


@pytest.mark.parametrize(
    "name, path, value",
    [
        ("depth", ("data", "E"), "x"),
        ("aggTrade", ("data", "E"), "x"),
        ("aggTrade", ("data", "T"), "x"),
        ("markPrice", ("data", "T"), "x"),
        ("kline", ("data", "k", "t"), "x"),
        ("aggTrade", ("data", "p"), "NaN"),
        ("aggTrade", ("data", "q"), "0.000"),
        ("markPrice", ("data", "r"), "Infinity"),
        ("depth", ("data", "U"), True),
        ("bookTicker", ("data", "b"), 100.5),
    ],
)
def test_the_known_killers_are_refused_at_decode_with_their_route(name, path, value):
    frame = _mutate(MARKET_FRAMES[name], path, value, False)

    with pytest.raises(FrameError) as caught:
        decode_frame(orjson.dumps(frame), 1, 0, {SYM: (2, 3)})

    assert caught.value.symbol == SYM


def test_oversized_frames_are_refused_or_handled():
    huge_levels = dict(MARKET_FRAMES["depth"])
    huge_levels["data"] = {**MARKET_FRAMES["depth"]["data"], "b": [["100.00", "1.000"]] * 50_000}
    for frame in (
        huge_levels,
        {"data": {"e": "aggTrade", "s": "S" * 100_000}},
        {"e": "kline", "k": {"i": "x" * 10_000}},
    ):
        try:
            event = decode_frame(orjson.dumps(frame), ENGINE.epoch, 0)
        except FrameError:
            continue
        feed(ENGINE, event)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["bids", "asks", "lastUpdateId", "E"]), hostile)
def test_a_rest_depth_snapshot_with_a_hostile_field_is_refused(field, value):
    body = {"lastUpdateId": 100, "E": E, "bids": [["100.00", "1.000"]], "asks": [["101.00", "1.000"]], field: value}
    try:
        last_id, bids, asks, exch = decode_snapshot(
            orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS) if _jsonable(body) else b"["
        )
    except FrameError:
        return
    assert type(last_id) is int and type(exch) is int and type(bids) is list and type(asks) is list


# ------------------------------------------------------------------ user data and order answers


class _Rest:
    """Answers every signed request with ``body`` (or raises it)."""

    market, prefix, base_url = "usdm", "/fapi/v1", "http://127.0.0.1:1"

    def __init__(self, body) -> None:
        self.body = body

    async def signed(self, *args, **kw):
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


def gateway(body=None) -> tuple[OrderGateway, Inbox]:
    inbox = Inbox(1000)
    gw = OrderGateway(
        _Rest(body),
        ws_base="ws://127.0.0.1:1",
        api_key="k",
        api_secret="s",
        inbox=inbox,
        codecs={SYM: BTC.codec},
        quote_assets={SYM: "USDT"},
        clock=lambda: E * 1_000_000,
    )
    return gw, inbox


def drain(inbox: Inbox) -> list:
    out = []
    while (event := inbox.next()) is not None:
        out.append(event)
    return out


def trader_engine_with_order() -> tuple[Engine, str]:
    engine = trading_engine()
    trader = engine.trader
    from epochbot.trading.strategy import OrderIntent

    command = trader.orders.place(OrderIntent(SYM, "BUY", 10, 1000, tag="bid"), E * 1_000_000)
    return engine, command.client_order_id


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(USER_FRAMES))
def test_a_user_data_frame_with_any_field_hostile_is_dropped_or_applied_without_raising(case):
    name, frame = case
    gw, _ = gateway()
    engine, coid = trader_engine_with_order()
    raw = orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS) if _jsonable(frame) else b"{"

    events = gw.user_events(raw)

    for event in events:
        assert type(event) is tev.VenueDataError or problem(event) is None
        engine.handle(event)
    assert gw.account_stream.stats["unreadable"] in (0, 1)


def test_an_account_stream_trade_with_last_quantity_zero_is_dropped_and_its_order_reconciled():
    frame = _mutate(USER_FRAMES["ORDER_TRADE_UPDATE"], ("o", "l"), "0.000", False)
    gw, _ = gateway()
    engine, coid = trader_engine_with_order()
    frame["o"]["c"] = coid

    events = gw.user_events(orjson.dumps(frame))
    commands = [c for e in events for c in engine.handle(e)]

    assert [type(e) for e in events] == [tev.VenueDataError]
    assert gw.account_stream.stats["unreadable"] == 1
    assert engine.trader.orders.orders[coid].state.value == "UNKNOWN"
    assert [type(c) for c in commands] == [tev.QueryOrder]
    assert engine.trader.portfolio.qty(SYM) == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["place", "cancel", "query"]), st.sampled_from(list(_paths(ORDER_ANSWER))), hostile, st.booleans()
)
def test_an_order_route_answer_with_any_field_hostile_becomes_a_sound_event(route, path, value, delete):
    body = _mutate(ORDER_ANSWER, path, value, delete)
    gw, inbox = gateway(body)
    engine, coid = trader_engine_with_order()
    place = ev.PlaceOrder(
        symbol=SYM,
        side="BUY",
        order_type="LIMIT",
        qty="0.010",
        price="100.00",
        time_in_force="GTC",
        client_order_id=coid,
    )
    coro = {
        "place": lambda: gw._place(place),
        "cancel": lambda: gw._cancel(ev.CancelOrder(symbol=SYM, client_order_id=coid)),
        "query": lambda: gw._query(tev.QueryOrder(symbol=SYM, client_order_id=coid)),
    }[route]

    asyncio.run(coro())

    for event in drain(inbox):
        assert problem(event) is None
        engine.handle(event)


def test_an_order_answer_that_is_not_an_object_is_an_unknown_outcome():
    gw, inbox = gateway(["not", "an", "object"])
    asyncio.run(
        gw._place(
            ev.PlaceOrder(
                symbol=SYM, side="BUY", order_type="LIMIT", qty="0.010", price="100.00", client_order_id="eb1-0"
            )
        )
    )
    assert [type(e) for e in drain(inbox)] == [tev.OrderUnknown]
    gw, inbox = gateway(RestError(503, "Unknown error"))
    asyncio.run(
        gw._place(
            ev.PlaceOrder(
                symbol=SYM, side="BUY", order_type="LIMIT", qty="0.010", price="100.00", client_order_id="eb1-0"
            )
        )
    )
    assert [type(e) for e in drain(inbox)] == [tev.OrderUnknown]


def test_fill_checks_refuse_non_finite_fees_and_non_positive_quantities():
    good = tev.Fill(client_order_id="eb1-0", symbol=SYM, side="BUY", qty=1, price=1, fee=Decimal("0.1"), ts_ns=1)
    assert problem(good) is None
    for bad in (
        dict(qty=0),
        dict(price=0),
        dict(fee=Decimal("NaN")),
        dict(fee=Decimal("Infinity")),
        dict(side="HOLD"),
        dict(qty=True),
    ):
        fields = {
            "client_order_id": "eb1-0",
            "symbol": SYM,
            "side": "BUY",
            "qty": 1,
            "price": 1,
            "fee": Decimal("0.1"),
            "ts_ns": 1,
            **bad,
        }
        assert problem(tev.Fill(**fields)) is not None, bad


def _jsonable(obj) -> bool:
    try:
        orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
        return True
    except (TypeError, orjson.JSONEncodeError):
        return False

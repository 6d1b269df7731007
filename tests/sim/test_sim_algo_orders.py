"""USD-M conditional orders in the simulator's Algo Service, as Binance runs them since 2025-12-09.

The venue is driven directly on a market the test moves (mark and last trade price apart), so
every trigger is exact; then the same flows over loopback: REST and the WebSocket API against an
in-process simulator, the user-data events on a /private socket, the trigger on the live mark.
"""

from __future__ import annotations

import time

import pytest

from epochbot.sim.auth import SimApiError
from epochbot.sim.market import fixed
from epochbot.sim.matching.records import CONDITIONAL_TYPES, MAX_OPEN_ALGO_ORDERS
from epochbot.sim.server import SimConfig, SimExchange
from epochbot.sim.weights import request_weight
from epochbot.venues.binance.signing import Signer
from tests.sim.usdm_helpers import (
    NOW,
    MovingMarket,
    Rest,
    algo,
    algo_statuses,
    events,
    is_algo,
    kinds,
    market_order,
    next_event,
    usdm_venue,
    user_socket,
)


def long_position(qty: str = "0.010", price: str = "1000.00"):
    """A venue whose account holds a long of ``qty`` bought at ``price``, its events drained."""
    venue = usdm_venue()
    book = MovingMarket.at(price)
    venue.place_order("acct-1", market_order("BUY", qty), book, NOW)
    venue.drain_user_events()
    return venue, book


def rejected(call) -> SimApiError:
    with pytest.raises(SimApiError) as info:
        call()
    return info.value


# ------------------------------------------------------------------ the order endpoint refuses them


@pytest.mark.parametrize("order_type", CONDITIONAL_TYPES)
def test_conditional_types_on_the_order_endpoint_are_refused_with_4120(order_type):
    venue = usdm_venue()
    params = {**market_order("SELL", "0.010"), "type": order_type, "stopPrice": "990.00", "price": "990.00"}

    error = rejected(lambda: venue.place_order("acct-1", params, MovingMarket.at("1000.00"), NOW))

    assert error.to_json() == {
        "code": -4120,
        "msg": "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    }
    assert venue.open_orders("acct-1", None) == [] and venue.drain_user_events() == []


# ------------------------------------------------------------------ triggers


def test_a_stop_market_close_position_triggers_on_the_mark_and_closes_the_whole_position():
    venue, book = long_position("0.010")
    placed = venue.place_algo(
        "acct-1",
        algo(
            "STOP_MARKET",
            "SELL",
            triggerPrice="990.00",
            closePosition="true",
            workingType="MARK_PRICE",
            clientAlgoId="sl-1",
        ),
        book,
        NOW + 1,
    )
    assert algo_statuses(events(venue)) == ["NEW"]

    venue.on_market(book.move("990.10"), NOW + 2)  # not there yet
    assert venue.drain_user_events() == []
    venue.on_market(book.move("989.90"), NOW + 3)
    evs = events(venue)

    assert kinds(evs) == [
        "ALGO:TRIGGERING",
        "ORDER:NEW",
        "ORDER:TRADE",
        "ACCOUNT_UPDATE",
        "ALGO:TRIGGERED",
        "ALGO:FINISHED",
    ]
    order = evs[2]["o"]
    assert (order["c"], order["o"], order["ot"], order["X"], order["q"], order["L"]) == (
        "sl-1",
        "MARKET",
        "STOP_MARKET",
        "FILLED",
        "0.010",
        "989.90",
    )
    assert (order["cp"], order["sp"], order["wt"], order["ps"]) == (True, "990.00", "MARK_PRICE", "BOTH")
    assert evs[3]["a"]["P"][0]["pa"] == "0.000"
    triggered, finished = evs[4]["o"], evs[5]["o"]
    assert triggered["aid"] == placed["algoId"] and triggered["ai"] == str(order["i"]) and triggered["act"] == "MARKET"
    assert (finished["ap"], finished["aq"], finished["tt"]) == ("989.90", "0.010", NOW + 3)
    assert venue.position_risk("acct-1", "BTCUSDT", {})[0]["positionAmt"] == "0.000"
    query = venue.query_algo("acct-1", {"clientAlgoId": "sl-1"})
    assert (query["algoStatus"], query["actualOrderId"], query["actualQty"]) == ("FINISHED", str(order["i"]), "0.010")


def test_mark_price_orders_watch_the_mark_and_contract_price_orders_the_last_trade():
    venue, book = long_position("0.010")
    for working_type, caid in (("MARK_PRICE", "by-mark"), ("CONTRACT_PRICE", "by-last")):
        venue.place_algo(
            "acct-1",
            algo(
                "STOP_MARKET",
                "SELL",
                triggerPrice="990.00",
                quantity="0.005",
                reduceOnly="true",
                workingType=working_type,
                clientAlgoId=caid,
            ),
            book,
            NOW,
        )
    venue.drain_user_events()

    venue.on_market(book.move("989.00", last="1000.00"), NOW + 1)
    by_mark = [e["o"]["caid"] for e in events(venue) if e["e"] == "ALGO_UPDATE" and e["o"]["X"] == "FINISHED"]
    venue.on_market(book.move("989.00", last="989.00"), NOW + 2)
    by_last = [e["o"]["caid"] for e in events(venue) if e["e"] == "ALGO_UPDATE" and e["o"]["X"] == "FINISHED"]

    assert (by_mark, by_last) == (["by-mark"], ["by-last"])


@pytest.mark.parametrize(
    ("order_type", "side", "trigger"),
    [
        ("STOP_MARKET", "SELL", "1000.00"),
        ("STOP_MARKET", "BUY", "999.90"),
        ("TAKE_PROFIT_MARKET", "SELL", "999.90"),
        ("TAKE_PROFIT_MARKET", "BUY", "1000.10"),
    ],
)
def test_an_order_that_would_trigger_at_once_is_refused_with_2021(order_type, side, trigger):
    venue = usdm_venue()

    error = rejected(
        lambda: venue.place_algo(
            "acct-1", algo(order_type, side, triggerPrice=trigger, quantity="0.010"), MovingMarket.at("1000.00"), NOW
        )
    )

    assert (error.code, error.msg) == (-2021, "Order would immediately trigger.")


def test_a_take_profit_limit_rests_in_the_book_when_triggered_and_finishes_when_filled():
    venue, book = long_position("0.010")
    venue.place_algo(
        "acct-1",
        algo(
            "TAKE_PROFIT",
            "SELL",
            triggerPrice="1010.00",
            price="1020.00",
            quantity="0.010",
            reduceOnly="true",
            timeInForce="GTC",
            clientAlgoId="tp-1",
        ),
        book,
        NOW,
    )
    venue.drain_user_events()

    venue.on_market(book.move("1010.00"), NOW + 1)
    assert kinds(events(venue)) == ["ALGO:TRIGGERING", "ORDER:NEW", "ALGO:TRIGGERED"]
    (child,) = venue.open_orders("acct-1", "BTCUSDT")
    assert (child["type"], child["origType"], child["price"], child["stopPrice"], child["clientOrderId"]) == (
        "LIMIT",
        "TAKE_PROFIT",
        "1020.00",
        "1010.00",
        "tp-1",
    )
    assert venue.open_algos("acct-1", "BTCUSDT", {}) == []
    assert venue.query_algo("acct-1", {"clientAlgoId": "tp-1"})["algoStatus"] == "TRIGGERED"

    venue.on_market(book.move("1020.00"), NOW + 2)
    assert kinds(events(venue)) == ["ORDER:TRADE", "ACCOUNT_UPDATE", "ALGO:FINISHED"]


def test_a_reduce_only_trigger_without_a_position_is_rejected_and_places_nothing():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.place_algo(
        "acct-1", algo("STOP_MARKET", "SELL", triggerPrice="990.00", quantity="0.010", reduceOnly="true"), book, NOW
    )
    venue.drain_user_events()

    venue.on_market(book.move("989.00"), NOW + 1)
    evs = events(venue)

    assert kinds(evs) == ["ALGO:TRIGGERING", "ALGO:REJECTED"]
    assert evs[-1]["o"]["rm"] == "Reduce Only reject"
    assert venue.open_orders("acct-1", None) == [] and venue.all_orders("acct-1", "BTCUSDT") == []


def test_a_close_position_stop_left_after_the_position_was_closed_is_rejected_when_it_triggers():
    venue, book = long_position("0.010")
    venue.place_algo("acct-1", algo("STOP_MARKET", "SELL", triggerPrice="990.00", closePosition="true"), book, NOW)
    venue.place_order("acct-1", market_order("SELL", "0.010"), book, NOW + 1)
    venue.drain_user_events()

    venue.on_market(book.move("989.00"), NOW + 2)

    assert algo_statuses(events(venue)) == ["TRIGGERING", "REJECTED"]


def test_a_triggered_order_that_would_grow_a_position_the_account_cannot_margin_is_rejected():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.place_algo("acct-1", algo("STOP_MARKET", "BUY", triggerPrice="1010.00", quantity="2500.000"), book, NOW)
    venue.drain_user_events()

    venue.on_market(book.move("1010.00"), NOW + 1)
    evs = events(venue)

    assert kinds(evs) == ["ALGO:TRIGGERING", "ALGO:REJECTED"] and evs[-1]["o"]["rm"] == "Margin is insufficient."


def test_a_reduce_only_trigger_never_grows_the_position_beyond_flat():
    venue, book = long_position("0.010")
    venue.place_algo(
        "acct-1", algo("STOP_MARKET", "SELL", triggerPrice="990.00", quantity="0.020", reduceOnly="true"), book, NOW
    )
    venue.drain_user_events()

    venue.on_market(book.move("989.00"), NOW + 1)

    assert algo_statuses(events(venue)) == ["TRIGGERING", "REJECTED"]
    assert venue.position_risk("acct-1", "BTCUSDT", {})[0]["positionAmt"] == "0.010"


def test_a_trailing_stop_sell_activates_at_its_price_and_triggers_on_the_callback_from_the_high():
    venue, book = long_position("0.010")
    venue.place_algo(
        "acct-1",
        algo(
            "TRAILING_STOP_MARKET",
            "SELL",
            quantity="0.010",
            reduceOnly="true",
            activatePrice="1010.00",
            callbackRate="1",
            workingType="MARK_PRICE",
            clientAlgoId="trail",
        ),
        book,
        NOW,
    )
    venue.drain_user_events()

    for price in ("1005.00", "1012.00", "1005.00", "1001.90"):  # 1% under the 1012.00 high is 1001.88
        venue.on_market(book.move(price), NOW + 1)
    assert venue.drain_user_events() == []
    venue.on_market(book.move("1001.80"), NOW + 2)
    evs = events(venue)

    assert algo_statuses(evs) == ["TRIGGERING", "TRIGGERED", "FINISHED"]
    assert evs[0]["o"]["ia"] is True
    assert venue.position_risk("acct-1", "BTCUSDT", {})[0]["positionAmt"] == "0.000"


def test_a_trailing_stop_whose_activation_price_is_already_passed_is_refused_with_2021():
    venue, book = long_position("0.010")

    error = rejected(
        lambda: venue.place_algo(
            "acct-1",
            algo("TRAILING_STOP_MARKET", "SELL", quantity="0.010", activatePrice="995.00", callbackRate="1"),
            book,
            NOW,
        )
    )

    assert error.code == -2021


def test_price_protection_holds_the_trigger_while_mark_and_last_price_are_too_far_apart():
    venue, book = long_position("0.010")
    venue.place_algo(
        "acct-1",
        algo(
            "STOP_MARKET",
            "SELL",
            triggerPrice="990.00",
            closePosition="true",
            workingType="MARK_PRICE",
            priceProtect="TRUE",
        ),
        book,
        NOW,
    )
    venue.drain_user_events()

    venue.on_market(book.move("985.00", last="1040.00"), NOW + 1)  # 5.6 % apart: over triggerProtect 5 %
    held = venue.drain_user_events()
    venue.on_market(book.move("985.00", last="986.00"), NOW + 2)

    assert held == [] and algo_statuses(events(venue)) == ["TRIGGERING", "TRIGGERED", "FINISHED"]


# ------------------------------------------------------------------ what a placement is refused for


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"algoType": ""}, -1102),
        ({"algoType": "VP"}, -1130),
        ({"type": "LIMIT"}, -1116),
        ({"side": "UP"}, -1117),
        ({"triggerPrice": ""}, -1102),
        ({"triggerPrice": "990.05"}, -1013),
        ({"quantity": ""}, -1102),
        ({"quantity": "0.0005"}, -1013),
        ({"workingType": "INDEX_PRICE"}, -4031),
        ({"closePosition": "true"}, -4137),
        ({"closePosition": "true", "quantity": "", "reduceOnly": "false"}, -1106),
        ({"type": "STOP", "price": "989.00", "closePosition": "true", "quantity": ""}, -4136),
        ({"type": "STOP"}, -1102),
        ({"type": "STOP", "price": "989.00", "timeInForce": "DAY"}, -1115),
        ({"positionSide": "LONG"}, -4061),
        ({"positionSide": "MIDDLE"}, -4060),
        ({"quantity": "0.001", "triggerPrice": "990.00"}, -4164),
        ({"clientAlgoId": "has space"}, -1100),
        ({"priceProtect": "maybe"}, -1130),
        ({"type": "TRAILING_STOP_MARKET", "callbackRate": "25"}, -1130),
        ({"type": "TRAILING_STOP_MARKET", "callbackRate": "0.15"}, -1130),
        ({"type": "TRAILING_STOP_MARKET"}, -1102),
        ({"priceMatch": "OPPONENT"}, -1130),
        ({"timeInForce": "GTD"}, -1115),
        ({"newOrderRespType": "FULL"}, -1136),
        ({"selfTradePreventionMode": "EXPIRE_ALL"}, -1130),
    ],
)
def test_each_bad_parameter_is_refused_with_binances_code(overrides, code):
    venue = usdm_venue()
    params = {**algo("STOP_MARKET", "SELL", triggerPrice="990.00", quantity="0.010"), **overrides}
    params = {k: v for k, v in params.items() if v != ""}

    error = rejected(lambda: venue.place_algo("acct-1", params, MovingMarket.at("1000.00"), NOW))

    assert error.code == code
    assert venue.open_algos("acct-1", None, {}) == [] and venue.drain_user_events() == []


def test_a_client_algo_id_is_refused_while_an_open_conditional_order_holds_it_and_free_again_after():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    params = algo("STOP_MARKET", "BUY", triggerPrice="1010.00", quantity="0.010", clientAlgoId="same")
    venue.place_algo("acct-1", params, book, NOW)

    error = rejected(lambda: venue.place_algo("acct-1", params, book, NOW))
    venue.cancel_algo("acct-1", {"clientAlgoId": "same"}, NOW)
    again = venue.place_algo("acct-1", params, book, NOW)

    assert (error.code, error.msg) == (-4116, "ClientOrderId is duplicated.")
    assert venue.query_algo("acct-1", {"clientAlgoId": "same"})["algoId"] == again["algoId"]


def test_more_than_200_open_conditional_orders_are_refused_with_4045():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    for i in range(MAX_OPEN_ALGO_ORDERS):
        venue.place_algo(
            "acct-1", algo("STOP_MARKET", "BUY", triggerPrice=f"{1010 + i}.00", quantity="0.010"), book, NOW
        )

    error = rejected(
        lambda: venue.place_algo(
            "acct-1", algo("STOP_MARKET", "BUY", triggerPrice="1500.00", quantity="0.010"), book, NOW
        )
    )

    assert (error.code, error.msg) == (-4045, "Reach max stop order limit.")


# ------------------------------------------------------------------ cancel, query, lists


def test_cancel_query_and_the_lists_follow_each_conditional_order():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    first = venue.place_algo("acct-1", algo("STOP_MARKET", "BUY", triggerPrice="1010.00", quantity="0.010"), book, NOW)
    second = venue.place_algo(
        "acct-1",
        algo("TAKE_PROFIT_MARKET", "BUY", triggerPrice="990.00", quantity="0.010", clientAlgoId="tp"),
        book,
        NOW,
    )
    venue.drain_user_events()

    canceled = venue.cancel_algo("acct-1", {"algoId": str(first["algoId"])}, NOW + 1)
    again = rejected(lambda: venue.cancel_algo("acct-1", {"algoId": str(first["algoId"])}, NOW + 2))
    unknown = rejected(lambda: venue.query_algo("acct-1", {"algoId": "12345"}))
    neither = rejected(lambda: venue.cancel_algo("acct-1", {}, NOW))

    assert canceled == {
        "algoId": first["algoId"],
        "clientAlgoId": first["clientAlgoId"],
        "code": "200",
        "msg": "success",
    }
    assert algo_statuses(events(venue)) == ["CANCELED"]
    assert (again.code, unknown.code, neither.code) == (-2011, -2013, -1102)
    assert [a["clientAlgoId"] for a in venue.open_algos("acct-1", "BTCUSDT", {})] == ["tp"]
    assert [a["algoStatus"] for a in venue.all_algos("acct-1", "BTCUSDT")] == ["CANCELED", "NEW"]
    assert [a["algoId"] for a in venue.all_algos("acct-1", "BTCUSDT", algo_id=second["algoId"])] == [second["algoId"]]

    assert venue.cancel_all_algos("acct-1", {"symbol": "BTCUSDT"}, NOW + 3) == {
        "code": 200,
        "msg": "The operation of cancel all open order is done.",
    }
    assert venue.open_algos("acct-1", None, {}) == [] and algo_statuses(events(venue)) == ["CANCELED"]


def test_the_algo_endpoints_carry_binances_documented_weights():
    assert request_weight("usdm", "/fapi/v1/algoOrder", {}, "POST") == 0
    assert request_weight("usdm", "/fapi/v1/algoOrder", {}, "GET") == 1
    assert request_weight("usdm", "/fapi/v1/algoOrder", {}, "DELETE") == 1
    assert request_weight("usdm", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"}) == 1
    assert request_weight("usdm", "/fapi/v1/openAlgoOrders", {}) == 40
    assert request_weight("usdm", "/fapi/v1/algoOpenOrders", {}, "DELETE") == 1
    assert request_weight("usdm", "/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT"}) == 5


# ------------------------------------------------------------------ over loopback


@pytest.fixture
async def live():
    async with SimExchange(SimConfig(market="usdm", symbols=["BTCUSDT"], seed=7, rate=50, tick_s=0.02)) as sim:
        yield sim


async def test_the_rest_order_endpoint_and_order_place_refuse_a_stop_market_with_4120(live, http):
    rest = Rest(http, live.rest_url)
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.010", "stopPrice": "1000.00"}

    code = await rest.error("POST", "/fapi/v1/order", **params)
    async with http.ws_connect(live.ws_url + "/ws-fapi/v1") as ws:
        signed = Signer("sim-key", "sim-secret").sign_ws(params, int(time.time() * 1000))
        await ws.send_json({"id": "stop", "method": "order.place", "params": signed})
        answer = await ws.receive_json(timeout=5)

    assert code == -4120 and answer["status"] == 400 and answer["error"]["code"] == -4120


async def test_a_stop_and_take_profit_bracket_on_the_live_mark_closes_the_position_through_rest(live, http):
    rest = Rest(http, live.rest_url)
    ws = await user_socket(http, live)
    m = live.market("BTCUSDT")
    live.pause_market()  # a still market while the bracket is placed: no trigger can fire early
    try:
        await rest.ok("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.010")
        mark = m.mark_price()
        for order_type, trigger, caid in (
            ("STOP_MARKET", mark - 2 * m.tick, "sl"),
            ("TAKE_PROFIT_MARKET", mark + 2 * m.tick, "tp"),
        ):
            placed = await rest.ok(
                "POST",
                "/fapi/v1/algoOrder",
                algoType="CONDITIONAL",
                symbol="BTCUSDT",
                side="SELL",
                type=order_type,
                triggerPrice=fixed(trigger, 2),
                closePosition="true",
                workingType="MARK_PRICE",
                clientAlgoId=caid,
            )
            assert (placed["algoStatus"], placed["clientAlgoId"], placed["closePosition"]) == ("NEW", caid, True)
        listed = await rest.ok("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")
        assert sorted(a["clientAlgoId"] for a in listed) == ["sl", "tp"]

        live.resume_market()  # the mark walks out of the 4-tick band one way or the other
        finished = await next_event(
            ws, lambda e: e.get("e") == "ALGO_UPDATE" and e["o"]["X"] == "FINISHED", "a FINISHED bracket leg", 15
        )
        live.pause_market()
        caid = finished["o"]["caid"]
        await rest.ok("DELETE", "/fapi/v1/algoOpenOrders", symbol="BTCUSDT")  # the other leg, if still open
        child = await rest.ok("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId=caid)
        risk = await rest.ok("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
        query = await rest.ok("GET", "/fapi/v1/algoOrder", clientAlgoId=caid)
    finally:
        await ws.close()

    assert (child["status"], child["type"], child["origType"], child["closePosition"]) == (
        "FILLED",
        "MARKET",
        "STOP_MARKET" if caid == "sl" else "TAKE_PROFIT_MARKET",
        True,
    )
    assert risk[0]["positionAmt"] == "0.000"
    assert (query["algoStatus"], query["actualOrderId"]) == ("FINISHED", str(child["orderId"]))
    assert await rest.ok("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT") == []


async def test_the_websocket_api_places_and_cancels_an_algo_order_seen_on_the_user_stream(live, http):
    ws = await user_socket(http, live)
    signer = Signer("sim-key", "sim-secret")
    mark = live.market("BTCUSDT").mark_price()
    try:
        async with http.ws_connect(live.ws_url + "/ws-fapi/v1") as api:
            params = {
                "algoType": "CONDITIONAL",
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "STOP_MARKET",
                "quantity": "0.010",
                "triggerPrice": fixed(mark + 1000 * 10, 2),
                "clientAlgoId": "ws-stop",
            }
            await api.send_json(
                {"id": 1, "method": "algoOrder.place", "params": signer.sign_ws(params, int(time.time() * 1000))}
            )
            placed = await api.receive_json(timeout=5)
            new = await next_event(ws, is_algo("ws-stop", "NEW"), "ALGO_UPDATE NEW")
            cancel = {"clientAlgoId": "ws-stop"}
            await api.send_json(
                {"id": 2, "method": "algoOrder.cancel", "params": signer.sign_ws(cancel, int(time.time() * 1000))}
            )
            canceled = await api.receive_json(timeout=5)
            gone = await next_event(ws, is_algo("ws-stop", "CANCELED"), "ALGO_UPDATE CANCELED")
    finally:
        await ws.close()

    assert placed["status"] == 200 and placed["result"]["algoStatus"] == "NEW" and "rateLimits" in placed
    assert canceled["result"] == {
        "algoId": placed["result"]["algoId"],
        "clientAlgoId": "ws-stop",
        "code": "200",
        "msg": "success",
    }
    assert new["o"]["aid"] == gone["o"]["aid"] == placed["result"]["algoId"]


def test_a_gte_gtc_take_profit_expires_when_its_stop_closes_the_position():
    venue, book = long_position("0.010")
    for order_type, trigger, caid in (("STOP_MARKET", "990.00", "sl"), ("TAKE_PROFIT_MARKET", "1010.00", "tp")):
        venue.place_algo(
            "acct-1",
            algo(
                order_type, "SELL", triggerPrice=trigger, closePosition="true", timeInForce="GTE_GTC", clientAlgoId=caid
            ),
            book,
            NOW,
        )
    venue.drain_user_events()

    venue.on_market(book.move("989.00"), NOW + 1)
    evs = events(venue)

    assert [(e["o"]["caid"], e["o"]["X"]) for e in evs if e["e"] == "ALGO_UPDATE"] == [
        ("sl", "TRIGGERING"),
        ("sl", "TRIGGERED"),
        ("sl", "FINISHED"),
        ("tp", "EXPIRED"),
    ]
    assert kinds(evs).index("ACCOUNT_UPDATE") < kinds(evs).index("ALGO:EXPIRED")
    assert venue.open_algos("acct-1", None, {}) == []


def test_a_gte_gtc_stop_expires_when_the_position_is_closed_by_hand():
    venue, book = long_position("0.010")
    venue.place_algo(
        "acct-1",
        algo("STOP_MARKET", "SELL", triggerPrice="990.00", closePosition="true", timeInForce="GTE_GTC"),
        book,
        NOW,
    )
    venue.drain_user_events()

    venue.place_order("acct-1", market_order("SELL", "0.010"), book, NOW + 1)

    assert kinds(events(venue)) == ["ORDER:NEW", "ORDER:TRADE", "ACCOUNT_UPDATE", "ALGO:EXPIRED"]

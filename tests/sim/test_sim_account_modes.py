"""USD-M account settings in the simulator: leverage, margin type, hedge mode, Multi-Assets mode, and
what follows from them (positions per side, liquidation prices, the refusals Binance documents).

The venue is driven directly (exact numbers); then the endpoints over loopback against an
in-process simulator, REST and the WebSocket API.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from epochbot.sim.auth import SimApiError
from epochbot.sim.config import SimConfig
from epochbot.sim.server import SimExchange
from epochbot.sim.weights import request_weight
from epochbot.venues.binance.signing import Signer
from tests.sim.usdm_helpers import NOW, MovingMarket, Rest, algo, events, market_order, usdm_venue


def rejected(call) -> SimApiError:
    with pytest.raises(SimApiError) as info:
        call()
    return info.value


def hedged(**extra):
    venue = usdm_venue(hedge_mode=True, **extra)
    return venue, MovingMarket.at("1000.00")


def row(venue, side: str = "BOTH") -> dict:
    return next(r for r in venue.position_risk("acct-1", "BTCUSDT", {}) if r["positionSide"] == side)


def resting_buy(**extra: str) -> dict[str, str]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "900.00",
        **extra,
    }


# ------------------------------------------------------------------ leverage


def test_leverage_changes_per_symbol_and_answers_with_its_bracket_notional():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.place_order("acct-1", market_order("BUY", "1.000"), book, NOW)

    answer = venue.change_leverage("acct-1", {"symbol": "BTCUSDT", "leverage": "10"})

    assert answer == {"leverage": 10, "maxNotionalValue": "10000000", "symbol": "BTCUSDT"}
    assert (row(venue)["leverage"], row(venue)["maxNotionalValue"]) == ("10", "10000000")
    position = next(p for p in venue.account("acct-1", NOW)["positions"] if p["symbol"] == "BTCUSDT")
    assert position["positionInitialMargin"] == "100.00000000"  # 1000 USDT notional at 10x
    assert venue.symbol_config("acct-1", "BTCUSDT")[0]["leverage"] == 10


@pytest.mark.parametrize(("leverage", "code"), [("0", -4028), ("126", -4028), ("ten", -4028), ("", -1102)])
def test_a_leverage_outside_1_to_125_is_refused(leverage, code):
    venue = usdm_venue()

    error = rejected(lambda: venue.change_leverage("acct-1", {"symbol": "BTCUSDT", "leverage": leverage}))

    assert error.code == code and row(venue)["leverage"] == "20"
    if code == -4028:
        assert error.msg == f"Leverage {leverage} is not valid"


def test_raising_leverage_beyond_what_the_position_fits_in_is_refused_with_2027():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.place_order("acct-1", market_order("BUY", "100.000"), book, NOW)  # 100,000 USDT notional

    error = rejected(lambda: venue.change_leverage("acct-1", {"symbol": "BTCUSDT", "leverage": "101"}))

    assert (error.code, row(venue)["leverage"]) == (-2027, "20")


def test_lowering_leverage_the_margin_cannot_cover_is_refused_with_2028_and_changes_nothing():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.place_order("acct-1", market_order("BUY", "900.000"), book, NOW)  # 45,000 USDT margin at 20x

    error = rejected(lambda: venue.change_leverage("acct-1", {"symbol": "BTCUSDT", "leverage": "2"}))

    assert (error.code, row(venue)["leverage"]) == (-2028, "20")


def test_an_order_beyond_the_bracket_notional_is_refused_with_2027():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.change_leverage("acct-1", {"symbol": "BTCUSDT", "leverage": "125"})  # 50,000 USDT at most

    error = rejected(lambda: venue.place_order("acct-1", market_order("BUY", "51.000"), book, NOW))

    assert (error.code, error.msg) == (-2027, "Exceeded the maximum allowable position at current leverage.")


# ------------------------------------------------------------------ margin type


def test_margin_type_changes_to_isolated_and_the_position_shows_its_isolated_wallet():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")

    answer = venue.change_margin_type("acct-1", {"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    venue.place_order("acct-1", market_order("BUY", "1.000"), book, NOW)

    assert answer == {"code": 200, "msg": "success"}
    r = row(venue)
    assert (r["marginType"], r["isolatedWallet"], r["isolatedMargin"]) == ("isolated", "50.00000000", "50.00000000")
    assert r["liquidationPrice"] == "953.82"  # (1000 - 50) / (1 - 0.004): the isolated wallet meets maintenance
    assert venue.symbol_config("acct-1", "BTCUSDT")[0]["marginType"] == "ISOLATED"
    assert next(p for p in venue.account("acct-1", NOW)["positions"] if p["symbol"] == "BTCUSDT")["isolated"] is True


def test_an_isolated_position_cannot_have_its_leverage_reduced():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.change_margin_type("acct-1", {"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    venue.place_order("acct-1", market_order("BUY", "1.000"), book, NOW)

    error = rejected(lambda: venue.change_leverage("acct-1", {"symbol": "BTCUSDT", "leverage": "10"}))

    assert error.code == -4161


@pytest.mark.parametrize(
    ("setup", "margin_type", "code", "msg"),
    [
        (None, "CROSSED", -4046, "No need to change margin type."),
        ("order", "ISOLATED", -4047, "Margin type cannot be changed if there exists open orders."),
        ("position", "ISOLATED", -4048, "Margin type cannot be changed if there exists position."),
        (None, "PARTIAL", -1130, "Data sent for parameter 'marginType' is not valid."),
    ],
)
def test_a_margin_type_change_binance_refuses_changes_nothing(setup, margin_type, code, msg):
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    if setup == "order":
        venue.place_order("acct-1", resting_buy(), book, NOW)
    elif setup == "position":
        venue.place_order("acct-1", market_order("BUY", "0.010"), book, NOW)

    error = rejected(lambda: venue.change_margin_type("acct-1", {"symbol": "BTCUSDT", "marginType": margin_type}))

    assert (error.code, error.msg) == (code, msg) and row(venue)["marginType"] == "cross"


# ------------------------------------------------------------------ liquidation prices


@pytest.mark.parametrize(("side", "qty"), [("BUY", "900.000"), ("SELL", "900.000"), ("BUY", "0.500")])
def test_the_cross_liquidation_price_is_where_the_margin_balance_meets_the_maintenance_margin(side, qty):
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    venue.place_order("acct-1", market_order(side, qty), book, NOW)
    r = row(venue)
    wallet = Decimal(venue.account("acct-1", NOW)["totalWalletBalance"])
    size, entry = Decimal(r["positionAmt"]), Decimal(r["entryPrice"])

    price = Decimal(r["liquidationPrice"])

    if price == 0:  # a small position the wallet covers at any price: no liquidation
        assert side == "BUY" and wallet > size * entry
        return
    balance = wallet + size * (price - entry)
    maintenance = abs(size) * price * Decimal("0.004")
    assert abs(balance - maintenance) <= abs(size) * Decimal("0.01")  # within the 0.01 rounding of the price


# ------------------------------------------------------------------ hedge mode


def test_the_position_mode_changes_only_while_the_account_is_flat_and_has_no_open_orders():
    venue, book = usdm_venue(), MovingMarket.at("1000.00")
    assert venue.position_mode("acct-1") == {"dualSidePosition": False}

    venue.place_order("acct-1", resting_buy(), book, NOW)
    with_order = rejected(lambda: venue.change_position_mode("acct-1", {"dualSidePosition": "true"}))
    venue.cancel_order("acct-1", {"symbol": "BTCUSDT", "orderId": "1000001"}, NOW)
    venue.place_algo("acct-1", algo("STOP_MARKET", "BUY", triggerPrice="1100.00", quantity="0.010"), book, NOW)
    with_stop = rejected(lambda: venue.change_position_mode("acct-1", {"dualSidePosition": "true"}))
    venue.cancel_all_algos("acct-1", {"symbol": "BTCUSDT"}, NOW)
    venue.place_order("acct-1", market_order("BUY", "0.010"), book, NOW)
    with_position = rejected(lambda: venue.change_position_mode("acct-1", {"dualSidePosition": "true"}))
    venue.place_order("acct-1", market_order("SELL", "0.010"), book, NOW)

    changed = venue.change_position_mode("acct-1", {"dualSidePosition": "true"})
    same = rejected(lambda: venue.change_position_mode("acct-1", {"dualSidePosition": "true"}))
    bad = rejected(lambda: venue.change_position_mode("acct-1", {"dualSidePosition": "yes"}))

    assert (with_order.code, with_stop.code, with_position.code) == (-4067, -4067, -4068)
    assert with_position.msg == "Position side cannot be changed if there exists position."
    assert changed == {"code": 200, "msg": "success"} and venue.position_mode("acct-1") == {"dualSidePosition": True}
    assert (same.code, same.msg, bad.code) == (-4059, "No need to change position side.", -1130)
    assert venue.account_config("acct-1")["dualSidePosition"] is True


@pytest.mark.parametrize(("hedge", "position_side"), [(True, None), (True, "BOTH"), (False, "LONG"), (False, "SHORT")])
def test_an_order_whose_position_side_does_not_match_the_mode_is_refused_with_4061(hedge, position_side):
    venue, book = usdm_venue(hedge_mode=hedge), MovingMarket.at("1000.00")
    params = market_order("BUY", "0.010", **({"positionSide": position_side} if position_side else {}))

    error = rejected(lambda: venue.place_order("acct-1", params, book, NOW))

    assert (error.code, error.msg) == (-4061, "Order's position side does not match user's setting.")


@pytest.mark.parametrize("value", ["true", "false"])
def test_hedge_mode_refuses_the_reduce_only_parameter_whatever_its_value(value):
    venue, book = hedged()

    error = rejected(
        lambda: venue.place_order(
            "acct-1", market_order("BUY", "0.010", positionSide="LONG", reduceOnly=value), book, NOW
        )
    )

    assert (error.code, error.msg) == (-1106, "Parameter 'reduceonly' sent when not required.")


def test_a_hedge_mode_account_holds_a_long_and_a_short_at_once_and_reports_each_side():
    venue, book = hedged()

    venue.place_order("acct-1", market_order("BUY", "0.010", positionSide="LONG"), book, NOW)
    venue.place_order("acct-1", market_order("SELL", "0.020", positionSide="SHORT"), book, NOW)
    evs = events(venue)

    assert [(r["positionSide"], r["positionAmt"]) for r in venue.position_risk("acct-1", "BTCUSDT", {})] == [
        ("LONG", "0.010"),
        ("SHORT", "-0.020"),
    ]
    updates = [(e["a"]["P"][0]["ps"], e["a"]["P"][0]["pa"]) for e in evs if e["e"] == "ACCOUNT_UPDATE"]
    assert updates == [("LONG", "0.010"), ("SHORT", "-0.020")]
    assert [e["o"]["ps"] for e in evs if e["e"] == "ORDER_TRADE_UPDATE"] == ["LONG", "LONG", "SHORT", "SHORT"]
    assert [t["positionSide"] for t in venue.user_trades("acct-1", "BTCUSDT")] == ["LONG", "SHORT"]
    assert [(p["positionSide"], p["positionAmt"]) for p in venue.account("acct-1", NOW)["positions"]] == [
        ("LONG", "0.010"),
        ("SHORT", "-0.020"),
    ]


def test_in_hedge_mode_a_close_order_reduces_only_its_side_and_never_more_than_it_holds():
    venue, book = hedged()
    venue.place_order("acct-1", market_order("BUY", "0.010", positionSide="LONG"), book, NOW)
    venue.place_order("acct-1", market_order("SELL", "0.010", positionSide="SHORT"), book, NOW)

    too_much = rejected(
        lambda: venue.place_order("acct-1", market_order("SELL", "0.020", positionSide="LONG"), book, NOW)
    )
    venue.place_order("acct-1", market_order("SELL", "0.010", positionSide="LONG"), book.move("1010.00"), NOW)

    assert (too_much.code, too_much.msg) == (-2022, "ReduceOnly Order is rejected.")
    assert (row(venue, "LONG")["positionAmt"], row(venue, "SHORT")["positionAmt"]) == ("0.000", "-0.010")
    assert venue.user_trades("acct-1", "BTCUSDT")[-1]["realizedPnl"] == "0.10000000"  # 0.010 x (1010 - 1000)


def test_a_hedge_mode_close_position_stop_closes_its_side_and_leaves_the_other():
    venue, book = hedged()
    venue.place_order("acct-1", market_order("BUY", "0.010", positionSide="LONG"), book, NOW)
    venue.place_order("acct-1", market_order("SELL", "0.020", positionSide="SHORT"), book, NOW)
    venue.place_algo(
        "acct-1",
        algo("STOP_MARKET", "SELL", positionSide="LONG", triggerPrice="990.00", closePosition="true"),
        book,
        NOW,
    )
    venue.drain_user_events()

    venue.on_market(book.move("989.00"), NOW + 1)

    assert (row(venue, "LONG")["positionAmt"], row(venue, "SHORT")["positionAmt"]) == ("0.000", "-0.020")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({}, -4061),
        ({"positionSide": "BOTH"}, -4061),
        ({"positionSide": "LONG", "reduceOnly": "true"}, -1106),
        ({"positionSide": "LONG", "side": "BUY", "triggerPrice": "1010.00"}, -4136),  # closes nothing of LONG
    ],
)
def test_hedge_mode_conditional_orders_follow_the_same_position_side_rules(overrides, code):
    venue, book = hedged()
    params = {**algo("STOP_MARKET", "SELL", triggerPrice="990.00", closePosition="true"), **overrides}

    error = rejected(lambda: venue.place_algo("acct-1", params, book, NOW))

    assert error.code == code


def test_a_simulator_can_start_its_accounts_in_hedge_mode(monkeypatch):
    monkeypatch.setenv("EPOCHBOT_SIM_HEDGE_MODE", "1")

    from_env = SimConfig(market="usdm")
    explicit = SimConfig(market="usdm", hedge_mode=False)
    spot = SimConfig(market="spot")

    assert (from_env.hedge_mode, explicit.hedge_mode, spot.hedge_mode) == (True, False, False)
    with pytest.raises(ValueError, match="USD-M"):
        SimConfig(market="spot", hedge_mode=True)


# ------------------------------------------------------------------ Multi-Assets mode


def test_multi_assets_mode_toggles_and_excludes_isolated_margin():
    venue = usdm_venue()

    on = venue.change_multi_assets_mode("acct-1", {"multiAssetsMargin": "true"})
    again = rejected(lambda: venue.change_multi_assets_mode("acct-1", {"multiAssetsMargin": "true"}))
    isolated = rejected(lambda: venue.change_margin_type("acct-1", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}))
    venue.change_multi_assets_mode("acct-1", {"multiAssetsMargin": "false"})
    venue.change_margin_type("acct-1", {"symbol": "BTCUSDT", "marginType": "ISOLATED"})
    with_isolated = rejected(lambda: venue.change_multi_assets_mode("acct-1", {"multiAssetsMargin": "true"}))

    assert on == {"code": 200, "msg": "success"}
    assert (again.code, isolated.code, with_isolated.code) == (-4171, -4168, -4167)
    assert venue.multi_assets_mode("acct-1") == {"multiAssetsMargin": False}


# ------------------------------------------------------------------ v3 shapes


def test_v3_position_risk_and_account_list_only_positions_that_are_open_or_have_open_orders():
    venue, book = hedged()
    venue.place_order("acct-1", market_order("BUY", "0.010", positionSide="LONG"), book, NOW)
    venue.place_order("acct-1", resting_buy(side="SELL", price="1100.00", positionSide="SHORT"), book, NOW)

    rows = venue.position_risk("acct-1", None, {}, version=3)
    positions = venue.account("acct-1", NOW, version=3)["positions"]

    assert [(r["positionSide"], r["positionAmt"], r["marginAsset"]) for r in rows] == [
        ("LONG", "0.010", "USDT"),
        ("SHORT", "0.000", "USDT"),  # no position, an open order
    ]
    assert "leverage" not in rows[0] and rows[0]["initialMargin"] == "0.50000000"  # 10 USDT at 20x
    assert rows[1]["openOrderInitialMargin"] == "0.55000000"  # 11 USDT at 20x
    assert [(p["positionSide"], p["positionAmt"]) for p in positions] == [("LONG", "0.010"), ("SHORT", "0.000")]


# ------------------------------------------------------------------ over loopback


WEIGHED = [
    ("leverage", "POST"),
    ("marginType", "POST"),
    ("positionSide/dual", "GET"),
    ("positionSide/dual", "POST"),
    ("multiAssetsMargin", "GET"),
    ("multiAssetsMargin", "POST"),
    ("accountConfig", "GET"),
    ("symbolConfig", "GET"),
]


@pytest.fixture
async def live():
    async with SimExchange(SimConfig(market="usdm", symbols=["BTCUSDT"], seed=7, rate=20, hedge_mode=False)) as sim:
        yield sim


async def test_account_settings_over_rest_answer_as_binance_and_weigh_as_documented(live, http):
    rest = Rest(http, live.rest_url)

    leverage = await rest.ok("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=5)
    margin = await rest.ok("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    again = await rest.error("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    mode = await rest.ok("GET", "/fapi/v1/positionSide/dual")
    multi = await rest.ok("GET", "/fapi/v1/multiAssetsMargin")
    config = await rest.ok("GET", "/fapi/v1/symbolConfig", symbol="BTCUSDT")

    assert leverage == {"leverage": 5, "maxNotionalValue": "50000000", "symbol": "BTCUSDT"}
    assert margin == {"code": 200, "msg": "success"} and again == -4046
    assert (mode, multi) == ({"dualSidePosition": False}, {"multiAssetsMargin": False})
    assert config == [
        {
            "symbol": "BTCUSDT",
            "marginType": "ISOLATED",
            "isAutoAddMargin": False,
            "leverage": 5,
            "maxNotionalValue": "50000000",
        }
    ]
    assert [request_weight("usdm", f"/fapi/v1/{p}", {}, m) for p, m in WEIGHED] == [1, 1, 30, 1, 30, 1, 5, 5]


async def test_a_paper_account_switched_to_hedge_mode_trades_per_side_over_rest_and_the_websocket_api(live, http):
    rest = Rest(http, live.rest_url)
    signer = Signer("sim-key", "sim-secret")

    await rest.ok("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true")
    both = await rest.error("POST", "/fapi/v1/order", **market_order("BUY", "0.010", positionSide="BOTH"))
    long = await rest.ok("POST", "/fapi/v1/order", **market_order("BUY", "0.010", positionSide="LONG"))
    async with http.ws_connect(live.ws_url + "/ws-fapi/v1") as api:
        order = signer.sign_ws(market_order("SELL", "0.010"), int(time.time() * 1000))
        await api.send_json({"id": "no-side", "method": "order.place", "params": order})
        refused = await api.receive_json(timeout=5)
        await api.send_json(
            {"id": "pos", "method": "account.position", "params": signer.sign_ws({}, int(time.time() * 1000))}
        )
        positions = await api.receive_json(timeout=5)

    assert both == -4061 and (long["positionSide"], long["status"]) == ("LONG", "FILLED")
    assert refused["error"] == {"code": -4061, "msg": "Order's position side does not match user's setting."}
    assert [(p["positionSide"], p["positionAmt"]) for p in positions["result"]] == [
        ("LONG", "0.010"),
        ("SHORT", "0.000"),
    ]

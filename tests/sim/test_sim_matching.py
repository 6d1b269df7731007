"""The simulator's paper-trading matching engine, driven directly (no server, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epochbot.model.numeric import parse_units
from epochbot.sim.auth import SimApiError
from epochbot.sim.matching import FIRST_ORDER_ID, PaperVenue, SymbolFilters

NOW = 1_700_000_000_000
SPOT_BTC = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 5, 1, 1, 1, 900_000_000, "5")
USDM_BTC = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 3, 10, 1, 1, 10_000_000, "5")


@dataclass
class FakeBook:
    """A fixed market: levels are (price units, qty units), best first."""

    symbol: str
    price_decimals: int
    qty_decimals: int
    bid_levels: list[tuple[int, int]] = field(default_factory=list)
    ask_levels: list[tuple[int, int]] = field(default_factory=list)
    mark: int = 0

    def bids(self):
        return iter(self.bid_levels)

    def asks(self):
        return iter(self.ask_levels)

    def mark_price(self) -> int:
        return self.mark


def book(f: SymbolFilters, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> FakeBook:
    pu = lambda levels: [(parse_units(p, f.price_decimals), parse_units(q, f.qty_decimals)) for p, q in levels]  # noqa: E731
    b, a = pu(bids), pu(asks)
    mark = (b[0][0] + a[0][0]) // 2 if b and a else (b or a)[0][0]
    return FakeBook(f.symbol, f.price_decimals, f.qty_decimals, b, a, mark)


SPOT_BOOK = book(
    SPOT_BTC,
    bids=[("999.90", "0.01"), ("999.80", "0.02"), ("999.70", "0.05")],
    asks=[("1000.00", "0.01"), ("1000.10", "0.02"), ("1000.20", "0.05")],
)
USDM_BOOK = book(
    USDM_BTC,
    bids=[("999.90", "0.010"), ("999.80", "0.020"), ("999.70", "0.050")],
    asks=[("1000.00", "0.010"), ("1000.10", "0.020"), ("1000.20", "0.050")],
)


def usdm_book_at(price: str, qty: str = "100.000") -> FakeBook:
    """A deep one-level market on both sides at ``price`` (fills happen exactly there)."""
    return book(USDM_BTC, bids=[(price, qty)], asks=[(price, qty)])


def spot() -> PaperVenue:
    return PaperVenue("spot", {"BTCUSDT": SPOT_BTC})


def usdm() -> PaperVenue:
    return PaperVenue("usdm", {"BTCUSDT": USDM_BTC})


def limit(side: str, qty: str, price: str, tif: str = "GTC", **extra: str) -> dict[str, str]:
    return {
        "symbol": "BTCUSDT",
        "side": side,
        "type": "LIMIT",
        "timeInForce": tif,
        "quantity": qty,
        "price": price,
        **extra,
    }


def market(side: str, qty: str, **extra: str) -> dict[str, str]:
    return {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": qty, **extra}


def balances(venue: PaperVenue, account: str = "acct-1") -> dict[str, tuple[str, str]]:
    return {b["asset"]: (b["free"], b["locked"]) for b in venue.account(account, NOW)["balances"]}


def rejected(call) -> SimApiError:
    with pytest.raises(SimApiError) as info:
        call()
    return info.value


# --------------------------------------------------------------------------- spot orders


def test_spot_limit_gtc_takes_levels_up_to_its_price_and_rests_the_remainder():
    venue = spot()

    resp = venue.place_order("acct-1", limit("BUY", "0.04", "1000.10"), SPOT_BOOK, NOW)

    assert resp["status"] == "PARTIALLY_FILLED"
    assert (resp["origQty"], resp["executedQty"]) == ("0.04000000", "0.03000000")
    assert resp["cummulativeQuoteQty"] == "30.00200000"
    assert resp["fills"] == [
        {
            "price": "1000.00000000",
            "qty": "0.01000000",
            "commission": "0.00400000",
            "commissionAsset": "USDT",
            "tradeId": 500001,
        },
        {
            "price": "1000.10000000",
            "qty": "0.02000000",
            "commission": "0.00800080",
            "commissionAsset": "USDT",
            "tradeId": 500002,
        },
    ]
    assert [o["orderId"] for o in venue.open_orders("acct-1", "BTCUSDT")] == [resp["orderId"]]


def test_spot_taker_fill_moves_balances_exactly_and_locks_the_resting_remainder():
    venue = spot()

    venue.place_order("acct-1", limit("BUY", "0.04", "1000.10"), SPOT_BOOK, NOW)

    # USDT: 100000 - 30.002 - fees 0.0120008; lock = 0.01 x 1000.10 x 1.0004 = 10.0050004
    assert balances(venue)["USDT"] == ("99959.98099880", "10.00500040")
    assert balances(venue)["BTC"] == ("1.03000000", "0.00000000")


def test_spot_limit_ioc_expires_the_unfilled_remainder():
    venue = spot()

    resp = venue.place_order("acct-1", limit("BUY", "0.04", "1000.10", "IOC"), SPOT_BOOK, NOW)

    assert (resp["status"], resp["executedQty"]) == ("EXPIRED", "0.03000000")
    assert venue.open_orders("acct-1", None) == []
    assert balances(venue)["USDT"][1] == "0.00000000"


def test_spot_fok_that_cannot_fill_completely_expires_without_trading():
    venue = spot()

    resp = venue.place_order("acct-1", limit("BUY", "0.04", "1000.10", "FOK"), SPOT_BOOK, NOW)

    assert (resp["status"], resp["executedQty"], resp["fills"]) == ("EXPIRED", "0.00000000", [])
    assert balances(venue)["USDT"] == ("100000.00000000", "0.00000000")


def test_spot_fok_that_can_fill_completely_is_filled():
    venue = spot()

    resp = venue.place_order("acct-1", limit("BUY", "0.03", "1000.10", "FOK"), SPOT_BOOK, NOW)

    assert (resp["status"], resp["executedQty"]) == ("FILLED", "0.03000000")


def test_spot_market_buy_sweeps_levels_best_first():
    venue = spot()

    resp = venue.place_order("acct-1", market("BUY", "0.05"), SPOT_BOOK, NOW)

    assert resp["status"] == "FILLED"
    assert [(f["price"], f["qty"]) for f in resp["fills"]] == [
        ("1000.00000000", "0.01000000"),
        ("1000.10000000", "0.02000000"),
        ("1000.20000000", "0.02000000"),
    ]
    assert (resp["price"], resp["timeInForce"]) == ("0.00000000", "GTC")


def test_spot_market_order_larger_than_the_book_fills_what_exists_and_expires():
    venue = spot()

    resp = venue.place_order("acct-1", market("SELL", "0.10"), SPOT_BOOK, NOW)

    assert (resp["status"], resp["executedQty"]) == ("EXPIRED", "0.08000000")


def test_one_order_never_fills_the_same_level_twice_and_the_market_is_not_mutated():
    venue = spot()
    before = (list(SPOT_BOOK.bid_levels), list(SPOT_BOOK.ask_levels))

    first = venue.place_order("acct-1", market("BUY", "0.01"), SPOT_BOOK, NOW)
    second = venue.place_order("acct-1", limit("BUY", "0.02", "1000.00", "IOC"), SPOT_BOOK, NOW)

    assert first["fills"][0]["price"] == second["fills"][0]["price"] == "1000.00000000"
    assert second["executedQty"] == "0.01000000"  # only 0.01 visible at 1000.00, used once
    assert (SPOT_BOOK.bid_levels, SPOT_BOOK.ask_levels) == before


def test_spot_limit_maker_that_would_take_is_rejected_and_not_recorded():
    venue = spot()
    params = {**limit("BUY", "0.01", "1000.00"), "type": "LIMIT_MAKER"}
    del params["timeInForce"]

    error = rejected(lambda: venue.place_order("acct-1", params, SPOT_BOOK, NOW))

    assert error.to_json() == {"code": -2010, "msg": "Order would immediately match and take."}
    assert venue.open_orders("acct-1", None) == [] and venue.drain_user_events() == []


def test_spot_limit_maker_that_does_not_cross_rests_with_an_ack_response():
    venue = spot()
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.01", "price": "999.90"}

    resp = venue.place_order("acct-1", params, SPOT_BOOK, NOW)

    assert set(resp) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert venue.query_order("acct-1", {"symbol": "BTCUSDT", "orderId": str(resp["orderId"])})["status"] == "NEW"


def test_result_response_type_omits_fills():
    venue = spot()

    resp = venue.place_order("acct-1", market("BUY", "0.01", newOrderRespType="RESULT"), SPOT_BOOK, NOW)

    assert "fills" not in resp and resp["status"] == "FILLED"


def test_spot_buy_beyond_the_quote_balance_is_rejected():
    venue = PaperVenue("spot", {"BTCUSDT": SPOT_BTC}, starting_balances={"USDT": "10", "BTC": "0"})

    error = rejected(lambda: venue.place_order("acct-1", limit("BUY", "0.02", "999.00"), SPOT_BOOK, NOW))

    assert error.to_json() == {"code": -2010, "msg": "Account has insufficient balance for requested action."}


def test_spot_sell_beyond_the_free_base_balance_is_rejected():
    venue = spot()
    venue.place_order("acct-1", limit("SELL", "0.9", "2000.00"), SPOT_BOOK, NOW)

    error = rejected(lambda: venue.place_order("acct-1", limit("SELL", "0.2", "2000.00"), SPOT_BOOK, NOW))

    assert error.code == -2010


# --------------------------------------------------------------------------- filters and validation


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (limit("BUY", "0.010", "999.95"), (-1013, "Filter failure: PRICE_FILTER")),
        (limit("BUY", "0.0105", "999.00"), (-1013, "Filter failure: LOT_SIZE")),
        (limit("BUY", "0", "999.00"), (-1013, "Filter failure: LOT_SIZE")),
        (
            limit("BUY", "0.001", "999.00"),
            (-4164, "Order's notional must be no smaller than 5 (unless you choose reduce only)."),
        ),
        ({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}, (-1121, "Invalid symbol.")),
        (market("BUY", ""), (-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")),
        (limit("BUY", "0.010", "999.00", "GTD"), (-1115, "Invalid timeInForce.")),
        (limit("HOLD", "0.010", "999.00"), (-1117, "Invalid side.")),
        (limit("BUY", "1e3", "999.00"), (-1100, None)),
    ],
)
def test_usdm_orders_breaking_a_rule_are_rejected_with_binance_codes(params, expected):
    venue = usdm()

    error = rejected(lambda: venue.place_order("acct-1", params, USDM_BOOK, NOW))

    assert error.code == expected[0]
    assert expected[1] is None or error.msg == expected[1]
    assert venue.open_orders("acct-1", None) == []


def test_spot_notional_below_minimum_is_a_notional_filter_failure():
    venue = spot()

    error = rejected(lambda: venue.place_order("acct-1", limit("BUY", "0.001", "999.00"), SPOT_BOOK, NOW))

    assert error.to_json() == {"code": -1013, "msg": "Filter failure: NOTIONAL"}


def test_spot_market_order_with_a_price_is_rejected():
    venue = spot()

    error = rejected(lambda: venue.place_order("acct-1", market("BUY", "0.01", price="1000.00"), SPOT_BOOK, NOW))

    assert error.code == -1106


# --------------------------------------------------------------------------- client ids, cancel, query


def test_order_ids_increase_per_symbol_from_a_fixed_start_with_deterministic_client_ids():
    venue = spot()

    a = venue.place_order("acct-1", limit("BUY", "0.01", "990.00"), SPOT_BOOK, NOW)
    b = venue.place_order("acct-2", limit("BUY", "0.01", "990.00"), SPOT_BOOK, NOW)

    assert (a["orderId"], b["orderId"]) == (FIRST_ORDER_ID, FIRST_ORDER_ID + 1)
    assert a["clientOrderId"] == f"sim-BTCUSDT-{FIRST_ORDER_ID}"


def test_duplicate_client_order_id_of_an_open_order_is_rejected_on_spot():
    venue = spot()
    venue.place_order("acct-1", limit("BUY", "0.01", "990.00", newClientOrderId="mine-1"), SPOT_BOOK, NOW)

    error = rejected(
        lambda: venue.place_order("acct-1", limit("BUY", "0.01", "991.00", newClientOrderId="mine-1"), SPOT_BOOK, NOW)
    )

    assert error.to_json() == {"code": -2010, "msg": "Duplicate order sent."}


def test_duplicate_client_order_id_of_an_open_order_is_rejected_on_usdm():
    venue = usdm()
    venue.place_order("acct-1", limit("BUY", "0.010", "990.00", newClientOrderId="mine-1"), USDM_BOOK, NOW)

    error = rejected(
        lambda: venue.place_order("acct-1", limit("BUY", "0.010", "991.00", newClientOrderId="mine-1"), USDM_BOOK, NOW)
    )

    assert error.to_json() == {"code": -4116, "msg": "ClientOrderId is duplicated."}


def test_client_order_id_may_be_reused_after_the_order_is_canceled():
    venue = spot()
    venue.place_order("acct-1", limit("BUY", "0.01", "990.00", newClientOrderId="mine-1"), SPOT_BOOK, NOW)
    venue.cancel_order("acct-1", {"symbol": "BTCUSDT", "origClientOrderId": "mine-1"}, NOW)

    resp = venue.place_order("acct-1", limit("BUY", "0.01", "991.00", newClientOrderId="mine-1"), SPOT_BOOK, NOW)

    assert venue.find_order("acct-1", "BTCUSDT", "mine-1")["orderId"] == resp["orderId"]


def test_cancel_releases_the_lock_and_reports_the_canceled_order():
    venue = spot()
    placed = venue.place_order("acct-1", limit("BUY", "0.01", "990.00", newClientOrderId="mine-1"), SPOT_BOOK, NOW)

    resp = venue.cancel_order("acct-1", {"symbol": "BTCUSDT", "orderId": str(placed["orderId"])}, NOW + 5)

    assert (resp["status"], resp["origClientOrderId"], resp["transactTime"]) == ("CANCELED", "mine-1", NOW + 5)
    assert resp["clientOrderId"] != "mine-1"
    assert balances(venue)["USDT"] == ("100000.00000000", "0.00000000")


def test_canceling_a_closed_or_unknown_order_is_minus_2011():
    venue = spot()
    filled = venue.place_order("acct-1", market("BUY", "0.01"), SPOT_BOOK, NOW)

    for order_id in (filled["orderId"], 42):
        error = rejected(
            lambda oid=order_id: venue.cancel_order("acct-1", {"symbol": "BTCUSDT", "orderId": str(oid)}, NOW)
        )
        assert error.to_json() == {"code": -2011, "msg": "Unknown order sent."}


def test_querying_an_unknown_order_is_minus_2013_and_an_id_is_mandatory():
    venue = spot()

    assert rejected(lambda: venue.query_order("acct-1", {"symbol": "BTCUSDT", "orderId": "7"})).code == -2013
    assert rejected(lambda: venue.query_order("acct-1", {"symbol": "BTCUSDT"})).code == -1102


def test_spot_query_has_the_get_order_shape():
    venue = spot()
    placed = venue.place_order("acct-1", limit("BUY", "0.01", "990.00"), SPOT_BOOK, NOW)

    resp = venue.query_order("acct-1", {"symbol": "BTCUSDT", "orderId": str(placed["orderId"])})

    assert resp["price"] == "990.00000000" and resp["isWorking"] is True
    assert {"stopPrice", "icebergQty", "time", "updateTime", "workingTime", "origQuoteOrderQty"} <= set(resp)


def test_accounts_are_isolated():
    venue = spot()
    venue.place_order("acct-1", limit("BUY", "0.01", "990.00"), SPOT_BOOK, NOW)

    assert venue.open_orders("acct-2", "BTCUSDT") == []
    assert balances(venue, "acct-2")["USDT"] == ("100000.00000000", "0.00000000")


# --------------------------------------------------------------------------- resting orders and the market


def test_resting_order_crossed_by_the_market_fills_at_its_limit_price_with_maker_fee():
    venue = spot()
    placed = venue.place_order("acct-1", limit("BUY", "0.01", "999.00"), SPOT_BOOK, NOW)
    venue.drain_user_events()
    moved = book(SPOT_BTC, bids=[("998.00", "1")], asks=[("998.50", "0.004"), ("999.00", "0.003"), ("999.50", "1")])

    venue.on_market(moved, NOW + 100)

    order = venue.query_order("acct-1", {"symbol": "BTCUSDT", "orderId": str(placed["orderId"])})
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"]) == (
        "PARTIALLY_FILLED",
        "0.00700000",
        "6.99300000",
    )
    trade = venue.drain_user_events()[0][1]
    assert (trade["x"], trade["L"], trade["m"], trade["n"]) == ("TRADE", "999.00000000", True, "0.00139860")


def test_resting_orders_share_the_crossing_volume_in_price_time_priority():
    venue = spot()
    first = venue.place_order("acct-1", limit("BUY", "0.01", "999.00"), SPOT_BOOK, NOW)
    better = venue.place_order("acct-2", limit("BUY", "0.01", "999.50"), SPOT_BOOK, NOW)
    moved = book(SPOT_BTC, bids=[("998.00", "1")], asks=[("998.90", "0.015")])

    venue.on_market(moved, NOW + 1)

    q = lambda acct, o: venue.query_order(acct, {"symbol": "BTCUSDT", "orderId": str(o["orderId"])})["executedQty"]  # noqa: E731
    assert (q("acct-2", better), q("acct-1", first)) == ("0.01000000", "0.00500000")


def test_market_that_does_not_cross_fills_nothing():
    venue = spot()
    venue.place_order("acct-1", limit("SELL", "0.01", "1001.00"), SPOT_BOOK, NOW)
    venue.drain_user_events()

    venue.on_market(SPOT_BOOK, NOW + 1)

    assert venue.drain_user_events() == []


# --------------------------------------------------------------------------- usd-m positions


def test_usdm_post_only_that_would_take_is_rejected_with_minus_5022():
    venue = usdm()

    error = rejected(lambda: venue.place_order("acct-1", limit("BUY", "0.010", "1000.00", "GTX"), USDM_BOOK, NOW))

    assert error.code == -5022
    assert venue.open_orders("acct-1", None) == [] and venue.drain_user_events() == []


def test_usdm_post_only_that_does_not_cross_rests():
    venue = usdm()

    resp = venue.place_order("acct-1", limit("BUY", "0.010", "999.90", "GTX"), USDM_BOOK, NOW)

    assert (resp["status"], resp["timeInForce"], resp["price"], resp["origQty"]) == ("NEW", "GTX", "999.90", "0.010")


def test_usdm_order_response_uses_symbol_precision():
    venue = usdm()

    resp = venue.place_order("acct-1", market("BUY", "0.030"), USDM_BOOK, NOW)

    assert (resp["status"], resp["executedQty"], resp["cumQuote"], resp["avgPrice"]) == (
        "FILLED",
        "0.030",
        "30.00200",
        "1000.06667",
    )
    assert resp["positionSide"] == "BOTH" and resp["reduceOnly"] is False


def test_usdm_position_entry_realized_pnl_and_flip_are_exact():
    venue = usdm()
    steps = [
        ("BUY", "0.010", "1000.00"),
        ("BUY", "0.030", "1002.00"),
        ("SELL", "0.010", "1005.00"),
        ("SELL", "0.050", "990.00"),
    ]

    for side, qty, price in steps:
        venue.place_order("acct-1", market(side, qty), usdm_book_at(price), NOW)

    pnl = [
        Decimal(e["o"]["rp"])
        for _, e in venue.drain_user_events()
        if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"
    ]
    assert pnl == [0, 0, Decimal("0.035"), Decimal("-0.345")]
    risk = venue.position_risk("acct-1", "BTCUSDT", {"BTCUSDT": parse_units("985.00", 2)})[0]
    assert (risk["positionAmt"], risk["entryPrice"], risk["unRealizedProfit"]) == ("-0.020", "990.00", "0.10000000")
    # wallet = 100000 - 0.31 realized - 0.039844 taker fees (4 bps of 99.61 notional)
    assert venue.account("acct-1", NOW)["totalWalletBalance"] == "99999.65015600"


def test_usdm_weighted_entry_price_of_an_added_position():
    venue = usdm()
    venue.place_order("acct-1", market("BUY", "0.010", newClientOrderId="a"), usdm_book_at("1000.00"), NOW)
    venue.place_order("acct-1", market("BUY", "0.030", newClientOrderId="b"), usdm_book_at("1002.00"), NOW)

    risk = venue.position_risk("acct-1", None, {"BTCUSDT": parse_units("1001.50", 2)})

    assert [(r["symbol"], r["positionAmt"], r["entryPrice"], r["unRealizedProfit"]) for r in risk] == [
        ("BTCUSDT", "0.040", "1001.50", "0.00000000")
    ]


def test_reduce_only_that_would_increase_or_flip_the_position_is_rejected():
    venue = usdm()
    venue.place_order("acct-1", market("BUY", "0.010"), USDM_BOOK, NOW)

    increase = rejected(lambda: venue.place_order("acct-1", market("BUY", "0.010", reduceOnly="true"), USDM_BOOK, NOW))
    flip = rejected(lambda: venue.place_order("acct-1", market("SELL", "0.020", reduceOnly="true"), USDM_BOOK, NOW))

    assert increase.to_json() == flip.to_json() == {"code": -2022, "msg": "ReduceOnly Order is rejected."}


def test_reduce_only_that_closes_the_position_is_accepted_even_below_min_notional():
    venue = usdm()
    venue.place_order("acct-1", market("BUY", "0.010"), USDM_BOOK, NOW)
    venue.place_order("acct-1", market("SELL", "0.006"), USDM_BOOK, NOW)

    resp = venue.place_order("acct-1", market("SELL", "0.004", reduceOnly="true"), USDM_BOOK, NOW)

    assert resp["status"] == "FILLED" and resp["reduceOnly"] is True
    assert venue.position_risk("acct-1", "BTCUSDT", {})[0]["positionAmt"] == "0.000"


def test_usdm_order_beyond_available_margin_is_rejected():
    venue = usdm()

    error = rejected(lambda: venue.place_order("acct-1", market("BUY", "2001.000"), USDM_BOOK, NOW))

    assert error.to_json() == {"code": -2019, "msg": "Margin is insufficient."}


def test_usdm_account_shape_reports_margin_of_open_orders():
    venue = usdm()
    venue.place_order("acct-1", limit("BUY", "0.010", "990.00"), USDM_BOOK, NOW)

    acct = venue.account("acct-1", NOW)

    assert acct["totalOpenOrderInitialMargin"] == "0.49500000"  # 9.90 / 20
    assert acct["availableBalance"] == "99999.50500000"
    assert acct["assets"][0]["asset"] == "USDT" and acct["positions"][0]["symbol"] == "BTCUSDT"


# --------------------------------------------------------------------------- user events


def test_spot_events_are_new_then_trades_then_account_position():
    venue = spot()

    venue.place_order("acct-1", limit("BUY", "0.04", "1000.10"), SPOT_BOOK, NOW)

    events = venue.drain_user_events()
    assert [(a, e["e"], e.get("x")) for a, e in events] == [
        ("acct-1", "executionReport", "NEW"),
        ("acct-1", "executionReport", "TRADE"),
        ("acct-1", "executionReport", "TRADE"),
        ("acct-1", "outboundAccountPosition", None),
    ]
    second = events[2][1]
    assert (second["X"], second["l"], second["z"], second["Z"], second["E"], second["T"]) == (
        "PARTIALLY_FILLED",
        "0.02000000",
        "0.03000000",
        "30.00200000",
        NOW,
        NOW,
    )
    assert {"s", "c", "S", "o", "f", "q", "p", "i", "L", "n", "N", "t", "w", "m", "O", "Y"} <= set(second)
    position = events[3][1]
    assert position["B"] == [
        {"a": "BTC", "f": "1.03000000", "l": "0.00000000"},
        {"a": "USDT", "f": "99959.98099880", "l": "10.00500040"},
    ]
    assert venue.drain_user_events() == []


def test_spot_cancel_emits_canceled_execution_report():
    venue = spot()
    placed = venue.place_order("acct-1", limit("BUY", "0.01", "990.00"), SPOT_BOOK, NOW)
    venue.drain_user_events()

    venue.cancel_order("acct-1", {"symbol": "BTCUSDT", "orderId": str(placed["orderId"])}, NOW + 7)

    report = venue.drain_user_events()[0][1]
    assert (report["x"], report["X"], report["E"], report["w"]) == ("CANCELED", "CANCELED", NOW + 7, False)


def test_usdm_fill_emits_order_trade_update_and_account_update():
    venue = usdm()

    venue.place_order("acct-1", market("SELL", "0.010"), USDM_BOOK, NOW + 3)

    events = venue.drain_user_events()
    assert [(e["e"], e.get("o", {}).get("x")) for _, e in events] == [
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("ORDER_TRADE_UPDATE", "TRADE"),
        ("ACCOUNT_UPDATE", None),
    ]
    trade = events[1][1]
    assert (trade["E"], trade["T"], trade["o"]["X"], trade["o"]["L"], trade["o"]["l"], trade["o"]["n"]) == (
        NOW + 3,
        NOW + 3,
        "FILLED",
        "999.90",
        "0.010",
        "0.00399960",
    )
    update = events[2][1]["a"]
    assert update["m"] == "ORDER"
    assert update["B"] == [{"a": "USDT", "wb": "99999.99600040", "cw": "99999.99600040", "bc": "0"}]
    assert (update["P"][0]["pa"], update["P"][0]["ep"], update["P"][0]["ps"]) == ("-0.010", "999.90", "BOTH")


# --------------------------------------------------------------------------- property


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(6, 300), st.integers(90_000, 110_000)), max_size=25
    )
)
def test_usdm_position_is_the_signed_sum_of_fills_and_wallet_moves_by_pnl_minus_fees(orders):
    venue = usdm()
    start = Decimal(venue.account("acct-1", NOW)["totalWalletBalance"])

    for side, qty_units, price_units in orders:
        price = f"{price_units // 100}.{price_units % 100:02d}"
        venue.place_order("acct-1", market(side, f"0.{qty_units:03d}"), usdm_book_at(price), NOW)

    trades = [e["o"] for _, e in venue.drain_user_events() if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"]
    signed_fills = sum((Decimal(t["l"]) * (1 if t["S"] == "BUY" else -1) for t in trades), Decimal(0))
    realized = sum((Decimal(t["rp"]) for t in trades), Decimal(0))
    fees = sum((Decimal(t["n"]) for t in trades), Decimal(0))
    wallet = Decimal(venue.account("acct-1", NOW)["totalWalletBalance"])
    assert Decimal(venue.position_risk("acct-1", "BTCUSDT", {})[0]["positionAmt"]) == signed_fills
    assert wallet - start == realized - fees
    if signed_fills == 0:  # flat: realized PnL is exactly sells minus buys
        cash = sum((Decimal(t["l"]) * Decimal(t["L"]) * (-1 if t["S"] == "BUY" else 1) for t in trades), Decimal(0))
        assert realized == cash

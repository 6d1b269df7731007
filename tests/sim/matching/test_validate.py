"""Order validation on its own: Binance's string parameters to an order, or Binance's error."""

from __future__ import annotations

import pytest

from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.records import Account, Order, Position, SymbolFilters
from epochbot.sim.matching.validate import parse_param, symbol_filters, validate_new

NOW = 1_700_000_000_000
BTC = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 3, 10, 1, 1, 10_000_000, "5")


def params(**overrides: str) -> dict[str, str]:
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.010",
        "price": "1000.00",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v != ""}


def validate(p: dict[str, str], *, market: str = "usdm", account: Account | None = None, mark: int = 0):
    return validate_new(
        market,  # type: ignore[arg-type]
        account or Account(balances={}),
        "acct-1",
        BTC,
        p,
        order_id=1_000_001,
        mark=mark,
        now_ms=NOW,
    )


def error(p: dict[str, str], **kwargs) -> tuple[int, str]:
    with pytest.raises(SimApiError) as info:
        validate(p, **kwargs)
    return info.value.code, str(info.value).split(": ", 1)[1]


def test_a_valid_limit_order_becomes_an_unrecorded_order_with_its_id_and_a_default_client_id():
    order, resp_type = validate(params())

    assert (order.order_id, order.client_order_id, order.price, order.orig_qty) == (
        1_000_001,
        "sim-BTCUSDT-1000001",
        100_000,
        10,
    )
    assert (order.status, order.time, order.update_time, resp_type) == ("NEW", NOW, NOW, "FULL")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"side": ""}, -1102),
        ({"side": "UP"}, -1117),
        ({"type": ""}, -1102),
        ({"type": "OCO"}, -1116),
        ({"type": "STOP"}, -4120),  # conditional types moved to the Algo Service on 2025-12-09
        ({"timeInForce": ""}, -1102),
        ({"timeInForce": "DAY"}, -1115),
        ({"quantity": ""}, -1102),
        ({"quantity": "abc"}, -1100),
        ({"quantity": "0.0105"}, -1013),
        ({"price": "1000.005"}, -1013),
        ({"price": "1000.05"}, -1013),
        ({"quantity": "99999.000"}, -1013),
        ({"reduceOnly": "yes"}, -1130),
        ({"newClientOrderId": "has space"}, -1100),
        ({"newOrderRespType": "ALL"}, -1100),
        ({"quantity": "0.001", "price": "1000.00"}, -4164),
    ],
)
def test_each_bad_parameter_is_refused_with_binances_code(overrides, code):
    assert error(params(**overrides))[0] == code


def test_checks_run_in_binances_order_side_before_type():
    assert error(params(side="UP", type="STOP"))[0] == -1117


def test_spot_refuses_parameters_it_does_not_read():
    assert error(params(type="MARKET"), market="spot")[0] == -1106  # timeInForce sent
    assert error(params(type="MARKET", timeInForce=""), market="spot")[0] == -1106  # price sent
    assert error(params(reduceOnly="true"), market="spot")[0] == -1104


def test_a_market_order_is_valued_at_the_mark_for_the_notional_filter():
    p = params(type="MARKET", price="", timeInForce="", quantity="0.001")

    assert error(p, mark=100_000)[0] == -4164  # 0.001 x 1000 = 1 < 5
    order, _ = validate(p, mark=1_000_000)  # 0.001 x 10000 = 10
    assert (order.price, order.time_in_force) == (0, "GTC")


def test_a_client_id_in_use_by_an_open_order_is_a_duplicate_but_a_closed_ones_is_free():
    account = Account(balances={})
    open_order = Order("acct-1", "BTCUSDT", 7, "mine", "BUY", "LIMIT", "GTC", 100_000, 10, False, NOW)
    account.orders[("BTCUSDT", 7)] = open_order

    assert error(params(newClientOrderId="mine"), account=account)[0] == -4116
    assert error(params(newClientOrderId="mine"), account=account, market="spot")[0] == -2010
    open_order.status = "FILLED"
    assert validate(params(newClientOrderId="mine"), account=account)[0].client_order_id == "mine"


def test_reduce_only_must_shrink_the_position_and_skips_the_notional_floor():
    account = Account(balances={}, positions={("BTCUSDT", "BOTH"): Position(size=5, cost=500_000)})

    assert error(params(side="BUY", reduceOnly="true"), account=account)[0] == -2022  # would grow it
    assert error(params(side="SELL", reduceOnly="true", quantity="0.010"), account=account)[0] == -2022  # too big
    order, _ = validate(params(side="SELL", reduceOnly="true", quantity="0.001"), account=account)
    assert order.reduce_only and order.orig_qty == 1


def test_symbol_filters_names_a_missing_symbol_and_an_unknown_one():
    with pytest.raises(SimApiError) as missing:
        symbol_filters({"BTCUSDT": BTC}, {})
    with pytest.raises(SimApiError) as unknown:
        symbol_filters({"BTCUSDT": BTC}, {"symbol": "XRPUSDT"})

    assert (missing.value.code, unknown.value.code) == (-1102, -1121)


def test_a_number_finer_than_the_grid_is_a_filter_failure_not_illegal_characters():
    with pytest.raises(SimApiError) as finer:
        parse_param({"price": "1.001"}, "price", 2, "PRICE_FILTER")
    with pytest.raises(SimApiError) as garbage:
        parse_param({"price": "1e3"}, "price", 2, "PRICE_FILTER")

    assert (finer.value.code, str(finer.value)) == (-1013, "-1013: Filter failure: PRICE_FILTER")
    assert garbage.value.code == -1100

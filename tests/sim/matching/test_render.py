"""Wire rendering on its own: exact decimal strings and Binance's shapes, from hand-made records."""

from __future__ import annotations

from epochbot.sim.matching.ledger import Ledger
from epochbot.sim.matching.records import Fill, Order, Position, SymbolFilters, Trade
from epochbot.sim.matching.render import Renderer, fmt_padded, fmt_ratio

NOW = 1_700_000_000_000
BTC_SPOT = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 5, 1, 1, 1, 900_000_000, "5")
BTC_USDM = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 3, 10, 1, 1, 10_000_000, "5")


def renderer(market: str) -> tuple[Renderer, Ledger]:
    f = BTC_SPOT if market == "spot" else BTC_USDM
    ledger = Ledger(market, {"BTCUSDT": f}, maker_fee_bps=2, taker_fee_bps=4, starting_balances={"USDT": "100"})  # type: ignore[arg-type]
    return Renderer(ledger), ledger


def an_order(**changes) -> Order:
    o = Order("acct-1", "BTCUSDT", 1_000_001, "c-1", "BUY", "LIMIT", "GTC", 100_050, 3_000, False, NOW)
    for k, v in changes.items():
        setattr(o, k, v)
    return o


def test_padded_strings_are_exact_and_only_longer_than_the_minimum_when_the_value_needs_it():
    assert fmt_padded(12_345, 2, 8) == "123.45000000"
    assert fmt_padded(123_456_789_012, 11, 8) == "1.23456789012"
    assert fmt_padded(-5, 3, 3) == "-0.005"
    assert fmt_padded(7, 0, 0) == "7"


def test_ratios_round_half_even_and_zero_is_padded():
    assert fmt_ratio(0, 0, 2, 5) == "0.00000"
    assert fmt_ratio(25, 10, 2, 1) == "0.0"  # 0.025 -> 0.0 (half to even)
    assert fmt_ratio(35, 10, 2, 2) == "0.04"  # 0.035 -> 0.04
    assert fmt_ratio(1, 3, 0, 4) == "0.3333"


def test_money_is_printed_with_at_least_eight_decimals():
    r, ledger = renderer("usdm")

    assert ledger.money_decimals == 9
    assert r.money(123_456_789) == "0.123456789" and r.money(10**9) == "1.00000000"


def test_a_usdm_query_has_time_and_no_cumqty_and_a_placement_answer_the_reverse():
    r, _ = renderer("usdm")
    o = an_order(executed_qty=1_000, cum_quote=100_050 * 1_000, status="PARTIALLY_FILLED")

    queried, placed = r.order(o), r.new_order_response(o, [], "FULL", NOW)

    assert queried["time"] == NOW and "cumQty" not in queried
    assert placed["cumQty"] == "1.000" and "time" not in placed
    assert (queried["price"], queried["avgPrice"], queried["cumQuote"]) == ("1000.50", "1000.50000", "1000.50000")


def test_spot_answers_follow_new_order_resp_type():
    r, _ = renderer("spot")
    o = an_order(executed_qty=3_000, cum_quote=100_050 * 3_000, status="FILLED")
    fill = Fill(100_050, 3_000, 500_001, 6 * 10**8, 0, False)

    ack = r.new_order_response(o, [fill], "ACK", NOW)
    result = r.new_order_response(o, [fill], "RESULT", NOW)
    full = r.new_order_response(o, [fill], "FULL", NOW)

    assert list(ack) == ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
    assert "fills" not in result and result["executedQty"] == "0.03000000"
    assert full["fills"] == [
        {
            "price": "1000.50000000",
            "qty": "0.03000000",
            "commission": "0.00600000",
            "commissionAsset": "USDT",
            "tradeId": 500001,
        }
    ]


def test_spot_and_usdm_trade_rows_differ_as_binance_s_do():
    t = Trade("BTCUSDT", 500_001, 1_000_001, "SELL", 100_050, 3_000, 0, 0, True, NOW)

    spot_row = renderer("spot")[0].trade(t)
    usdm_row = renderer("usdm")[0].trade(t)

    assert (spot_row["isBuyer"], spot_row["isMaker"], spot_row["quoteQty"]) == (False, True, "30.01500000")
    assert (usdm_row["buyer"], usdm_row["maker"], usdm_row["positionSide"], usdm_row["quoteQty"]) == (
        False,
        True,
        "BOTH",
        "3001.50000",
    )


def test_entry_price_trims_to_the_tick_but_keeps_the_precision_the_cost_needs():
    r, _ = renderer("usdm")

    assert r.entry_price(BTC_USDM, Position()) == "0.00"
    assert r.entry_price(BTC_USDM, Position(size=2, cost=200_100)) == "1000.50"
    assert r.entry_price(BTC_USDM, Position(size=3, cost=300_001)) == "1000.003333"  # price decimals + 4


def test_spot_execution_report_names_the_fill_and_a_cancel_carries_the_original_client_id():
    r, _ = renderer("spot")
    o = an_order(executed_qty=1_000, cum_quote=100_050 * 1_000, status="PARTIALLY_FILLED")

    traded = r.order_event(o, "TRADE", NOW, Fill(100_050, 1_000, 500_001, 2 * 10**8, 0, True))
    o.status = "CANCELED"
    canceled = r.order_event(o, "CANCELED", NOW)

    assert (traded["x"], traded["l"], traded["L"], traded["n"], traded["N"], traded["m"]) == (
        "TRADE",
        "0.01000000",
        "1000.50000000",
        "0.00200000",
        "USDT",
        True,
    )
    assert (canceled["C"], canceled["N"], canceled["t"], canceled["w"]) == ("c-1", None, -1, False)


def test_spot_balance_events_always_come_and_usdm_account_updates_only_after_fills():
    spot, spot_ledger = renderer("spot")
    usdm, usdm_ledger = renderer("usdm")
    spot_account, usdm_account = spot_ledger.account("acct-1"), usdm_ledger.account("acct-1")

    balance = spot.account_event(spot_account, BTC_SPOT, NOW, traded=False)

    assert balance is not None and balance["e"] == "outboundAccountPosition"
    assert [b["a"] for b in balance["B"]] == ["BTC", "USDT"]
    assert usdm.account_event(usdm_account, BTC_USDM, NOW, traded=False) is None
    update = usdm.account_event(usdm_account, BTC_USDM, NOW, traded=True)
    assert update is not None and update["a"]["B"][0]["wb"] == "100.00000000"

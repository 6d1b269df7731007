"""The account ledger on its own: exact money, locks derived from orders, margin, positions."""

from __future__ import annotations

import pytest

from epochbot.sim.auth import SimApiError
from epochbot.sim.matching.ledger import Ledger, apply_to_position
from epochbot.sim.matching.records import Order, Position, SymbolFilters

NOW = 1_700_000_000_000
BTC_SPOT = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 5, 1, 1, 1, 900_000_000, "5")
BTC_USDM = SymbolFilters("BTCUSDT", "BTC", "USDT", 2, 3, 10, 1, 1, 10_000_000, "5")


def spot_ledger() -> Ledger:
    return Ledger(
        "spot",
        {"BTCUSDT": BTC_SPOT},
        maker_fee_bps=2,
        taker_fee_bps=4,
        starting_balances={"USDT": "1000", "BTC": "1"},
    )


def usdm_ledger() -> Ledger:
    return Ledger("usdm", {"BTCUSDT": BTC_USDM}, maker_fee_bps=2, taker_fee_bps=4, starting_balances={"USDT": "1000"})


def order(side: str, qty: int, price: int, *, type_: str = "LIMIT", order_id: int = 1, reduce_only=False) -> Order:
    return Order("acct-1", "BTCUSDT", order_id, f"c{order_id}", side, type_, "GTC", price, qty, reduce_only, NOW)


def test_money_scale_holds_basis_point_fees_of_the_widest_symbol_exactly():
    ledger = spot_ledger()  # price 2 + qty 5 decimals + 4 for basis points

    assert ledger.money_decimals == 11
    # 1000.00 x 0.00001 = 0.01 notional; 4 bps of it = 0.000004, representable exactly
    assert ledger.fee(BTC_SPOT, 100_000 * 1, maker=False) == 4 * 10**5


def test_accounts_open_on_first_use_with_the_starting_balances():
    ledger = spot_ledger()

    account = ledger.account("acct-9")

    assert account.balances == {"USDT": 1000 * 10**11, "BTC": 1 * 10**11}
    assert ledger.account("acct-9") is account


def test_spot_locks_follow_open_orders_and_vanish_when_they_close():
    ledger = spot_ledger()
    account = ledger.account("acct-1")
    buy = order("BUY", 1_000, 100_000)  # 0.01 BTC at 1000.00
    ledger.record(account, buy)

    # 0.01 x 1000 x (1 + 4 bps) = 10.004 USDT locked
    assert ledger.locked(account) == {"USDT": 10_004 * 10**8}
    buy.status = "CANCELED"
    assert ledger.locked(account) == {}


def test_spot_buy_that_cannot_be_paid_is_refused_before_anything_is_recorded():
    ledger = spot_ledger()
    account = ledger.account("acct-1")

    with pytest.raises(SimApiError) as info:
        ledger.check_funds(account, BTC_SPOT, order("BUY", 1_000_000, 100_000), [])  # 10 BTC at 1000 = 10000 USDT

    assert info.value.code == -2010 and account.orders == {}


def test_a_spot_fill_moves_both_assets_and_charges_the_fee_in_quote():
    ledger = spot_ledger()
    account = ledger.account("acct-1")

    fee, realized = ledger.settle(
        account, BTC_SPOT, order("BUY", 1_000, 100_000), 100_000, 1_000, maker=True, now_ms=NOW
    )

    assert (fee, realized) == (2 * 10**8, 0)  # 10 USDT notional x 2 bps = 0.002
    assert account.balances == {"USDT": (1000 - 10) * 10**11 - 2 * 10**8, "BTC": 101 * 10**9}
    assert account.update_time == NOW


def test_a_usdm_round_trip_realises_sell_minus_buy_notional_and_the_wallet_moves_by_pnl_minus_fees():
    ledger = usdm_ledger()
    account = ledger.account("acct-1")
    start = account.balances["USDT"]

    fee_in, _ = ledger.settle(account, BTC_USDM, order("BUY", 10, 100_000), 100_000, 10, maker=False, now_ms=NOW)
    fee_out, realized = ledger.settle(
        account, BTC_USDM, order("SELL", 10, 101_000), 101_000, 10, maker=False, now_ms=NOW
    )

    assert realized == (101_000 - 100_000) * 10 * ledger.shift_notional(BTC_USDM)
    assert account.balances["USDT"] - start == realized - fee_in - fee_out
    assert account.positions[("BTCUSDT", "BOTH")] == Position(0, 0, NOW)


def test_a_partial_close_releases_cost_pro_rata_and_a_flip_opens_at_the_fill_price():
    pos = Position(size=3, cost=3 * 100 + 1)  # an odd cost: the floor shows

    assert apply_to_position(pos, -1, 110, 1) == 110 - 100  # 301 x 1 // 3 = 100 released
    assert (pos.size, pos.cost) == (2, 201)
    assert apply_to_position(pos, -1, 90, 5) == 2 * 90 - 201  # closes 2, then 3 short at 90
    assert (pos.size, pos.cost) == (-3, 270)


def test_usdm_margin_counts_only_the_part_that_adds_exposure():
    ledger = usdm_ledger()
    account = ledger.account("acct-1")
    account.positions[("BTCUSDT", "BOTH")] = Position(size=10, cost=1_000_000)
    ledger.set_mark("BTCUSDT", 100_000)

    ledger.check_funds(account, BTC_USDM, order("SELL", 10, 100_000), [])  # only closes: no margin needed
    with pytest.raises(SimApiError) as info:
        ledger.check_funds(account, BTC_USDM, order("SELL", 10_000_000, 100_000), [])

    assert info.value.code == -2019


def test_usdm_totals_add_position_and_open_order_margin_to_what_is_not_available():
    ledger = usdm_ledger()
    account = ledger.account("acct-1")
    account.positions[("BTCUSDT", "BOTH")] = Position(size=10, cost=1_000_000)  # 0.010 at 1000.00
    ledger.set_mark("BTCUSDT", 110_000)
    ledger.record(account, order("BUY", 20, 100_000, order_id=2))

    t = ledger.usdm_totals(account)

    unit = ledger.shift_notional(BTC_USDM)
    assert t["unrealized"] == (10 * 110_000 - 1_000_000) * unit
    assert t["position_im"] == 10 * 110_000 * unit // 20
    assert t["order_im"] == ledger.open_order_margin(account, "BTCUSDT") == 20 * 100_000 * unit // 20
    assert t["available"] == t["wallet"] + t["unrealized"] - t["position_im"] - t["order_im"]


def test_lookup_prefers_the_open_order_of_a_reused_client_id_and_checks_both_ids_agree():
    ledger = usdm_ledger()
    account = ledger.account("acct-1")
    old, new = order("BUY", 10, 100_000, order_id=1), order("BUY", 10, 100_000, order_id=2)
    old.client_order_id = new.client_order_id = "same"
    old.status = "CANCELED"
    ledger.record(account, old)
    ledger.record(account, new)

    assert ledger.lookup(account, "BTCUSDT", {"origClientOrderId": "same"}) is new
    assert ledger.lookup(account, "BTCUSDT", {"orderId": "1", "origClientOrderId": "other"}) is None
    with pytest.raises(SimApiError) as info:
        ledger.lookup(account, "BTCUSDT", {})
    assert info.value.code == -1102

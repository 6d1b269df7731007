"""Positions and PnL: average entry, realised PnL, flips, fees, round trips and funding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from epochbot.trading.filters import SymbolFilters
from epochbot.trading.portfolio import Portfolio

SPOT = SymbolFilters.from_strings("BTCUSDT", "0.01", "0.001")
USDM = SymbolFilters.from_strings("BTCUSDT", "0.1", "0.001", market="usdm")


def test_buys_average_the_entry_price_exactly():
    p = Portfolio({"BTCUSDT": SPOT})

    p.apply_fill("BTCUSDT", "BUY", 1_000, 100_00)  # 1 @ 100.00
    p.apply_fill("BTCUSDT", "BUY", 2_000, 101_00)  # 2 @ 101.00

    pos = p.position("BTCUSDT")
    assert pos.qty == 3_000
    assert pos.avg_entry == Fraction(302, 3)


def test_a_partial_close_realises_against_the_average_entry():
    p = Portfolio({"BTCUSDT": SPOT})
    p.apply_fill("BTCUSDT", "BUY", 2_000, 100_00)

    delta, trip = p.apply_fill("BTCUSDT", "SELL", 500, 104_00, fee=Decimal("0.01"))

    pos = p.position("BTCUSDT")
    assert pos.realized == 2 and pos.fees == Fraction(1, 100)
    assert delta == Fraction(199, 100)
    assert trip is None and pos.qty == 1_500


def test_crossing_zero_closes_the_trip_and_opens_the_rest_at_the_fill_price():
    p = Portfolio({"BTCUSDT": SPOT})
    p.apply_fill("BTCUSDT", "BUY", 1_000, 100_00, ts_ns=1)

    _, trip = p.apply_fill("BTCUSDT", "SELL", 3_000, 99_00, ts_ns=2)

    pos = p.position("BTCUSDT")
    assert trip is not None and trip.pnl == -1 and trip.losing and (trip.opened_ns, trip.closed_ns) == (1, 2)
    assert pos.qty == -2_000 and pos.avg_entry == 99


def test_short_positions_profit_when_price_falls_and_mark_to_market_reconciles():
    p = Portfolio({"BTCUSDT": SPOT})
    p.apply_fill("BTCUSDT", "SELL", 1_000, 100_00, fee=Decimal("0.04"))
    p.apply_fill("BTCUSDT", "BUY", 400, 90_00, fee=Decimal("0.0144"))

    pos = p.position("BTCUSDT")
    mark = 95_00
    assert pos.realized == 4
    assert pos.unrealized(mark) == 3
    assert pos.net_pnl(mark) == pos.cash_flow - pos.fees + Fraction(mark, 100) * Fraction(pos.qty, 1000)


def test_fees_in_another_asset_are_kept_apart_from_quote_pnl():
    p = Portfolio({"BTCUSDT": SPOT})

    p.apply_fill("BTCUSDT", "BUY", 1_000, 100_00, fee=Decimal("0.0001"), fee_asset="BNB")

    pos = p.position("BTCUSDT")
    assert pos.fees == 0 and pos.other_fees == {"BNB": Fraction(1, 10_000)}


def test_usdm_funding_charges_longs_a_positive_rate_and_pays_shorts():
    p = Portfolio({"BTCUSDT": USDM})
    p.apply_fill("BTCUSDT", "BUY", 2_000, 30_000_0)  # 2 BTC long

    paid = p.apply_funding("BTCUSDT", Decimal("0.0001"), 30_000_0, ts_ns=5)
    p.apply_fill("BTCUSDT", "SELL", 4_000, 30_000_0)
    received = p.apply_funding("BTCUSDT", Decimal("0.0001"), 30_000_0, ts_ns=6)

    assert paid.amount == Fraction(-6) and received.amount == Fraction(6)
    assert p.position("BTCUSDT").funding == 0
    assert len(p.funding_history) == 2


def test_funding_on_a_spot_position_is_an_error():
    with pytest.raises(ValueError, match="USD-M"):
        Portfolio({"BTCUSDT": SPOT}).apply_funding("BTCUSDT", Decimal("0.0001"), 100, 0)


def test_position_views_render_decimal_strings():
    p = Portfolio({"BTCUSDT": SPOT})
    p.apply_fill("BTCUSDT", "BUY", 1_500, 100_00)

    (v,) = p.views({"BTCUSDT": 101_00})

    assert (v.symbol, v.qty, v.entry_price, v.unrealized_pnl, v.realized_pnl) == ("BTCUSDT", "1.5", "100", "1.5", "0")

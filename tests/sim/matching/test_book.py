"""Matching against the visible market on its own: sweeps and the shared crossing pool."""

from __future__ import annotations

from epochbot.sim.matching.book import CrossingPool, by_priority, crosses, sweep
from epochbot.sim.matching.records import Order


def order(side: str, price: int, *, type_: str = "LIMIT", order_id: int = 1, qty: int = 100) -> Order:
    return Order("a", "BTCUSDT", order_id, "c", side, type_, "GTC", price, qty, False, 0)


ASKS = [(100, 5), (101, 0), (102, 7), (105, 9)]


def test_a_limit_buy_sweeps_the_levels_up_to_its_price_best_first_skipping_empty_ones():
    assert sweep(order("BUY", 102), ASKS, 20) == [(100, 5), (102, 7)]


def test_a_sweep_stops_when_the_quantity_is_taken():
    assert sweep(order("BUY", 200), ASKS, 8) == [(100, 5), (102, 3)]


def test_a_market_order_crosses_every_level():
    assert crosses(order("SELL", 0, type_="MARKET"), 1) and sweep(order("BUY", 0, type_="MARKET"), ASKS, 100) == [
        (100, 5),
        (102, 7),
        (105, 9),
    ]


def test_priority_is_best_price_then_the_older_order_on_each_side():
    buys = [
        ("a", order("BUY", 99, order_id=3)),
        ("b", order("BUY", 101, order_id=4)),
        ("c", order("BUY", 99, order_id=2)),
    ]

    assert [o.order_id for _, o in by_priority(buys)] == [4, 2, 3]
    sells = [("a", order("SELL", 105, order_id=1)), ("b", order("SELL", 103, order_id=2))]
    assert [o.order_id for _, o in by_priority(sells)] == [2, 1]


def test_the_crossing_pool_is_shared_so_one_update_never_fills_the_same_volume_twice():
    best, second = order("BUY", 102, order_id=1), order("BUY", 100, order_id=2)
    pool = CrossingPool(best, iter(ASKS))

    assert pool.available(best) == 12 and pool.available(second) == 5
    pool.take(10)  # the best order takes 5 at 100 and 5 at 102
    assert pool.available(second) == 0 and pool.available(best) == 2


def test_the_pool_holds_only_levels_the_most_aggressive_order_crosses():
    pool = CrossingPool(order("BUY", 100), iter(ASKS))

    assert pool.available(order("BUY", 999)) == 5

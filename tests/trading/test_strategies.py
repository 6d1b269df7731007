"""The strategy API: registry, and the two example strategies on synthetic views."""

from __future__ import annotations

import pytest

from epochbot.model.modes import Mode
from epochbot.model.numeric import UnitCodec
from epochbot.trading.strategy import MarketView, OrderIntent, Strategy, StrategyError, get_strategy, strategy_names

S = 1_000_000_000
TICK = 1


def view(
    bid: int, ask: int, position: int = 0, ts: int = 0, mode: Mode = Mode.NORMAL, symbol: str = "BTCUSDT"
) -> MarketView:
    return MarketView(symbol, ts, UnitCodec(2, 3), TICK, bid, ask, ((bid, 5),), ((ask, 5),), position, mode)


def by_tag(intents: list[OrderIntent]) -> dict[str, OrderIntent]:
    return {i.tag: i for i in intents}


def test_registry_lists_both_examples_and_builds_them_by_name():
    assert {"quoter", "momentum"} <= set(strategy_names())
    assert all(isinstance(get_strategy(n), Strategy) for n in ("quoter", "momentum"))


def test_an_unknown_strategy_name_is_a_clear_error_listing_the_names():
    with pytest.raises(StrategyError, match=r"unknown strategy 'qoter'; available: momentum, quoter"):
        get_strategy("qoter")


def test_an_unknown_or_mistyped_parameter_is_refused():
    with pytest.raises(StrategyError, match="unknown parameter"):
        get_strategy("quoter", {"half_spread": 2})
    with pytest.raises(StrategyError, match="integer"):
        get_strategy("momentum", {"moves": "3"})


def test_market_view_mid_is_exact_even_between_ticks():
    v = view(100, 101)

    assert v.two_mid == 201 and v.mid * 2 == 201


# ------------------------------------------------------------------------------- quoter


def test_quoter_quotes_symmetrically_around_the_mid_when_flat():
    q = get_strategy("quoter", {"half_spread_ticks": 2, "size_lots": 3})

    quotes = by_tag(q.on_book(view(1000, 1002)))

    assert (quotes["bid"].side, quotes["bid"].price, quotes["bid"].qty) == ("BUY", 999, 3)
    assert (quotes["ask"].side, quotes["ask"].price, quotes["ask"].qty) == ("SELL", 1003, 3)


def test_quoter_leans_against_a_long_position():
    flat = by_tag(get_strategy("quoter", {"half_spread_ticks": 3, "size_lots": 2}).on_book(view(1000, 1002)))

    long = by_tag(
        get_strategy("quoter", {"half_spread_ticks": 3, "size_lots": 2}).on_book(view(1000, 1002, position=4))
    )

    assert long["ask"].price < flat["ask"].price  # easier to sell
    assert long["bid"].price < flat["bid"].price  # harder to buy


def test_quoter_never_crosses_the_book():
    q = get_strategy("quoter", {"half_spread_ticks": 1, "skew_ticks_per_size": 5})

    quotes = by_tag(q.on_book(view(1000, 1001, position=-3)))

    assert quotes["bid"].price <= 1000 and quotes["ask"].price >= 1001


def test_quoter_does_not_requote_until_its_quotes_move_a_tick():
    q = get_strategy("quoter")
    q.on_book(view(1000, 1002))

    same = q.on_book(view(1000, 1002, ts=1))
    moved = q.on_book(view(1001, 1003, ts=2))

    assert same == []
    assert {i.tag for i in moved} == {"bid", "ask"} and all(i.price for i in moved)


def test_quoter_stops_adding_beyond_its_max_position():
    q = get_strategy("quoter", {"max_position_lots": 4, "size_lots": 2})

    quotes = by_tag(q.on_book(view(1000, 1002, position=4)))

    assert quotes.get("bid") is None or quotes["bid"].qty == 0
    assert quotes["ask"].qty == 2


def test_quoter_withdraws_on_a_strict_mode_and_keeps_only_the_exit_in_reduce_only():
    q = get_strategy("quoter")
    q.on_book(view(1000, 1002, position=2))

    pulled = q.on_mode_change(Mode.CANCEL_MAKERS)
    reduce_only = by_tag(get_strategy("quoter").on_book(view(1000, 1002, position=2, mode=Mode.REDUCE_ONLY)))

    assert {(i.tag, i.qty) for i in pulled} == {("bid", 0), ("ask", 0)}
    assert set(reduce_only) == {"ask"} and reduce_only["ask"].reduce_only


# ------------------------------------------------------------------------------- momentum


def walk(strategy, prices: list[int], position: int = 0, step_ns: int = S, mode: Mode = Mode.NORMAL, start: int = 0):
    out = []
    for i, bid in enumerate(prices):
        out += strategy.on_book(view(bid, bid + 2, position=position, ts=start + i * step_ns, mode=mode))
    return out


def test_momentum_takes_after_n_consecutive_up_moves():
    m = get_strategy("momentum", {"moves": 3, "size_lots": 2})

    intents = walk(m, [100, 101, 102, 103])

    assert intents == [OrderIntent("BTCUSDT", "BUY", 2, None, "MARKET", None, False, "take")]


def test_momentum_sells_on_down_moves_with_an_ioc_limit_when_asked():
    m = get_strategy("momentum", {"moves": 2, "use_market": False})

    (intent,) = walk(m, [105, 104, 103])

    assert (intent.side, intent.order_type, intent.tif, intent.price) == ("SELL", "LIMIT", "IOC", 103)


def test_momentum_ignores_mixed_moves_and_moves_older_than_the_lookback():
    mixed = walk(get_strategy("momentum", {"moves": 3}), [100, 101, 100, 101, 102])
    slow = walk(get_strategy("momentum", {"moves": 3, "lookback_ms": 1_500}), [100, 101, 102, 103], step_ns=S)

    assert mixed == []
    assert slow == []


def test_momentum_respects_its_cooldown_and_max_position():
    m = get_strategy("momentum", {"moves": 1, "cooldown_ms": 5_000, "size_lots": 1, "max_position_lots": 5})

    first = walk(m, [100, 101])
    during = walk(m, [102, 103], start=2 * S)
    after = walk(m, [104, 105], start=10 * S)
    capped = walk(
        get_strategy("momentum", {"moves": 1, "size_lots": 1, "max_position_lots": 5}), [100, 101], position=5
    )

    assert len(first) == 1 and during == [] and len(after) == 1
    assert capped == []


def test_momentum_does_nothing_outside_normal_mode():
    assert walk(get_strategy("momentum", {"moves": 2}), [100, 101, 102], mode=Mode.REDUCE_ONLY) == []


def test_quoter_reasserts_its_quotes_after_the_refresh_interval():
    q = get_strategy("quoter", {"refresh_ms": 1_000})
    q.on_book(view(1000, 1002))
    q.on_timer(0)

    quiet = q.on_book(view(1000, 1002, ts=1))
    q.on_timer(1_000_000_000)
    refreshed = q.on_book(view(1000, 1002, ts=2))

    assert quiet == [] and {i.tag for i in refreshed} == {"bid", "ask"}


def test_value_sizing_buys_the_fewest_lots_worth_at_least_the_quote_amount():
    from epochbot.trading.strategy import lots_for_quote

    # mid 60000.00 (price units at 2 decimals), lots of 0.001: 150 USDT needs 0.0025 -> 3 lots
    v = view(5_999_999, 6_000_001)

    assert lots_for_quote(v, "150") == 3
    assert lots_for_quote(v, "60") == 1
    assert lots_for_quote(MarketView("X", 0, UnitCodec(2, 3), TICK, None, None, (), (), 0, Mode.NORMAL), "150") == 0


def test_default_quoter_sizes_its_quotes_by_value_so_they_pass_min_notional_filters():
    q = get_strategy("quoter", {})

    intents = q.on_book(view(5_999_990, 6_000_010))

    # 120 USDT at 60,000 -> 0.002 BTC (2 lots): above USD-M BTCUSDT's 100 USDT minimum notional
    assert intents and all(i.qty == 2 for i in intents)
    assert all(i.qty * i.price / 10**5 >= 100 for i in intents)


def test_quoter_leaves_a_quote_alone_until_its_target_moves_by_the_requote_tolerance():
    q = get_strategy("quoter", {"half_spread_ticks": 4, "size_lots": 1})  # tolerance: 2 ticks
    q.on_book(view(100_000, 100_000 + 2 * TICK))

    one_tick = q.on_book(view(100_000 + TICK, 100_000 + 3 * TICK))
    two_ticks = q.on_book(view(100_000 + 2 * TICK, 100_000 + 4 * TICK))

    assert one_tick == []
    assert {i.tag for i in two_ticks} == {"bid", "ask"}

"""The request-weight planner (core/runtime/budget.py), driven with explicit times."""

from __future__ import annotations

import pytest

from epochbot.runtime.budget import BudgetConfig, WeightBudget, depth_weight, klines_weight

S = 1_000_000_000
T0 = 1_000 * 60 * S + 5 * S  # 5 s into a venue minute


def _budget(limit=100, headroom=0.0, max_in_flight=100, guard_ms=1000) -> WeightBudget:
    return WeightBudget(
        BudgetConfig(limit=limit, headroom=headroom, max_in_flight=max_in_flight, boundary_guard_ms=guard_ms)
    )


def test_binance_depth_and_klines_weights_are_the_documented_ones():
    assert [depth_weight("usdm", n) for n in (5, 50, 100, 500, 1000)] == [2, 2, 5, 10, 20]
    assert [depth_weight("spot", n) for n in (100, 500, 1000, 5000)] == [5, 25, 50, 250]
    assert [klines_weight("usdm", n) for n in (99, 121, 1000, 1500)] == [1, 2, 5, 10]
    assert klines_weight("spot", 1000) == 2


def test_requests_beyond_the_minutes_cap_wait_for_the_next_window():
    budget = _budget(limit=100)
    for i in range(8):
        budget.submit(("depth", f"S{i}"), 20, i, now_ns=T0)

    first = budget.poll(T0)

    assert [g.payload[1] for g in first] == [0, 1, 2, 3, 4]
    assert budget.waiting == 3
    wake = budget.next_wakeup_ns(T0)
    assert wake == 1_001 * 60 * S + 1 * S  # next minute, after the boundary guard
    assert budget.poll(wake - 1) == []
    assert [g.payload[1] for g in budget.poll(wake)] == [5, 6, 7]


def test_the_venues_header_counts_weight_spent_by_others_on_the_same_ip():
    budget = _budget(limit=100)
    budget.submit("a", 10, now_ns=T0)
    (grant,) = budget.poll(T0)
    budget.done(grant, used_weight=95, now_ns=T0 + S)  # another process spent 85
    budget.submit("b", 10, now_ns=T0 + S)

    assert budget.poll(T0 + S) == []
    assert budget.used(T0 + S) == 95


def test_headroom_is_never_planned():
    budget = _budget(limit=100, headroom=0.1)
    for i in range(5):
        budget.submit(i, 20, now_ns=T0)

    assert len(budget.poll(T0)) == 4  # 80 of a 90 cap


def test_traded_and_invalid_books_go_before_fresh_ones():
    budget = _budget(limit=1000, max_in_flight=1)
    budget.submit("fresh-watched", 20, priority=(1, 1), now_ns=T0)
    budget.submit("fresh-traded", 20, priority=(0, 1), now_ns=T0)
    budget.submit("invalid-watched", 20, priority=(1, 0), now_ns=T0)
    budget.submit("invalid-traded", 20, priority=(0, 0), now_ns=T0)
    order = []
    t = T0
    while budget.waiting:
        (grant,) = budget.poll(t)
        order.append(grant.key)
        budget.done(grant, now_ns=t)
        t += S

    assert order == ["invalid-traded", "fresh-traded", "invalid-watched", "fresh-watched"]


def test_a_delayed_retry_does_not_block_ready_work_behind_it():
    budget = _budget(limit=1000)
    budget.submit("retry", 20, priority=(0, 0), not_before_ns=T0 + 2 * S, now_ns=T0)
    budget.submit("later", 20, priority=(1, 1), now_ns=T0)

    assert [g.key for g in budget.poll(T0)] == ["later"]
    assert budget.next_wakeup_ns(T0) == T0 + 2 * S
    assert [g.key for g in budget.poll(T0 + 2 * S)] == ["retry"]


def test_in_flight_requests_are_bounded_to_spread_the_answers():
    budget = _budget(limit=1000, max_in_flight=3)
    for i in range(6):
        budget.submit(i, 5, now_ns=T0)

    grants = budget.poll(T0)
    assert len(grants) == 3 and budget.next_wakeup_ns(T0) is None
    budget.done(grants[0], now_ns=T0)
    assert len(budget.poll(T0)) == 1


@pytest.mark.parametrize("status", [429, 418])
def test_a_refusal_stops_everything_until_its_retry_after(status):
    budget = _budget(limit=1000)
    budget.submit("a", 5, now_ns=T0)
    (grant,) = budget.poll(T0)
    budget.submit("b", 5, now_ns=T0)
    budget.done(grant, status=status, retry_after_ms=30_000, now_ns=T0)

    assert budget.poll(T0 + 29 * S) == []
    assert budget.next_wakeup_ns(T0) == T0 + 30 * S
    assert budget.stats["throttled" if status == 429 else "banned"] == 1


def test_resubmitting_a_key_replaces_the_queued_request():
    budget = _budget(limit=1000)
    budget.submit("BTCUSDT", 20, "old", now_ns=T0)
    budget.submit("BTCUSDT", 20, "new", now_ns=T0)

    grants = budget.poll(T0)
    assert [g.payload[1] for g in grants] == ["new"]


def test_just_after_the_minute_turns_the_previous_minutes_spending_still_binds():
    budget = _budget(limit=100, guard_ms=1000)
    minute = 1_000 * 60 * S
    budget.submit("a", 90, now_ns=minute + 59 * S)
    assert len(budget.poll(minute + 59 * S)) == 1
    budget.submit("b", 20, now_ns=minute + 60 * S)

    assert budget.poll(minute + 60 * S + 500_000_000) == []  # venue may still be in the old minute
    assert len(budget.poll(minute + 61 * S)) == 1


def test_a_request_heavier_than_the_cap_is_refused_at_once():
    with pytest.raises(ValueError):
        _budget(limit=100, headroom=0.1).submit("x", 95)

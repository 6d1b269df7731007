"""The venue's lag or ours: the loop's busy share, weighted by the time each figure covers."""

from __future__ import annotations

from epochbot.engine.lag import LOCAL, OK, REPLACE, LagJudge

MS = 1_000_000


def feed(judge: LagJudge, now: int, pattern: list[tuple[float, int]], seconds: float) -> int:
    """Repeat ``pattern`` ((busy share, interval ms), ...) for ``seconds``; returns the clock."""
    end = now + int(seconds * 1000 * MS)
    while now < end:
        for busy, ms in pattern:
            now += ms * MS
            judge.on_load(now, busy)
    return now


def test_a_loop_held_most_of_the_time_is_saturated_though_most_of_its_ticks_are_idle_ones():
    judge = LagJudge()
    feed(judge, 10**12, [(0.97, 600)] + [(0.1, 50)] * 2, 10)  # held 600 ms, then two quick ticks

    assert judge.saturated() and judge.busy() > 0.8


def test_a_loop_with_time_to_spare_is_not_saturated_and_a_lagging_venue_is_replaced():
    judge = LagJudge()
    feed(judge, 10**12, [(0.3, 50)], 10)

    action, why = judge.judge(4000.0, 50, 0.2, 50, transport_replace_ms=3000, queue_warn_ms=1000)

    assert not judge.saturated() and action == REPLACE and "transport latency" in why


def test_latency_while_saturated_and_a_long_queue_are_both_ours():
    judge = LagJudge()
    feed(judge, 10**12, [(0.99, 50)], 10)

    latency = judge.judge(4000.0, 50, 0.2, 50, transport_replace_ms=3000, queue_warn_ms=1000)
    queue = LagJudge().judge(10.0, 50, 1500.0, 50, transport_replace_ms=3000, queue_warn_ms=1000)

    assert latency[0] == LOCAL and "busy" in latency[1]
    assert queue[0] == LOCAL and "queue delay" in queue[1]


def test_no_load_figure_judges_the_latency_at_its_word_and_a_calm_session_is_ok():
    judge = LagJudge()
    for _ in range(100):
        judge.on_load(10**12, -1.0)

    assert judge.judge(4000.0, 50, 0.2, 50, 3000, 1000)[0] == REPLACE
    assert judge.judge(40.0, 50, 0.2, 50, 3000, 1000) == (OK, "")

"""Telemetry: log-linear buckets, rolling percentiles, window expiry, market silence."""

from __future__ import annotations

import math
import random
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from epochbot.engine.telemetry import RollingHistogram, Telemetry, bucket_of, bucket_upper


@settings(max_examples=500, deadline=None)
@given(value=st.integers(min_value=0, max_value=2**40))
def test_bucket_upper_bounds_the_value_within_seven_percent(value):
    upper = bucket_upper(bucket_of(value))

    assert upper >= value
    assert upper - value <= max(0, 0.07 * value)


@settings(max_examples=300, deadline=None)
@given(a=st.integers(0, 2**40), b=st.integers(0, 2**40))
def test_bucket_of_is_monotone(a, b):
    lo, hi = sorted((a, b))

    assert bucket_of(lo) <= bucket_of(hi)


def test_bucket_upper_is_strictly_increasing_over_the_index_range():
    uppers = [bucket_upper(i) for i in range(32, 40 * 16)]

    assert all(x < y for x, y in pairwise(uppers))


def exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 2000))
def test_rolling_percentiles_match_exact_percentiles_within_tolerance(seed, n):
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(8, 2)) for _ in range(n)]
    hist = RollingHistogram(window_s=10)
    for i, v in enumerate(values):
        hist.record(v, now_s=100 + i % 5)

    stats = hist.stats(now_s=104)

    assert stats.count == n
    assert stats.max == max(values) / 1000
    for got, q in ((stats.p50, 0.5), (stats.p99, 0.99)):
        exact = exact_percentile(values, q) / 1000
        assert exact <= got <= exact * 1.07 + 1e-9


def test_samples_older_than_the_window_expire():
    hist = RollingHistogram(window_s=3)
    hist.record(5_000_000, now_s=10)
    hist.record(1_000, now_s=12)

    assert hist.stats(now_s=12).count == 2
    assert hist.stats(now_s=13).count == 1
    assert hist.stats(now_s=13).max == 1.0


def test_a_reused_slot_forgets_its_old_second():
    hist = RollingHistogram(window_s=2)
    hist.record(9_000, now_s=0)

    hist.record(1_000, now_s=2)  # same slot as second 0

    stats = hist.stats(now_s=2)
    assert (stats.count, stats.max) == (1, 1.0)


def test_negative_samples_are_clamped_to_zero():
    hist = RollingHistogram(window_s=2)

    hist.record(-50, now_s=1)

    assert hist.stats(1).max == 0.0 and hist.stats(1).count == 1


def test_empty_window_reports_zero_count():
    assert RollingHistogram(window_s=5).stats(100).count == 0


def test_whole_run_figures_outlive_the_window_and_a_window_restart():
    hist = RollingHistogram(window_s=2)
    hist.record(2_000, 0)
    hist.record(4_000, 1)

    hist.restart_window()

    assert hist.stats(now_s=10**9).count == 0
    run = hist.run_stats()
    assert (run.count, run.max) == (2, 4.0)


def test_silence_is_zero_before_any_market_data():
    assert Telemetry().silence_ns(now=10**12) == 0


def test_silence_is_time_since_last_market_receive_per_connection_and_symbol():
    tel = Telemetry()
    tel.on_market("A", 0, recv_ts=1_000_000_000, process_ts=1_000_000_000)
    tel.on_market("B", 0, recv_ts=1_500_000_000, process_ts=1_500_000_000)

    assert tel.silence_ns(2_000_000_000) == 500_000_000
    assert tel.silence_ns(2_000_000_000, "A") == 1_000_000_000


def test_queue_delay_and_transport_latency_are_recorded_in_milliseconds():
    tel = Telemetry()
    tel.clock_offset_ns = 0

    tel.on_market("A", exchange_ts_ms=1_000, recv_ts=1_000_000_000 + 30_000_000, process_ts=1_000_000_000 + 35_000_000)

    assert tel.queue.stats(1).max == 5.0
    assert tel.transport.stats(1).max == 30.0


def test_reset_connection_restarts_silence_from_the_new_session():
    tel = Telemetry()
    tel.on_market("A", 0, recv_ts=1_000, process_ts=1_000)

    tel.reset_connection(now=5_000)

    assert tel.silence_ns(6_000) == 1_000
    assert tel.silence_ns(6_000, "A") == 1_000

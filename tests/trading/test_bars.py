"""Kline backfill planning and range bars."""

from __future__ import annotations

import pytest

from epochbot.trading.bars import GapRange, RangeBarBuilder, backfill_requests, find_gaps, interval_ms

M = 60_000


def test_interval_names_convert_to_milliseconds_and_months_are_refused():
    assert [interval_ms(i) for i in ("1s", "1m", "15m", "4h", "1d", "1w")] == [
        1_000,
        M,
        15 * M,
        4 * 3_600_000,
        86_400_000,
        604_800_000,
    ]
    with pytest.raises(ValueError):
        interval_ms("1M")


def test_no_gaps_when_every_candle_is_present():
    gaps = find_gaps([i * M for i in range(10)], "1m", 0, 9 * M)

    assert gaps.gaps == () and gaps.missing == 0


def test_missing_candles_inside_at_the_start_and_at_the_end_are_listed_as_ranges():
    have = [2 * M, 3 * M, 7 * M]

    gaps = find_gaps(have, "1m", 0, 9 * M)

    assert gaps.gaps == (GapRange(0, M, M), GapRange(4 * M, 6 * M, M), GapRange(8 * M, 9 * M, M))
    assert gaps.missing == 7


def test_off_grid_and_duplicate_open_times_are_reported_not_trusted():
    gaps = find_gaps([0, M, M, M + 5, 2 * M], "1m", 0, 2 * M)

    assert gaps.gaps == () and gaps.misaligned == (M + 5,) and gaps.duplicates == 1


def test_an_empty_history_is_one_gap_over_the_whole_span_with_bounds_aligned_inward():
    gaps = find_gaps([], "1m", 30_000, 5 * M + 1)

    assert gaps.gaps == (GapRange(M, 5 * M, M),)


def test_backfill_requests_are_cut_to_the_venue_limit():
    requests = backfill_requests([GapRange(0, 2_499 * M, M)], limit=1_000)

    assert requests == [(0, 999 * M), (1_000 * M, 1_999 * M), (2_000 * M, 2_499 * M)]


def test_a_range_bar_closes_when_price_moves_the_threshold_from_its_open():
    bars = RangeBarBuilder(threshold_bps=10)  # 0.10%

    closed = [bars.on_trade(p, 1, ts) for ts, p in enumerate([10_000, 10_005, 9_995, 10_009, 10_010, 10_011])]

    bar = closed[4]
    assert closed[:4] == [None] * 4 and bar is not None
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades, bar.open_ts, bar.close_ts) == (
        10_000,
        10_010,
        9_995,
        10_010,
        5,
        5,
        0,
        4,
    )
    assert bars.forming.open == 10_011


def test_a_downward_move_closes_a_range_bar_too():
    bars = RangeBarBuilder(threshold_bps=100)

    bars.on_trade(10_000, 1, 0)
    done = bars.on_trade(9_900, 1, 1)

    assert done is not None and done.close == 9_900 and done.low == 9_900


def test_range_bars_keep_bounded_memory():
    bars = RangeBarBuilder(threshold_bps=1, keep=5)

    for i in range(100):
        bars.on_trade(10_000 + (i % 2) * 10, 1, i)

    assert len(bars.bars) == 5 and bars.bars[-1].close_ts == 99

"""OrderBook continuity rules, state machine and views, one rule per test."""

from __future__ import annotations

import pytest

from epochbot.book.book import BookState, DiffOutcome, IllegalTransition, OrderBook, SnapshotOutcome, VenueRules
from epochbot.model.numeric import UnitCodec
from tests.core._support import diff

BIDS = [["100.00", "1.000"], ["99.00", "2.000"]]
ASKS = [["101.00", "1.500"], ["102.00", "3.000"]]


def synced_book(rules: VenueRules = VenueRules.SPOT, last_update_id: int = 100) -> OrderBook:
    book = OrderBook("BTCUSDT", rules)
    if rules is VenueRules.SPOT:
        book.on_diff(diff(last_update_id + 1, last_update_id + 1, [["98.00", "1.000"]]))
    else:
        book.on_diff(diff(last_update_id, last_update_id + 1, [["98.00", "1.000"]], pu=last_update_id - 1))
    assert book.on_snapshot(last_update_id, BIDS, ASKS) is SnapshotOutcome.SYNCED
    return book


def snapshot_fields(book: OrderBook) -> tuple:
    return (
        book.state,
        dict(book.bids),
        dict(book.asks),
        book.best_bid,
        book.best_ask,
        book.last_update_id,
        list(book.buffer),
        book.codec,
        book.tick,
        book.awaiting_bridge,
    )


# ------------------------------------------------------------------ spot bridging and chaining


def test_spot_first_event_bridging_last_update_id_plus_one_syncs():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    book.on_diff(diff(95, 99))
    book.on_diff(diff(100, 103, [["100.00", "5.000"]]))

    outcome = book.on_snapshot(100, BIDS, ASKS)

    assert outcome is SnapshotOutcome.SYNCED
    assert book.last_update_id == 103
    assert book.top_strings()[0][0] == ["100", "5"]


def test_spot_buffered_events_at_or_below_last_update_id_are_dropped():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    book.on_diff(diff(99, 100, [["100.00", "0.000"]]))  # u == lastUpdateId: must be dropped
    book.on_diff(diff(101, 101))

    book.on_snapshot(100, BIDS, ASKS)

    assert book.bids[book.codec.price["100.00"]] == book.codec.qty["1.000"]
    assert book.last_update_id == 101


def test_spot_first_event_not_bridging_is_no_bridge():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    book.on_diff(diff(100, 100))  # dropped (u <= 100)
    book.on_diff(diff(102, 103))  # U=102 > lastUpdateId+1=101

    outcome = book.on_snapshot(100, BIDS, ASKS)

    assert outcome is SnapshotOutcome.NO_BRIDGE
    assert book.state is BookState.INVALID
    assert book.gaps == 0


def test_spot_next_event_must_start_at_previous_final_plus_one():
    book = synced_book()

    assert book.on_diff(diff(102, 103)) is DiffOutcome.APPLIED
    assert book.on_diff(diff(105, 106)) is DiffOutcome.GAP
    assert book.state is BookState.INVALID
    assert book.gaps == 1


def test_spot_entirely_old_diff_after_sync_is_a_harmless_duplicate():
    book = synced_book()
    before = (dict(book.bids), dict(book.asks), book.last_update_id)

    outcome = book.on_diff(diff(90, 101, [["100.00", "0"]]))

    assert outcome is DiffOutcome.DUPLICATE
    assert book.state is BookState.SYNCED
    assert (dict(book.bids), dict(book.asks), book.last_update_id) == before
    assert book.duplicates == 1


def test_spot_snapshot_older_than_first_buffered_event_is_too_old():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    book.on_diff(diff(105, 106))

    outcome = book.on_snapshot(103, BIDS, ASKS)  # 103 + 1 < 105

    assert outcome is SnapshotOutcome.TOO_OLD
    assert book.state is BookState.BUFFERING
    assert len(book.buffer) == 1


def test_too_old_snapshot_then_newer_snapshot_syncs_from_kept_buffer():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    book.on_diff(diff(105, 106))
    book.on_snapshot(103, BIDS, ASKS)

    outcome = book.on_snapshot(104, BIDS, ASKS)

    assert outcome is SnapshotOutcome.SYNCED
    assert book.last_update_id == 106


def test_snapshot_installed_before_any_diff_then_non_bridging_diff_is_stale_snapshot():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    assert book.on_snapshot(100, BIDS, ASKS) is SnapshotOutcome.SYNCED

    outcome = book.on_diff(diff(150, 151))

    assert outcome is DiffOutcome.STALE_SNAPSHOT
    assert book.state is BookState.INVALID
    assert book.gaps == 0


def test_snapshot_installed_before_any_diff_then_bridging_diff_applies():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    book.on_snapshot(100, BIDS, ASKS)

    assert book.on_diff(diff(95, 100)) is DiffOutcome.DUPLICATE
    assert book.on_diff(diff(99, 102, [["100.50", "1.000"]])) is DiffOutcome.APPLIED
    assert book.best_bid == book.codec.price["100.50"]


# ------------------------------------------------------------------ USD-M


def test_usdm_first_event_must_contain_last_update_id():
    book = OrderBook("BTCUSDT", VenueRules.USDM)
    book.on_diff(diff(95, 99, pu=94))  # u < 100: dropped
    book.on_diff(diff(100, 104, [["100.00", "7.000"]], pu=99))  # U <= 100 <= u

    outcome = book.on_snapshot(100, BIDS, ASKS)

    assert outcome is SnapshotOutcome.SYNCED
    assert book.last_update_id == 104
    assert book.bids[book.codec.price["100.00"]] == book.codec.qty["7.000"]


def test_usdm_event_with_u_equal_to_last_update_id_is_kept_not_dropped():
    book = OrderBook("BTCUSDT", VenueRules.USDM)
    book.on_diff(diff(98, 100, [["100.00", "0.000"]], pu=97))

    book.on_snapshot(100, BIDS, ASKS)

    assert book.codec.price["100.00"] not in book.bids
    assert book.last_update_id == 100


def test_usdm_snapshot_older_than_first_buffered_event_is_too_old():
    book = OrderBook("BTCUSDT", VenueRules.USDM)
    book.on_diff(diff(99, 100, pu=97))

    outcome = book.on_snapshot(96, BIDS, ASKS)  # 96 < U=99 and pu=97 != 96

    assert outcome is SnapshotOutcome.TOO_OLD


def test_usdm_snapshot_equal_to_the_buffered_first_diffs_pu_bridges_it():
    book = OrderBook("BTCUSDT", VenueRules.USDM)
    book.on_diff(diff(99, 100, pu=98))

    outcome = book.on_snapshot(98, BIDS, ASKS)  # 98 < U=99, but pu=98: continuous

    assert outcome is SnapshotOutcome.SYNCED and book.last_update_id == 100 and not book.awaiting_bridge


def test_usdm_broken_pu_chain_inside_the_buffer_is_no_bridge():
    book = OrderBook("BTCUSDT", VenueRules.USDM)
    book.on_diff(diff(99, 100, pu=98))
    book.on_diff(diff(102, 103, pu=101))  # pu should be 100

    outcome = book.on_snapshot(100, BIDS, ASKS)

    assert outcome is SnapshotOutcome.NO_BRIDGE
    assert book.state is BookState.INVALID
    assert book.gaps == 0


def test_usdm_pu_must_equal_previous_final_id():
    book = synced_book(VenueRules.USDM)

    assert book.on_diff(diff(102, 105, pu=101)) is DiffOutcome.APPLIED
    assert book.on_diff(diff(107, 108, pu=106)) is DiffOutcome.GAP
    assert book.gaps == 1
    assert book.state is BookState.INVALID


def test_usdm_ids_need_not_be_contiguous_when_pu_chains():
    book = synced_book(VenueRules.USDM)

    assert book.on_diff(diff(150, 160, pu=101)) is DiffOutcome.APPLIED
    assert book.last_update_id == 160


def test_usdm_entirely_old_diff_is_dropped_as_duplicate():
    book = synced_book(VenueRules.USDM)

    assert book.on_diff(diff(90, 95, pu=89)) is DiffOutcome.DUPLICATE
    assert book.state is BookState.SYNCED


# ------------------------------------------------------------------ crossed / bad levels


def test_diff_that_crosses_the_book_invalidates_it():
    book = synced_book()

    outcome = book.on_diff(diff(102, 102, [["101.00", "1.000"]]))

    assert outcome is DiffOutcome.CROSSED
    assert book.state is BookState.INVALID
    assert book.gaps == 1


def test_crossed_snapshot_is_rejected():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)

    outcome = book.on_snapshot(100, [["102.00", "1.0"]], [["101.00", "1.0"]])

    assert outcome is SnapshotOutcome.CROSSED
    assert book.state is BookState.BUFFERING
    assert not book.bids and not book.asks


def test_bad_level_string_in_diff_invalidates_with_bad_level():
    book = synced_book()

    outcome = book.on_diff(diff(102, 102, [["-100.00", "1.000"]]))

    assert outcome is DiffOutcome.BAD_LEVEL
    assert book.state is BookState.INVALID


def test_level_finer_than_the_scale_is_a_bad_level():
    book = synced_book()

    assert book.on_diff(diff(102, 102, [], [["101.005", "1.000"]])) is DiffOutcome.BAD_LEVEL


def test_bad_level_in_snapshot_is_rejected():
    book = OrderBook("BTCUSDT", VenueRules.SPOT, codec=UnitCodec(2, 3))

    assert book.on_snapshot(100, [["1e2", "1.000"]], ASKS) is SnapshotOutcome.BAD_LEVEL
    assert book.state is BookState.BUFFERING


# ------------------------------------------------------------------ state machine


def test_snapshot_on_a_synced_book_raises_and_leaves_it_untouched():
    book = synced_book()
    before = snapshot_fields(book)

    with pytest.raises(IllegalTransition):
        book.on_snapshot(500, [["50.00", "1.000"]], [["60.00", "1.000"]])

    assert snapshot_fields(book) == before


def test_invalidate_moves_any_state_to_invalid_and_clears_the_buffer():
    book = OrderBook("BTCUSDT", VenueRules.SPOT)
    book.on_diff(diff(1, 2))

    book.invalidate("operator")

    assert book.state is BookState.INVALID
    assert book.buffer == []
    assert book.last_problem == "operator"


def test_invalid_book_buffers_diffs_and_resyncs_on_the_next_snapshot():
    book = synced_book()
    book.on_diff(diff(110, 110))  # gap
    book.on_diff(diff(111, 112, [["100.00", "9.000"]]))

    outcome = book.on_snapshot(110, BIDS, ASKS)

    assert outcome is SnapshotOutcome.SYNCED
    assert book.last_update_id == 112
    assert book.resyncs == 2


def test_reset_returns_the_book_to_empty():
    book = synced_book()

    book.reset()

    assert book.state is BookState.EMPTY
    assert (book.bids, book.asks, book.best_bid, book.best_ask, book.last_update_id, book.buffer) == (
        {},
        {},
        None,
        None,
        0,
        [],
    )


def test_buffer_overflow_keeps_the_newest_half_and_reports_overflow():
    book = OrderBook("BTCUSDT", VenueRules.SPOT, buffer_limit=4)
    for i in range(1, 5):
        assert book.on_diff(diff(i, i)) is DiffOutcome.BUFFERED

    outcome = book.on_diff(diff(5, 5))

    assert outcome is DiffOutcome.OVERFLOW
    assert [d.first_id for d in book.buffer] == [3, 4, 5]


def test_after_overflow_a_snapshot_older_than_the_kept_buffer_is_too_old():
    book = OrderBook("BTCUSDT", VenueRules.SPOT, buffer_limit=4)
    for i in range(1, 6):
        book.on_diff(diff(i, i))

    assert book.on_snapshot(1, BIDS, ASKS) is SnapshotOutcome.TOO_OLD
    assert book.on_snapshot(2, BIDS, ASKS) is SnapshotOutcome.SYNCED
    assert book.last_update_id == 5


# ------------------------------------------------------------------ best price and views


def test_deleting_the_best_bid_finds_a_level_added_off_the_snapshot_price_grid():
    # Snapshot prices 1.00 and 2.00 suggest a tick of 1.00; a later 1.50 must still be found.
    book = OrderBook("X", VenueRules.SPOT)
    book.on_snapshot(10, [["2.00", "1"], ["1.00", "1"]], [["5.00", "1"]])
    book.on_diff(diff(11, 11, [["1.50", "1"]]))

    book.on_diff(diff(12, 12, [["2.00", "0"]]))

    assert book.best_bid == book.codec.price["1.50"]
    assert book.check_invariants() is None


def test_deleting_the_best_ask_walks_to_the_next_level():
    book = synced_book()

    book.on_diff(diff(102, 102, [], [["101.00", "0.000"]]))

    assert book.best_ask == book.codec.price["102.00"]


def test_deleting_an_absent_level_is_legal_and_changes_nothing():
    book = synced_book()
    before = (dict(book.bids), dict(book.asks))

    outcome = book.on_diff(diff(102, 102, [["50.00", "0.00000000"]], [["150.00", "0.000"]]))

    assert outcome is DiffOutcome.APPLIED
    assert (dict(book.bids), dict(book.asks)) == before


def test_top_returns_best_levels_first_in_units():
    book = synced_book()
    p, q = book.codec.price, book.codec.qty

    bids, asks = book.top(1)

    assert bids == [(p["100.00"], q["1.000"])]
    assert asks == [(p["101.00"], q["1.500"])]


def test_top_strings_are_plain_decimals_without_trailing_zeros():
    book = synced_book()

    bids, asks = book.top_strings()

    assert bids == [["100", "1"], ["99", "2"], ["98", "1"]]
    assert asks == [["101", "1.5"], ["102", "3"]]


def test_top_strings_of_a_book_without_scale_is_empty():
    assert OrderBook("X").top_strings() == ([], [])


def test_state_hash_is_deterministic_for_identical_books():
    assert synced_book().state_hash() == synced_book().state_hash()


def test_state_hash_changes_when_a_level_changes():
    book = synced_book()
    before = book.state_hash()

    book.on_diff(diff(102, 102, [["99.00", "2.001"]]))

    assert book.state_hash() != before


def test_check_invariants_reports_a_wrong_cached_best_price():
    book = synced_book()
    book.best_bid = book.codec.price["99.00"]

    assert "cached best" in book.check_invariants()

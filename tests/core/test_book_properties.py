"""OrderBook against a naive Decimal reference model (Binance's documented rules, applied plainly)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epochbot.book.book import BookState, DiffOutcome, OrderBook, SnapshotOutcome, VenueRules
from tests.core._support import diff


def px(ticks: int) -> str:
    """Price in 0.01 steps, printed with Binance's 8-decimal padding."""
    return f"{ticks // 100}.{ticks % 100:02d}000000"


ZEROS = ("0.000", "0.00000000", "0")

qty_text = st.integers(min_value=1, max_value=10**6).map(lambda n: f"{n // 1000}.{n % 1000:03d}00000")
bid_level = st.tuples(st.integers(1, 120).map(px), st.one_of(qty_text, st.sampled_from(ZEROS)))
ask_level = st.tuples(st.integers(121, 240).map(px), st.one_of(qty_text, st.sampled_from(ZEROS)))


@st.composite
def scenario(draw, rules: VenueRules):
    # Snapshot prices sometimes on a coarse grid (multiples of 10 ticks): the book must not
    # assume the venue's tick from them.
    coarse = draw(st.booleans())
    grid = 10 if coarse else 1
    snap_bids = draw(
        st.lists(
            st.tuples(st.integers(1, 12).map(lambda k: px(k * grid)), qty_text),
            min_size=1,
            max_size=12,
            unique_by=lambda level: level[0],
        )
    )
    snap_asks = draw(
        st.lists(
            st.tuples(st.integers(1, 12).map(lambda k: px(120 + k * grid)), qty_text),
            min_size=1,
            max_size=12,
            unique_by=lambda level: level[0],
        )
    )
    spans = draw(st.lists(st.integers(1, 4), min_size=1, max_size=25))
    diffs = []
    first = 1000
    prev = None
    for span in spans:
        final = first + span - 1
        bids = draw(st.lists(bid_level, max_size=5, unique_by=lambda level: level[0]))
        asks = draw(st.lists(ask_level, max_size=5, unique_by=lambda level: level[0]))
        diffs.append(diff(first, final, bids, asks, pu=(prev if rules is VenueRules.USDM else None), epoch=1))
        prev = final
        first = final + 1
    low = 1000 - 1 if rules is VenueRules.SPOT else 1000
    last_update_id = draw(st.integers(low, diffs[-1].final_id))
    arrive_before = draw(st.integers(0, len(diffs)))
    return snap_bids, snap_asks, diffs, last_update_id, arrive_before


def applies(rules: VenueRules, d, last_update_id: int) -> bool:
    return d.final_id > last_update_id if rules is VenueRules.SPOT else d.final_id >= last_update_id


def apply_reference(ref: dict, levels) -> None:
    for price, qty in levels:
        if Decimal(qty) == 0:
            ref.pop(Decimal(price), None)
        else:
            ref[Decimal(price)] = Decimal(qty)


def as_decimal_side(book: OrderBook, side: dict) -> dict:
    codec = book.codec
    return {Decimal(codec.price_str(p)): Decimal(codec.qty_str(q)) for p, q in side.items()}


def assert_matches(book: OrderBook, ref_bids: dict, ref_asks: dict) -> None:
    assert as_decimal_side(book, book.bids) == ref_bids
    assert as_decimal_side(book, book.asks) == ref_asks
    best_bid = Decimal(book.codec.price_str(book.best_bid)) if book.best_bid is not None else None
    best_ask = Decimal(book.codec.price_str(book.best_ask)) if book.best_ask is not None else None
    assert best_bid == (max(ref_bids) if ref_bids else None)
    assert best_ask == (min(ref_asks) if ref_asks else None)
    assert book.check_invariants() is None


def run_scenario(rules: VenueRules, data) -> None:
    snap_bids, snap_asks, diffs, last_update_id, arrive_before = data
    book = OrderBook("BTCUSDT", rules)
    ref_bids = {Decimal(p): Decimal(q) for p, q in snap_bids}
    ref_asks = {Decimal(p): Decimal(q) for p, q in snap_asks}

    for d in diffs[:arrive_before]:
        assert book.on_diff(d) is DiffOutcome.BUFFERED
    outcome = book.on_snapshot(
        last_update_id, [list(level) for level in snap_bids], [list(level) for level in snap_asks]
    )
    for d in diffs[:arrive_before]:
        if applies(rules, d, last_update_id):
            apply_reference(ref_bids, d.bids)
            apply_reference(ref_asks, d.asks)

    assert outcome is SnapshotOutcome.SYNCED
    assert book.state is BookState.SYNCED
    assert_matches(book, ref_bids, ref_asks)
    for d in diffs[arrive_before:]:
        result = book.on_diff(d)
        if applies(rules, d, last_update_id):
            apply_reference(ref_bids, d.bids)
            apply_reference(ref_asks, d.asks)
            assert result is DiffOutcome.APPLIED
        else:
            assert result is DiffOutcome.DUPLICATE
        assert_matches(book, ref_bids, ref_asks)
    assert book.gaps == 0
    assert book.last_update_id == max(last_update_id, diffs[-1].final_id)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenario(VenueRules.SPOT))
def test_spot_book_equals_reference_model_after_snapshot_and_every_diff(data):
    run_scenario(VenueRules.SPOT, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=scenario(VenueRules.USDM))
def test_usdm_book_equals_reference_model_after_snapshot_and_every_diff(data):
    run_scenario(VenueRules.USDM, data)


@settings(max_examples=100, deadline=None)
@given(
    levels=st.lists(st.tuples(st.integers(1, 400), st.integers(0, 50)), min_size=1, max_size=60),
)
def test_random_bid_and_ask_churn_keeps_cached_best_prices_exact_or_reports_crossed(levels):
    # Bids and asks from overlapping ranges: every diff either applies with exact cached best
    # prices, or crosses the book, which invalidates it.
    book = OrderBook("X", VenueRules.SPOT)
    book.on_snapshot(1, [["1.00", "1"]], [["5.00", "1"]])
    ref_bids = {Decimal("1.00"): Decimal(1)}
    ref_asks = {Decimal("5.00"): Decimal(1)}
    update_id = 1
    for i, (ticks, qty) in enumerate(levels):
        update_id += 1
        level = [[px(ticks), f"{qty}.00"]]
        side_is_bid = i % 2 == 0
        d = diff(update_id, update_id, level if side_is_bid else [], [] if side_is_bid else level)
        outcome = book.on_diff(d)
        apply_reference(ref_bids if side_is_bid else ref_asks, level)
        crossed = ref_bids and ref_asks and max(ref_bids) >= min(ref_asks)
        if crossed:
            assert outcome is DiffOutcome.CROSSED
            assert book.state is BookState.INVALID
            return
        assert outcome is DiffOutcome.APPLIED
        assert_matches(book, ref_bids, ref_asks)

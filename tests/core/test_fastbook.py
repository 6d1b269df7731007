"""epochbot.book._fastbook (the optional C accelerator of OrderBook._apply_levels) against the pure-Python path.

* ``levels_to_units`` equals ``epochbot.model.numeric.parse_units`` on every pair (same ints, or both raise);
* ``apply_levels`` (the fused call the book uses) leaves a book exactly as the Python path does,
  including bad levels (nothing touched) and values beyond 64 bits (general C path);
* ``apply_side`` equals the per-side loop of ``OrderBook._apply_levels_py`` (dict, top, lost);
* the book property tests (reference Decimal model) run with the C path forced on and off.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochbot.book.book as book_mod
from epochbot.book.book import DiffOutcome, OrderBook, VenueRules
from epochbot.model.numeric import DecimalFormatError, parse_units
from tests.core import test_book_properties as props
from tests.core._support import diff

fb = pytest.importorskip("epochbot.book._fastbook")


# ----------------------------------------------------------------------------- both paths


@pytest.fixture(params=["c", "python"])
def book_path(request, monkeypatch):
    use_c = request.param == "c"
    monkeypatch.setattr(book_mod, "USE_FASTBOOK", use_c)
    calls = {"py": 0, "c": 0}
    py_apply = OrderBook._apply_levels_py
    c_apply = fb.apply_levels

    def spy_py(self, bids, asks):
        calls["py"] += 1
        return py_apply(self, bids, asks)

    def spy_c(*args):
        calls["c"] += 1
        return c_apply(*args)

    monkeypatch.setattr(OrderBook, "_apply_levels_py", spy_py)
    monkeypatch.setattr(fb, "apply_levels", spy_c)
    yield request.param
    # The forced path, and only it, did the work.
    assert (calls["c"] > 0, calls["py"] > 0) == (use_c, not use_c), calls


def test_fastbook_is_the_default_when_built():
    assert book_mod.USE_FASTBOOK is True
    assert book_mod._fastbook is fb


@pytest.mark.parametrize("rules", [VenueRules.SPOT, VenueRules.USDM])
def test_book_equals_reference_model_on_both_paths(book_path, rules):
    inner = (
        props.test_spot_book_equals_reference_model_after_snapshot_and_every_diff
        if rules is VenueRules.SPOT
        else props.test_usdm_book_equals_reference_model_after_snapshot_and_every_diff
    )
    inner()  # a hypothesis test: runs its own examples with the forced path


def test_churn_keeps_best_prices_exact_on_both_paths(book_path):
    props.test_random_bid_and_ask_churn_keeps_cached_best_prices_exact_or_reports_crossed()


def test_bad_level_invalidates_without_touching_the_book_on_both_paths(book_path):
    book = OrderBook("X", VenueRules.SPOT)
    book.on_snapshot(1, [["1.00", "1"]], [["5.00", "1"]])
    before = (dict(book.bids), dict(book.asks), book.best_bid, book.best_ask)
    outcome = book.on_diff(diff(2, 2, [["2.00", "3"], ["1.5e0", "1"]], []))
    assert outcome is DiffOutcome.BAD_LEVEL
    assert (book.bids, book.asks, book.best_bid, book.best_ask) == before


# ----------------------------------------------------------------------------- levels_to_units


def _py_parse(text, decimals):
    try:
        return ("ok", parse_units(text, decimals))
    except (DecimalFormatError, ValueError, TypeError):
        return ("err", None)


def _c_parse(text, decimals):
    try:
        [(p, _)] = fb.levels_to_units([[text, "0"]], decimals, 0)
        return ("ok", p)
    except (ValueError, TypeError):
        return ("err", None)


digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
valid_decimal = st.one_of(
    st.builds(lambda w, f: f"{w}.{f}", digits, st.text(alphabet="0123456789", min_size=0, max_size=12)),
    digits,
    # extra fractional zeros beyond the scale, and big values beyond 64 bits
    st.builds(lambda w, z: f"{w}.{'0' * z}", digits, st.integers(0, 14)),
    st.integers(0, 10**30).map(str),
)
junk = st.one_of(
    st.sampled_from(
        [
            "",
            "1.",
            ".5",
            ".",
            "-1",
            "+1",
            "-0.5",
            "1e5",
            "1E-3",
            "1.5e0",
            " 1",
            "1 ",
            "1_000",
            "1.2.3",
            "0x10",
            "nan",
            "inf",
            "١٢",
            "1.٢",
            "１",
            "1,5",
            "\t2",
        ]
    ),
    st.text(max_size=8),
    st.builds(lambda s, d: s + d, st.sampled_from(["-", "+", " ", "e"]), digits),
    st.builds(lambda d, s: d + s, digits, st.sampled_from(["e3", " ", "-", ".-1", ".1e2", "x"])),
)


@settings(max_examples=800, deadline=None)
@given(text=st.one_of(valid_decimal, junk), decimals=st.integers(0, 12))
def test_levels_to_units_parses_exactly_like_parse_units(text, decimals):
    assert _c_parse(text, decimals) == _py_parse(text, decimals)


@settings(max_examples=300, deadline=None)
@given(
    levels=st.lists(st.tuples(st.one_of(valid_decimal, junk), st.one_of(valid_decimal, junk)), max_size=30),
    pd=st.integers(0, 12),
    qd=st.integers(0, 12),
    as_tuples=st.booleans(),
)
def test_levels_to_units_matches_pairwise_parse_or_raises_whole(levels, pd, qd, as_tuples):
    arg = [tuple(level) if as_tuples else list(level) for level in levels]
    try:
        expected = [(parse_units(p, pd), parse_units(q, qd)) for p, q in levels]
    except DecimalFormatError:
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            fb.levels_to_units(arg, pd, qd)
    else:
        got = fb.levels_to_units(arg, pd, qd)
        assert got == expected
        assert all(type(p) is int and type(q) is int for p, q in got)


@pytest.mark.parametrize(
    "levels, exc",
    [
        ([[1, "1"]], TypeError),
        ([["1", None]], TypeError),
        ([["1", 2.5]], TypeError),
        ([[b"1", "1"]], TypeError),
        ([["1", "1", "1"]], ValueError),
        ([["1"]], ValueError),
        ([[]], ValueError),
        ([5], TypeError),
        ([["1.00", "1"], ["2.00", "-1"]], ValueError),
        ([["99999999999999999999.99", "1"], ["x", "1"]], ValueError),
    ],
)
def test_levels_to_units_rejects_bad_shapes_and_types(levels, exc):
    with pytest.raises(exc):
        fb.levels_to_units(levels, 2, 3)


def test_levels_to_units_edges():
    assert fb.levels_to_units([], 2, 3) == []
    assert fb.levels_to_units([["27123.40", "0.000"], ["303", "1."]], 2, 3) == [(2712340, 0), (30300, 1000)]
    assert fb.levels_to_units([["0.35130000", "0.00000000"]], 8, 8) == [(35130000, 0)]
    big = "9" * 25
    assert fb.levels_to_units([[big + ".12", "9223372036854775807"]], 2, 0) == [(int(big + "12"), 2**63 - 1)]
    assert fb.levels_to_units([["9223372036854775808", "0"]], 0, 0) == [(2**63, 0)]
    assert fb.levels_to_units([["0.000", "0"]], 40, 40) == [(0, 0)]
    assert fb.levels_to_units([["1", "0"]], 40, 0) == [(10**40, 0)]
    with pytest.raises(DecimalFormatError, match="more than 2 decimals"):
        fb.levels_to_units([["1.001", "1"]], 2, 3)
    with pytest.raises(ValueError):
        fb.levels_to_units([["1", "1"]], -1, 3)


# ----------------------------------------------------------------------------- apply_side


def _py_apply_side(side: dict, pairs: list, is_bid: bool, best):
    """The loop of OrderBook._apply_levels_py for one side, verbatim."""
    top = None
    lost = False
    better = (lambda a, b: a > b) if is_bid else (lambda a, b: a < b)
    for p, q in pairs:
        if q:
            side[p] = q
            if top is None or better(p, top):
                top = p
        elif side.pop(p, None) is not None and p == best:
            lost = True
    if top is not None and top not in side:
        present = [p for p, _ in pairs if p in side]
        top = (max if is_bid else min)(present, default=None)
    return top, lost


prices = st.integers(0, 40)
book_side = st.dictionaries(prices, st.integers(1, 9), max_size=25)
message = st.lists(st.tuples(prices, st.one_of(st.just(0), st.integers(1, 9))), max_size=30)


@settings(max_examples=600, deadline=None)
@given(side=book_side, pairs=message, is_bid=st.booleans(), data=st.data())
def test_apply_side_matches_python_loop(side, pairs, is_bid, data):
    best = data.draw(st.one_of(st.none(), st.sampled_from(sorted(side)) if side else st.none(), prices))
    py_side = dict(side)
    c_side = dict(side)
    expected = _py_apply_side(py_side, pairs, is_bid, best)
    got = fb.apply_side(c_side, list(pairs), is_bid, best)
    assert got == expected
    assert c_side == py_side
    assert list(c_side) == list(py_side)  # same insertion order too


def test_apply_side_repeated_price_ending_deleted():
    side = {5: 1, 7: 1}
    # 9 set then deleted in the same message: top falls back to the best surviving new price
    assert fb.apply_side(side, [(9, 2), (8, 3), (9, 0)], True, 7) == (8, False)
    assert side == {5: 1, 7: 1, 8: 3}
    # every new price ended deleted; the old best was removed too
    assert fb.apply_side(side, [(6, 1), (6, 0), (7, 0)], True, 7) == (None, True)
    assert side == {5: 1, 8: 3}
    # deleting an absent level is harmless and does not count as losing the best
    assert fb.apply_side(side, [(7, 0)], True, 7) == (None, False)
    # asks: min
    asks = {10: 1}
    assert fb.apply_side(asks, [(12, 1), (11, 1), (10, 0)], False, 10) == (11, True)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 10**22), st.integers(0, 3)), max_size=20), tick=st.integers(1, 10**21))
def test_grid_tick_matches_python_gcd_loop(pairs, tick):
    import math

    expected = tick
    for p, _ in pairs:
        if p % expected:
            expected = math.gcd(expected, p)
    assert fb.grid_tick(list(pairs), tick) == expected


# ----------------------------------------------------------------------------- fused apply_levels


def _book(bids, asks, tick):
    book = OrderBook("X", VenueRules.SPOT)
    assert (
        book.on_snapshot(1, [[f"{p}.{0:02d}", "1"] for p in bids] or [], [[f"{p}.00", "1"] for p in asks]).value
        == "synced"
    )
    if tick is not None:
        book.tick = tick
    return book


def _state(book):
    return (dict(book.bids), list(book.bids), dict(book.asks), list(book.asks), book.best_bid, book.best_ask, book.tick)


price_text = st.one_of(
    st.integers(1, 60).map(lambda p: f"{p}.00"),
    st.integers(100, 6000).map(lambda c: f"{c // 100}.{c % 100:02d}"),  # off a coarse grid
    st.integers(1, 60).map(lambda p: f"{p}.0000"),
)
qty_text_any = st.one_of(st.sampled_from(["0", "0.000", "0.00000000"]), st.integers(1, 99).map(lambda q: f"{q}.5"))
bad_text = st.sampled_from(["-1.00", "1e2", "", " 1", "1.001", "x"])


level = st.tuples(
    st.one_of(price_text, price_text, price_text, bad_text),
    st.one_of(qty_text_any, qty_text_any, qty_text_any, bad_text),
).map(list)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    snap_bids=st.lists(st.integers(1, 30), min_size=1, max_size=10, unique=True),
    snap_asks=st.lists(st.integers(31, 60), min_size=1, max_size=10, unique=True),
    messages=st.lists(st.tuples(st.lists(level, max_size=10), st.lists(level, max_size=10)), max_size=12),
    tick=st.sampled_from([None, 1, 10, 100, 1000, 2**70]),
)
def test_fused_apply_levels_leaves_the_book_exactly_like_the_python_path(snap_bids, snap_asks, messages, tick):
    # Raw _apply_levels on both paths (crossed or not, repeated prices, deletions of absent
    # levels, bad strings): same dicts and insertion order, same cached bests and tick after every
    # message, and the same messages raise (leaving the book untouched).
    c_book = _book(snap_bids, snap_asks, tick)
    py_book = _book(snap_bids, snap_asks, tick)
    try:
        for bids, asks in messages:
            results = []
            for book, use_c in ((c_book, True), (py_book, False)):
                book_mod.USE_FASTBOOK = use_c
                before = _state(book)
                try:
                    book._apply_levels(bids, asks)
                    results.append("ok")
                except (DecimalFormatError, ValueError, TypeError):
                    results.append("raised")
                    assert _state(book) == before
            assert results[0] == results[1]
            assert _state(c_book) == _state(py_book)
    finally:
        book_mod.USE_FASTBOOK = True


def test_fused_apply_levels_falls_back_for_values_beyond_64_bits(monkeypatch):
    big = "9" * 30
    for use_c in (True, False):
        monkeypatch.setattr(book_mod, "USE_FASTBOOK", use_c)
        book = _book([5], [7], None)
        book._apply_levels([[big + ".00", "1"]], [[big + "9.00", "2"]])
        assert book.best_bid == int(big + "00") and book.best_ask == 700
        assert book.asks[int(big + "900")] == 2 and book.bids[int(big + "00")] == 1
        assert fb.apply_levels(book.bids, book.asks, [[big, "1"]], [], 2, 3, None, None, None) is None

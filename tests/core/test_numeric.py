"""epochbot.model.numeric: exact decimal strings <-> integer units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epochbot.model.numeric import DecimalFormatError, UnitCodec, decimals_of, format_units, parse_units


@settings(max_examples=300, deadline=None)
@given(units=st.integers(min_value=0, max_value=10**24), decimals=st.integers(min_value=0, max_value=12))
def test_format_then_parse_returns_the_same_units(units, decimals):
    text = format_units(units, decimals)

    assert parse_units(text, decimals) == units


@settings(max_examples=300, deadline=None)
@given(units=st.integers(min_value=0, max_value=10**24), decimals=st.integers(min_value=0, max_value=12))
def test_formatted_units_are_plain_decimals_equal_to_the_exact_value(units, decimals):
    text = format_units(units, decimals)

    assert "e" not in text.lower() and "+" not in text and "-" not in text
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")
    assert Decimal(text) == Decimal(units).scaleb(-decimals)


@settings(max_examples=300, deadline=None)
@given(
    whole=st.integers(min_value=0, max_value=10**12),
    frac=st.text(alphabet="0123456789", max_size=8),
    pad=st.integers(min_value=0, max_value=4),
)
def test_parse_of_padded_binance_strings_matches_decimal(whole, frac, pad):
    decimals = len(frac) + pad
    text = f"{whole}.{frac}{'0' * pad}" if frac or pad else str(whole)

    units = parse_units(text, decimals)

    assert Decimal(units).scaleb(-decimals) == Decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "-1.5",
        "+1.5",
        "1e5",
        "1.5E-3",
        "abc",
        "",
        " 1.0",
        "1.0 ",
        "1..0",
        "1.2.3",
        ".5",
        "1,5",
        "０.1",
        "NaN",
        "inf",
        "0x10",
    ],
)
def test_parse_rejects_signs_exponents_and_junk(text):
    with pytest.raises(DecimalFormatError):
        parse_units(text, 8)


def test_parse_rejects_non_string_input():
    with pytest.raises(DecimalFormatError):
        parse_units(1.5, 8)  # type: ignore[arg-type]


def test_parse_rejects_digits_finer_than_the_scale():
    with pytest.raises(DecimalFormatError, match="more than 2 decimals"):
        parse_units("1.005", 2)


def test_parse_accepts_trailing_zeros_beyond_the_scale():
    assert parse_units("0.35130000", 4) == 3513


def test_zero_quantities_in_both_binance_paddings_parse_to_zero():
    assert parse_units("0.000", 3) == 0
    assert parse_units("0.00000000", 3) == 0


def test_small_price_formats_without_exponent():
    assert format_units(6547, 8) == "0.00006547"


def test_whole_number_formats_without_a_decimal_point():
    assert format_units(30300000000, 8) == "303"


def test_negative_units_format_with_a_leading_minus():
    assert format_units(-15, 1) == "-1.5"


def test_decimals_of_counts_significant_fraction_digits_only():
    assert decimals_of("0.01000000") == 2
    assert decimals_of("1.00000000") == 0
    assert decimals_of("100") == 0


def test_codec_from_filters_uses_tick_and_step_precision():
    codec = UnitCodec.from_filters("0.00010000", "1.00000000")

    assert (codec.price_decimals, codec.qty_decimals) == (4, 0)


def test_codec_infer_uses_full_printed_precision_of_the_snapshot():
    codec = UnitCodec.infer([["0.35130000", "6195.00"], ["27123.4", "0.001"]])

    assert (codec.price_decimals, codec.qty_decimals) == (8, 3)


def test_codec_caches_parsed_strings():
    codec = UnitCodec(8, 8)

    first = codec.price["0.35130000"]
    second = codec.price["0.35130000"]

    assert first == second == 35130000
    assert "0.35130000" in codec.price


def test_codec_cache_is_bounded_by_clearing():
    codec = UnitCodec(2, 2, cache_limit=4)

    for i in range(10):
        codec.qty[f"{i}.00"]

    assert len(codec.qty) <= 4
    assert codec.qty["3.00"] == 300


def test_codec_cache_miss_with_junk_raises_and_caches_nothing():
    codec = UnitCodec(2, 2)

    with pytest.raises(DecimalFormatError):
        codec.price["-1"]
    assert "-1" not in codec.price


def test_codec_rejects_negative_decimals():
    with pytest.raises(ValueError):
        UnitCodec(-1, 0)


def test_codec_formats_units_back_to_strings():
    codec = UnitCodec(8, 8)

    assert codec.price_str(codec.price["0.00006547"]) == "0.00006547"
    assert codec.qty_str(codec.qty["303.00000000"]) == "303"

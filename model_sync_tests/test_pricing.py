"""Exact price arithmetic: parsing published prices, the per-million shift and cost buckets.

Pure functions only; every expected value is written out as a literal so the tests do not
lean on the code under test to compute what it should return.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from model_sync.pricing import PriceError, cost_bucket, parse_price, per_million


def assert_exact(actual: Decimal, expected_text: str) -> None:
    """Equal in value *and* in digits/exponent, so ``0.12000000`` or ``3E+6`` cannot pass."""
    expected = Decimal(expected_text)
    assert isinstance(actual, Decimal)
    assert actual == expected
    assert actual.as_tuple() == expected.as_tuple()


# --- parse_price: accepted inputs --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("0.00000012", "0.00000012", id="documented-form"),
        pytest.param("3e-6", "0.000003", id="exponent-lower"),
        pytest.param("3E-6", "0.000003", id="exponent-upper"),
        pytest.param("1e3", "1E+3", id="positive-exponent"),
        pytest.param("+1", "1", id="explicit-plus"),
        pytest.param(".5", "0.5", id="no-leading-digit"),
        pytest.param("5.", "5", id="no-fraction-digits"),
        pytest.param("10", "10", id="integer-string"),
        pytest.param("1000000000", "1000000000", id="at-upper-bound"),
        pytest.param(
            "0.0000001234567890123456789012345",
            "0.0000001234567890123456789012345",
            id="31-decimal-places",
        ),
        pytest.param("0." + "0" * 999 + "1", "1E-1000", id="1000-decimal-places"),
    ],
)
def test_parse_price_accepts_decimal_text_exactly(value: str, expected: str) -> None:
    """Decimal strings are the documented form and must come back digit for digit."""
    assert_exact(parse_price(value), expected)


@pytest.mark.parametrize("value", ["0", "-0", "0.000", "-0.0", "0e-5", "0E+3", 0, 0.0, -0.0])
def test_parse_price_turns_every_zero_into_one_canonical_zero(value: object) -> None:
    """ "0", "-0" and "0.000" all mean no charge; storing one form keeps change detection quiet."""
    assert_exact(parse_price(value), "0")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0, "0", id="int-zero"),
        pytest.param(5, "5", id="int"),
        pytest.param(1_000_000_000, "1000000000", id="int-at-bound"),
        pytest.param(3e-06, "0.000003", id="float-3e-06"),
        pytest.param(0.1, "0.1", id="float-0.1"),
        pytest.param(1e-07, "1E-7", id="float-1e-07"),
        pytest.param(0.1 + 0.2, "0.30000000000000004", id="float-shortest-repr"),
        pytest.param(2.5, "2.5", id="float-2.5"),
    ],
)
def test_parse_price_json_numbers_have_a_defined_outcome(value: object, expected: str) -> None:
    """Ints are exact and floats use their shortest repr, never the binary expansion."""
    assert_exact(parse_price(value), expected)


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        pytest.param("1.25e-06", "0.00000125", id="exponent"),
        pytest.param("3e-06", "0.000003", id="3e-06"),
        pytest.param("0.30000000000000004", "0.30000000000000004", id="17-significant-digits"),
        pytest.param(
            "0.00000012345678901234567890123", "0.00000012345678901234567890123", id="29-places"
        ),
        pytest.param("1E+3", "1E+3", id="positive-exponent"),
        pytest.param("1e9", "1E+9", id="at-upper-bound"),
        pytest.param("-0.0", "0", id="negative-zero"),
        pytest.param("0E-8", "0", id="zero-with-exponent"),
    ],
)
def test_parse_price_takes_json_numbers_decoded_from_their_text(served: str, expected: str) -> None:
    """Responses are decoded with JSON fractions as ``Decimal`` of their text
    (``sources.base.decode_json``); such a price is the number as written, digit for digit."""
    assert_exact(parse_price(Decimal(served)), expected)


# --- parse_price: rejected inputs --------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("-0.000001", id="negative-string"),
        pytest.param("-1", id="negative-integer-string"),
        pytest.param(-1, id="negative-int"),
        pytest.param(-0.5, id="negative-float"),
        pytest.param("NaN", id="NaN"),
        pytest.param("nan", id="nan"),
        pytest.param("sNaN", id="sNaN"),
        pytest.param("Infinity", id="Infinity"),
        pytest.param("-Infinity", id="-Infinity"),
        pytest.param("inf", id="inf"),
        pytest.param(float("nan"), id="float-nan"),
        pytest.param(float("inf"), id="float-inf"),
        pytest.param(float("-inf"), id="float-minus-inf"),
        pytest.param("", id="empty"),
        pytest.param("abc", id="abc"),
        pytest.param("1_000", id="underscore"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("1 ", id="trailing-space"),
        pytest.param("1\n", id="trailing-newline"),
        pytest.param("0x10", id="hex"),
        pytest.param("1,5", id="comma"),
        pytest.param("$1", id="currency-sign"),
        pytest.param("1e", id="dangling-exponent"),
        pytest.param(".", id="lone-point"),
        pytest.param("1.2.3", id="two-points"),
        pytest.param(True, id="True"),
        pytest.param(False, id="False"),
        pytest.param(None, id="None"),
        pytest.param([], id="empty-list"),
        pytest.param(["0.1"], id="list"),
        pytest.param({"usd": "0.1"}, id="dict"),
        pytest.param(Decimal("-1.5e-06"), id="negative-decimal"),
        pytest.param(Decimal("NaN"), id="decimal-NaN"),
        pytest.param(Decimal("sNaN"), id="decimal-sNaN"),
        pytest.param(Decimal("Infinity"), id="decimal-Infinity"),
        pytest.param(Decimal("-Infinity"), id="decimal-minus-Infinity"),
    ],
)
def test_parse_price_rejects_what_is_not_a_non_negative_number(value: object) -> None:
    """Anything Decimal() would take but is no price (NaN, "1_000", " 1") must be refused."""
    with pytest.raises(PriceError):
        parse_price(value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1000000000.000000001", id="just-over-bound"),
        pytest.param("1e10", id="exponent-over-bound"),
        pytest.param("1e999999999", id="enormous-exponent"),
        pytest.param("9" * 5000, id="5000-digit-string"),
        pytest.param(10**10, id="int-over-bound"),
        pytest.param(1e300, id="float-over-bound"),
        pytest.param("0." + "0" * 1000 + "1", id="1001-decimal-places"),
        pytest.param("1e-999999999", id="enormous-negative-exponent"),
        pytest.param(Decimal("1000000000.000000001"), id="decimal-just-over-bound"),
        pytest.param(Decimal("1e999999999"), id="decimal-enormous-exponent"),
        pytest.param(Decimal("1E-1001"), id="decimal-1001-decimal-places"),
    ],
)
def test_parse_price_rejects_values_outside_the_storable_range(value: object) -> None:
    """Out-of-range values would overflow NUMERIC or abort the write; refuse them up front."""
    with pytest.raises(PriceError):
        parse_price(value)


def test_parse_price_rejects_a_huge_int_with_price_error() -> None:
    """An int too long for str() is still just a price over the bound, not a crash."""
    with pytest.raises(PriceError):
        parse_price(10**5000)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("１２", id="fullwidth-12"),
        pytest.param("١٢", id="arabic-indic-12"),
        pytest.param("0.0000０3", id="fullwidth-zero-inside"),
    ],
)
def test_parse_price_rejects_non_ascii_digits(value: str) -> None:
    """A JSON-number-shaped price has ASCII digits only; full-width or Arabic digits are not one."""
    with pytest.raises(PriceError):
        parse_price(value)


def test_price_error_is_a_value_error() -> None:
    """Pydantic turns ValueErrors into per-field validation errors, so PriceError must be one."""
    assert issubclass(PriceError, ValueError)


# --- per_million -------------------------------------------------------------------------


def test_per_million_of_the_issue_example_is_exactly_0_12() -> None:
    """The issue's own example: 0.00000012 per token is 0.12 per 1M, not 0.12000000."""
    result = per_million(Decimal("0.00000012"))
    assert result == Decimal("0.12")
    assert str(result) == "0.12"
    assert result.as_tuple() == (0, (1, 2), -2)


@pytest.mark.parametrize(
    ("per_token", "expected"),
    [
        ("0.00000012", "0.12"),
        ("0.000015", "15"),
        ("0.0000225", "22.5"),
        ("0.00000375", "3.75"),
        ("0.00000000002", "0.00002"),
        ("0.0000000000000000000000001", "0.0000000000000000001"),
        ("0.000003", "3"),
        ("3", "3000000"),
        ("10", "10000000"),
        ("1E+3", "1000000000"),
        ("1000000000", "1000000000000000"),
        ("0", "0"),
    ],
)
def test_per_million_shifts_the_point_six_places(per_token: str, expected: str) -> None:
    """value × 1,000,000 exactly, written without exponent or padding zeros."""
    assert_exact(per_million(Decimal(per_token)), expected)
    assert per_million(Decimal(per_token)) == Decimal(per_token) * 1_000_000


def test_per_million_keeps_every_digit_of_a_long_price() -> None:
    """parse_price accepts up to 1000 decimal places, so the shift must not round to 28 digits."""
    per_token = Decimal("0.0000001234567890123456789012345678901234567")  # 37 significant digits
    assert_exact(per_million(per_token), "0.1234567890123456789012345678901234567")


def test_per_million_of_no_price_is_none() -> None:
    """A missing price stays missing rather than becoming zero."""
    assert per_million(None) is None


# --- cost_bucket -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_per_token", "bucket"),
    [
        ("0", "free"),
        ("0.00000012", "free"),
        ("0.000000999999999", "free"),
        ("0.00000099999999999999999999999999", "free"),  # rounds to 1e-6 as a float
        ("0.000001", "ultra-low"),
        ("0.0000010000", "ultra-low"),  # same value, other exponent
        ("0.000001000000001", "ultra-low"),
        ("0.000004999999999", "ultra-low"),
        ("0.000005", "low"),
        ("0.000005000000001", "low"),
        ("0.000019999999999", "low"),
        ("0.00002", "medium"),
        ("0.000020000000001", "medium"),
        ("0.000099999999999", "medium"),
        ("0.0001", "high"),
        ("0.000100000000001", "high"),
        ("0.000999999999999", "high"),
        ("0.001", "premium"),
        ("0.001000000000001", "premium"),
        ("1000", "premium"),
    ],
)
def test_cost_bucket_thresholds_are_exclusive_upper_bounds(
    output_per_token: str, bucket: str
) -> None:
    """Each bound belongs to the next bucket up, compared exactly as decimals."""
    assert cost_bucket(Decimal(output_per_token)) == bucket


def test_cost_bucket_without_an_output_price_is_unknown_not_premium() -> None:
    """Embeddings and empty pricing have no output price; guessing "premium" would mis-route."""
    assert cost_bucket(None) is None

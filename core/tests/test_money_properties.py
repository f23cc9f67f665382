"""Properties of amounts: text is ASCII decimal digits or an InvalidRequest, and a valid
amount survives minor units and formatting exactly (never a float on the way)."""

from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmo_core import money
from mmo_core.errors import InvalidRequest

BOUNDED = settings(max_examples=200, deadline=None, derandomize=True)

CURRENCIES = st.sampled_from(sorted(money.CURRENCY_EXPONENTS))
ASCII_DIGITS = "0123456789"
# Characters that `Decimal()` reads as digits but that are not ASCII: fullwidth,
# Arabic-Indic, Extended Arabic-Indic, Devanagari, Bengali, Thai, mathematical bold.
FOREIGN_DIGITS = st.sampled_from(
    [
        chr(base + d)
        for base in (0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1D7CE)
        for d in range(10)
    ]
    + list("\u00b2\u00b3\u00b9\u2070\u2074\u2075")
)
WHITESPACE = st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"])


def _minor_amounts(draw_currency: str) -> st.SearchStrategy[int]:
    # MAX_AMOUNT is exclusive, in major units
    return st.integers(
        min_value=1, max_value=int(money.MAX_AMOUNT.scaleb(money.exponent(draw_currency))) - 1
    )


@st.composite
def valid_amount_texts(draw: st.DrawFn) -> tuple[str, str, int]:
    """(text, currency, minor units) of an amount the currency can hold."""
    currency = draw(CURRENCIES)
    minor = draw(_minor_amounts(currency))
    digits = money.exponent(currency)
    whole, fraction = divmod(minor, 10**digits)
    if digits == 0:
        text = str(whole)
    else:
        fraction_text = str(fraction).rjust(digits, "0")
        # any number of decimals up to the exponent, as long as the cut ones are zeros
        keep = draw(st.integers(min_value=len(fraction_text.rstrip("0")), max_value=digits))
        text = f"{whole}.{fraction_text[:keep]}" if keep else str(whole)
    return text, currency, minor


@BOUNDED
@given(valid_amount_texts())
def test_valid_ascii_amounts_round_trip_exactly(case):
    text, currency, minor = case
    amount = money.parse_amount(text, currency)
    assert isinstance(amount, Decimal)
    assert money.to_minor(amount, currency) == minor
    assert money.from_minor(minor, currency) == amount
    assert money.parse_amount(money.format_amount(minor, currency), currency) == amount
    formatted = money.format_amount(minor, currency)
    assert Decimal(formatted) == Decimal(text)
    assert formatted.count(".") == (1 if money.exponent(currency) else 0)


@st.composite
def amount_texts_with_one_flaw(draw: st.DrawFn) -> str:
    """A valid amount text spoiled in one of the ways Decimal() would forgive."""
    text, _, _ = draw(valid_amount_texts())
    position = draw(st.integers(min_value=0, max_value=len(text)))
    flaw = draw(
        st.one_of(
            FOREIGN_DIGITS.map(lambda c: ("replace", c)),
            WHITESPACE.map(lambda c: ("edge", c)),
            st.sampled_from(["+", "-"]).map(lambda c: ("prefix", c)),
            st.sampled_from(["e3", "E+2", "e-0", "E0"]).map(lambda c: ("suffix", c)),
            st.just(("insert", "_")),
        )
    )
    kind, piece = flaw
    if kind == "replace":
        digit_positions = [i for i, c in enumerate(text) if c in ASCII_DIGITS]
        i = draw(st.sampled_from(digit_positions))
        return text[:i] + piece + text[i + 1 :]
    if kind == "edge":
        return draw(st.sampled_from([piece + text, text + piece, piece + text + piece]))
    if kind == "prefix":
        return piece + text
    if kind == "suffix":
        return text + piece
    return text[:position] + piece + text[position:] if 0 < position < len(text) else "1_000"


@BOUNDED
@given(amount_texts_with_one_flaw(), CURRENCIES)
@example("\uff11\uff10\uff10", "KES")
@example("\u0661\u0660\u0660", "KES")
@example("100\n", "KES")
@example(" 100", "UGX")
@example("1e3", "XOF")
@example("1_000", "KES")
@example("+5", "KES")
@example("\u00b2", "KES")
@example(".5", "KES")
@example("5.", "KES")
def test_anything_but_ascii_decimal_text_is_refused(text, currency):
    with pytest.raises(InvalidRequest):
        money.parse_amount(text, currency)


@BOUNDED
@given(
    st.sampled_from(["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "-0", "0", "0.00"])
    | st.builds(lambda n: "0" * n, st.integers(1, 30)),
    CURRENCIES,
)
def test_not_a_number_and_zero_are_refused(text, currency):
    with pytest.raises(InvalidRequest):
        money.parse_amount(text, currency)


@BOUNDED
@given(CURRENCIES, st.integers(min_value=1, max_value=10**6), st.integers(1, 5), st.data())
def test_more_significant_decimals_than_the_currency_holds_are_refused(
    currency, whole, extra, data
):
    digits = money.exponent(currency)
    kept = data.draw(st.text(ASCII_DIGITS, min_size=digits, max_size=digits))
    tail = data.draw(st.text(ASCII_DIGITS, min_size=extra - 1, max_size=extra - 1))
    last = data.draw(st.sampled_from("123456789"))
    text = f"{whole}.{kept}{tail}{last}"
    with pytest.raises(InvalidRequest):
        money.parse_amount(text, currency)


@BOUNDED
@given(st.text(max_size=60), CURRENCIES)
def test_any_text_is_an_amount_or_an_invalid_request(text, currency):
    try:
        amount = money.parse_amount(text, currency)
    except InvalidRequest:
        return
    assert text.isascii() and text.strip() == text
    assert amount.is_finite() and 0 < amount < money.MAX_AMOUNT
    assert money.from_minor(money.to_minor(amount, currency), currency) == amount


@BOUNDED
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.integers(max_value=0),
        st.integers(min_value=int(money.MAX_AMOUNT)),
        st.decimals(allow_nan=True, allow_infinity=True),
    ),
    CURRENCIES,
)
def test_values_that_are_not_amounts_are_refused(value, currency):
    try:
        amount = money.parse_amount(value, currency)
    except InvalidRequest:
        return
    assert isinstance(value, Decimal) and 0 < amount < money.MAX_AMOUNT


@BOUNDED
@given(st.decimals(allow_nan=True, allow_infinity=True), CURRENCIES)
def test_to_minor_takes_any_decimal_without_crashing(amount, currency):
    try:
        minor = money.to_minor(amount, currency)
    except InvalidRequest:
        return
    assert isinstance(minor, int)
    assert Decimal(minor).scaleb(-money.exponent(currency)) == amount

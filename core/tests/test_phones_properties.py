"""Properties of phone numbers: any text is E.164 or an InvalidRequest, and a masked number
never shows the whole number."""

import re

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmo_core import phones
from mmo_core.errors import InvalidRequest

BOUNDED = settings(max_examples=200, deadline=None, derandomize=True)

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
REGIONS = st.none() | st.sampled_from(["KE", "UG", "GH", "CM", "SN", "CI", "ZM", "US", "ZZ", "XX"])
# Any text, surrogates and control characters included (the default `text()` leaves out
# surrogates; `st.text()` would drop them), and text that looks like a number: digits, separators, letters, a plus.
ANY_TEXT = st.lists(
    st.characters() | st.characters(categories=["Cs"]) | st.just("\x00"), max_size=40
).map("".join)
NUMBERISH = st.text("+0123456789 -().#*xXextEXT/;", max_size=30) | st.builds(
    lambda cc, rest: f"+{cc}{rest}", st.integers(1, 999), st.text("0123456789", max_size=14)
)
# Real numbers of the gateway's markets, the property's positive side.
EXAMPLE_NUMBERS = [
    phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    for region in ("KE", "UG", "GH", "CM", "SN", "CI", "ZM", "TZ", "RW", "CD", "MG", "NE")
    if (n := phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE))
]


def _e164_or_invalid(raw, region, strict):
    try:
        e164 = phones.to_e164(raw, region, strict=strict)
    except InvalidRequest:
        return
    assert isinstance(e164, str) and E164.fullmatch(e164), e164


@BOUNDED
@given(ANY_TEXT | NUMBERISH, REGIONS, st.booleans())
@example("+254712345678\x00", None, True)
@example("\ud800", None, True)
@example("+" + "9" * 300, None, False)
@example("\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10", "KE", True)
def test_any_text_is_e164_or_an_invalid_request(raw, region, strict):
    _e164_or_invalid(raw, region, strict)


@BOUNDED
@given(
    st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=12), st.lists(st.text()))
)
def test_what_is_not_text_is_an_invalid_request(raw):
    with pytest.raises(InvalidRequest):
        phones.to_e164(raw)


@st.composite
def e164_numbers(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(EXAMPLE_NUMBERS) | NUMBERISH.filter(E164.fullmatch))


@BOUNDED
@given(e164_numbers())
def test_a_masked_number_never_shows_the_number(number):
    masked = phones.mask(number)
    assert masked != number
    assert len(masked) == len(number)
    digits = re.sub(r"\D", "", number)
    shown = re.sub(r"\D", "", masked)
    # at most the country code's first digits and the last two: never the national number
    assert len(shown) <= 5 and len(shown) < len(digits)
    if len(number) > 6:
        assert masked.endswith(number[-2:]) and "*" * (len(number) - 6) in masked


@BOUNDED
@given(ANY_TEXT)
def test_masking_any_text_hides_it(text):
    masked = phones.mask(text)
    if text and set(text) != {"*"}:
        assert masked != text
    assert len(masked) == len(text)


@BOUNDED
@given(st.sampled_from(EXAMPLE_NUMBERS))
def test_valid_numbers_are_their_own_e164(number):
    assert phones.to_e164(number) == number
    assert phones.to_e164(number.lstrip("+")) == number
    assert phones.to_e164(phones.international_digits(number)) == number

import pytest
from mmo_core import phones
from mmo_core.errors import InvalidRequest


@pytest.mark.parametrize(
    "raw", ["+254712345678", "254712345678", " +254 712 345 678 ", "+254-712-345678"]
)
def test_international_forms_normalise_to_e164(raw):
    assert phones.to_e164(raw) == "+254712345678"


@pytest.mark.parametrize(
    ("raw", "region"), [("0712345678", "KE"), ("0112345678", "KE"), ("772123456", "UG")]
)
def test_national_forms_need_a_region(raw, region):
    e164 = phones.to_e164(raw, region)
    assert e164.startswith("+") and phones.region_of(e164) == region


@pytest.mark.parametrize("raw", ["", "   ", "abc", "+2547", "+999123456789", None])
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(InvalidRequest):
        phones.to_e164(raw)


def test_possible_but_unassigned_numbers_pass_when_not_strict():
    assert phones.to_e164("+46733123450", strict=False) == "+46733123450"


def test_parts_and_masking():
    n = "+254712345678"
    assert phones.country_calling_code(n) == 254
    assert phones.national_number(n) == "712345678"
    assert phones.international_digits(n) == "254712345678"
    assert phones.last_digits(n) == "5678"
    masked = phones.mask(n)
    assert masked.startswith("+254") and masked.endswith("78") and "12345" not in masked
    assert phones.mask(None) == "" and phones.mask("+1234") == "*****"

from decimal import Decimal

import pytest
from mmo_core import money
from mmo_core.errors import InvalidRequest


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("150", "KES", Decimal("150.00")),
        ("99.5", "KES", Decimal("99.50")),
        ("1000", "UGX", Decimal(1000)),
        ("5000.000", "XOF", Decimal(5000)),
        (Decimal("1.25"), "GHS", Decimal("1.25")),
        (7, "TND", Decimal("7.000")),
    ],
)
def test_parse_amount_respects_the_currency_exponent(value, currency, expected):
    assert money.parse_amount(value, currency) == expected


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("1.5", "UGX"),
        ("0.001", "KES"),
        ("0", "KES"),
        ("-5", "KES"),
        ("NaN", "KES"),
        ("Infinity", "KES"),
        ("abc", "KES"),
        (1.5, "KES"),
        (True, "KES"),
        ("1e20", "KES"),
        ("10", "XYZ"),
    ],
)
def test_parse_amount_refuses_what_is_not_money(value, currency):
    with pytest.raises(InvalidRequest):
        money.parse_amount(value, currency)


def test_minor_units_round_trip():
    assert money.to_minor(Decimal("150.25"), "KES") == 15025
    assert money.to_minor(Decimal("5000"), "XOF") == 5000
    assert money.from_minor(15025, "KES") == Decimal("150.25")
    assert money.format_amount(15000, "KES") == "150.00"
    assert money.format_amount(5000, "XOF") == "5000"
    with pytest.raises(InvalidRequest):
        money.to_minor(Decimal("1.5"), "UGX")
    assert money.is_whole(Decimal("150.00")) and not money.is_whole(Decimal("1.5"))

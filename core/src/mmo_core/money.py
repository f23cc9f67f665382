"""Money without floats.

Amounts travel as strings ("150", "99.50") or `Decimal`, are checked against the ISO 4217
exponent of their currency (KES has 2 minor digits, UGX, XOF, XAF and GNF none), and are
stored as integers in minor units. A float is refused everywhere: binary floating point
cannot hold 0.10 exactly, and money must be exact.
"""

from __future__ import annotations

import re
from decimal import Decimal

from mmo_core.errors import InvalidRequest

# ISO 4217 minor-unit exponents of the currencies the gateway's operators use, plus the
# common settlement currencies. A currency missing here is refused rather than guessed.
CURRENCY_EXPONENTS: dict[str, int] = {
    "BIF": 0,
    "BWP": 2,
    "CDF": 2,
    "CVE": 2,
    "DJF": 0,
    "EGP": 2,
    "ETB": 2,
    "EUR": 2,
    "GBP": 2,
    "GHS": 2,
    "GMD": 2,
    "GNF": 0,
    "KES": 2,
    "KMF": 0,
    "LRD": 2,
    "LSL": 2,
    "MAD": 2,
    "MGA": 2,
    "MRU": 2,
    "MUR": 2,
    "MWK": 2,
    "MZN": 2,
    "NAD": 2,
    "NGN": 2,
    "RWF": 0,
    "SCR": 2,
    "SDG": 2,
    "SLE": 2,
    "SLL": 2,
    "SOS": 2,
    "SSP": 2,
    "STN": 2,
    "SZL": 2,
    "TND": 3,
    "TZS": 2,
    "UGX": 0,
    "USD": 2,
    "XAF": 0,
    "XOF": 0,
    "ZAR": 2,
    "ZMW": 2,
    "ZWG": 2,
    "OUV": 0,  # OUV: Orange's WebPay sandbox pseudo-currency
}


# Far above any mobile-money limit; keeps Decimal arithmetic and BIGINT columns safe.
MAX_AMOUNT = Decimal(10) ** 13

# What an amount written as text may look like: ASCII digits, an optional point and more
# ASCII digits. `Decimal()` alone is far more liberal (fullwidth and Arabic-Indic digits,
# surrounding whitespace, signs, exponents, underscores, NaN): none of that is money.
_AMOUNT_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# Long enough for any amount below MAX_AMOUNT with trailing zeros; refuses megabyte strings.
_AMOUNT_TEXT_MAX = 40


def exponent(currency: str) -> int:
    """Number of minor digits of `currency` (ISO 4217), or InvalidRequest if unknown."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidRequest(
            f"Unsupported currency {currency!r}", code="invalid_currency"
        ) from None


def parse_amount(value: str | int | Decimal, currency: str) -> Decimal:
    """Parse an amount given in major units and check it against the currency's exponent.

    Accepts a plain ASCII decimal string ("150", "99.50"), an int or a Decimal; refuses
    floats, any other text (signs, exponents, whitespace, non-ASCII digits, underscores),
    negatives, zero, NaN/Infinity and more decimal places than the currency has.
    """
    digits = exponent(currency)
    amount = _as_decimal(value)
    if not amount.is_finite():
        raise InvalidRequest(f"Invalid amount {value!r}", code="invalid_amount")
    if amount <= 0:
        raise InvalidRequest("The amount must be greater than zero", code="invalid_amount")
    if amount >= MAX_AMOUNT:
        raise InvalidRequest("The amount is too large", code="invalid_amount")
    quantum = Decimal(1).scaleb(-digits)
    if amount != amount.quantize(quantum):
        raise InvalidRequest(
            f"{currency} amounts have at most {digits} decimal places", code="invalid_amount"
        )
    return amount.quantize(quantum)


def _as_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        if len(value) <= _AMOUNT_TEXT_MAX and _AMOUNT_TEXT.fullmatch(value):
            return Decimal(value)
        raise InvalidRequest(
            f"Invalid amount {value[:_AMOUNT_TEXT_MAX]!r}: plain decimal digits only",
            code="invalid_amount",
        )
    raise InvalidRequest(
        "Amounts must be given as a decimal string, never a float", code="invalid_amount"
    )


def reported_amount(value: object, currency: str, *, provider: str | None = None) -> Decimal | None:
    """An amount an operator sent in a callback, checked like any other amount.

    None when it sent none (absent, null or ""); a JSON number (int, or Decimal when the
    body was decoded with `float_hook=Decimal`) or a decimal string otherwise. Anything
    else, and any amount `parse_amount` refuses (negative, zero, too many decimals, not a
    number), is an InvalidRequest: a callback whose amount cannot be money is malformed.
    """
    if value is None or value == "":
        return None
    try:
        return parse_amount(value, currency)  # type: ignore[arg-type]
    except InvalidRequest as exc:
        raise InvalidRequest(
            f"Unusable amount in the callback: {exc.message}",
            code="malformed_callback",
            provider=provider,
        ) from None


def to_minor(amount: Decimal, currency: str) -> int:
    """Major units to an integer count of minor units (150.25 KES -> 15025)."""
    digits = exponent(currency)
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidRequest(f"Invalid amount {amount!r}", code="invalid_amount")
    if abs(amount) >= MAX_AMOUNT:
        # past 28 significant digits `scaleb` rounds: the count would no longer be exact
        raise InvalidRequest("The amount is too large", code="invalid_amount")
    minor = amount.scaleb(digits)
    if minor != minor.to_integral_value():
        raise InvalidRequest(
            f"{currency} amounts have at most {digits} decimal places", code="invalid_amount"
        )
    return int(minor)


def from_minor(minor: int, currency: str) -> Decimal:
    """Integer minor units to a Decimal in major units, at the currency's exponent."""
    digits = exponent(currency)
    return Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def format_amount(minor: int, currency: str) -> str:
    """The canonical string of an amount held in minor units ("150.00" KES, "5000" XOF)."""
    return str(from_minor(minor, currency))


def is_whole(amount: Decimal) -> bool:
    """True when the amount has no fractional part (operators that take whole units only)."""
    return amount == amount.to_integral_value()


__all__ = [
    "CURRENCY_EXPONENTS",
    "exponent",
    "format_amount",
    "from_minor",
    "is_whole",
    "parse_amount",
    "reported_amount",
    "to_minor",
]

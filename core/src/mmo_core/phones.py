"""Phone numbers: E.164 inside the gateway, formatted per operator at the edge.

The host turns whatever the orchestrator sends into E.164 once (`to_e164`); a plugin then
asks for the parts its operator wants (`national_number`, `country_calling_code`) and the
helpers below. Full numbers never go to logs: use `mask`.
"""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import carrier

from mmo_core.errors import InvalidRequest


def _parse(raw: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    if not isinstance(raw, str):
        raise InvalidRequest("A phone number is required", code="invalid_msisdn")
    return _parse_text(raw, default_region)


# One payment reads its number three to five times (E.164, region, network, digits): each
# is parsed once. The PhoneNumber is shared, so nothing here may change it.
@functools.lru_cache(maxsize=8192)
def _parse_text(raw: str, default_region: str | None) -> phonenumbers.PhoneNumber:
    if not raw.strip():
        raise InvalidRequest("A phone number is required", code="invalid_msisdn")
    text = raw.strip()
    if default_region is None and not text.startswith("+"):
        # "254712345678" is a full international number typed without its plus sign
        text = "+" + text
    try:
        return phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidRequest("The phone number could not be read", code="invalid_msisdn") from None


def to_e164(raw: str, default_region: str | None = None, *, strict: bool = True) -> str:
    """Normalise a phone number to E.164 (`+254712345678`).

    `default_region` (ISO 3166 alpha-2) lets national forms such as `0712345678` be read.
    With `strict`, the number must be a valid number of its country's numbering plan;
    otherwise it must only have a possible length (for operators' test numbers).
    """
    number = _parse(raw, default_region)
    ok = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    if not ok:
        raise InvalidRequest("The phone number is not a valid number", code="invalid_msisdn")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str:
    """ISO 3166 alpha-2 region of an E.164 number ('KE' for +254...), or 'ZZ' if unknown."""
    return phonenumbers.region_code_for_number(_parse(e164, None)) or "ZZ"


# Brand names as phonenumbers' carrier data spells them ("MTN Cameroon", "Airtel"), to the
# small network ids providers declare; any other name is its first word, lower case.
NETWORK_BRANDS: tuple[str, ...] = (
    "safaricom",
    "airtel",
    "mtn",
    "orange",
    "moov",
    "vodacom",
    "vodafone",
    "tigo",
    "yas",
    "telkom",
    "halotel",
    "zamtel",
    "glo",
    "9mobile",
    "africell",
    "expresso",
    "free",
    "nexttel",
    "camtel",
    "econet",
    "telecel",
    "lonestar",
)


def network_id(name: str) -> str | None:
    """The small id of a carrier's name: 'MTN Cameroon' -> 'mtn', 'Airtel' -> 'airtel'."""
    lowered = name.strip().lower()
    if not lowered:
        return None
    for brand in NETWORK_BRANDS:
        if lowered.startswith(brand):
            return brand
    return "".join(ch for ch in lowered.split()[0] if ch.isalnum()) or None


def network_of(e164: str) -> str | None:
    """The mobile network a number was allocated to, by phonenumbers' carrier data
    ('safaricom' for +254712..., 'mtn' for +256772...), or None when it is not known.

    Numbers are ported between networks, so this is a prediction: the host's configured
    prefix table (MMO_NETWORK_PREFIXES) overrides it.
    """
    return network_id(carrier.name_for_number(_parse(e164, None), "en"))


def country_calling_code(e164: str) -> int:
    """The country calling code of an E.164 number (254 for +254...)."""
    code = _parse(e164, None).country_code
    if code is None:  # phonenumbers types it optional; a parsed number always has one
        raise InvalidRequest(f"No country code in {mask(e164)}", code="invalid_msisdn")
    return code


def national_number(e164: str) -> str:
    """The national significant number: no country code, no trunk zero ('712345678')."""
    return str(_parse(e164, None).national_number)


def international_digits(e164: str) -> str:
    """Country code and national number as digits only ('254712345678')."""
    return e164.lstrip("+")


def last_digits(e164: str, count: int = 4) -> str:
    """The last `count` digits of a number (the simulators choose their scenario by them)."""
    return e164[-count:]


def mask(e164: str | None) -> str:
    """A loggable form of a number: country code and last two digits only ('+254*******78')."""
    if not e164:
        return ""
    if len(e164) <= 6:
        return "*" * len(e164)
    head = e164[:4] if e164.startswith("+") else e164[:3]
    return head + "*" * (len(e164) - len(head) - 2) + e164[-2:]


__all__ = [
    "country_calling_code",
    "international_digits",
    "last_digits",
    "mask",
    "national_number",
    "network_id",
    "network_of",
    "region_of",
    "to_e164",
]

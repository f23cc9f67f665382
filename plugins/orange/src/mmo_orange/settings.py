"""The settings of the Orange plugin, filled from `MMO_ORANGE_*` variables.

The defaults are the simulator's: `mmo serve` in the sandbox works without any of them.
"""

from __future__ import annotations

from typing import ClassVar

from mmo_core.errors import ConfigurationError
from mmo_core.settings import ProviderSettings

FAMILIES = ("webpay", "cameroon", "sonatel")


class OrangeSettings(ProviderSettings, kw_only=True, forbid_unknown_fields=True):
    """Orange Money settings, per API family.

    `families` chooses the API family per country, as `CC:family` pairs separated by commas
    (`CM:cameroon,SN:sonatel`); a country not listed uses `default_family`. Each family may
    have its own absolute API root (`webpay_base_url`, `cameroon_base_url`,
    `sonatel_base_url`): empty means the provider's `base_url` (in the sandbox, the simulator
    mounted by the host).
    """

    families: str = "CM:cameroon,SN:sonatel"
    default_family: str = "webpay"

    # -- WebPay (Orange Developer, api.orange.com) ------------------------------------------
    webpay_base_url: str = ""
    client_id: str = "sandbox-orange-client"
    client_secret: str = "sandbox-orange-secret"
    merchant_key: str = "a86b2087"
    # the `{cc}` path segment: "dev" is Orange's sandbox (currency OUV); empty means the
    # payment's country in lower case (ci, ml, cm...) with its own currency (production)
    webpay_country: str = "dev"
    return_url: str = "https://merchant.example/orange/return"
    cancel_url: str = "https://merchant.example/orange/cancel"
    webpay_lang: str = "fr"
    # WebPay's `reference` field: "refers to the merchant name" (at most 30 characters)
    merchant_name: str = "MMO Gateway"

    # -- Orange Cameroon "omcoreapis" (merchant payment by USSD push, cash-in) --------------
    cameroon_base_url: str = ""
    cameroon_api_version: str = "1.0.2"
    cameroon_consumer_key: str = "sandbox-cm-key"
    cameroon_consumer_secret: str = "sandbox-cm-secret"
    # X-AUTH-TOKEN: base64 of the channel user's API credentials, issued by Orange
    cameroon_auth_token: str = "c2FuZGJveC1jaGFubmVsOnNhbmRib3gtcGFzc3dvcmQ="
    cameroon_channel_msisdn: str = "691234567"
    cameroon_pin: str = "1234"

    # -- Orange Senegal "Orange Money API" (Sonatel, api.orange-sonatel.com) ----------------
    sonatel_base_url: str = ""
    # the sources disagree on the token path (/oauth/token [O9] vs /oauth/v1/token [O8])
    sonatel_token_path: str = "/oauth/token"
    sonatel_client_id: str = "sandbox-sonatel-client"
    sonatel_client_secret: str = "sandbox-sonatel-secret"
    # merchant payments are made to this merchant code (partner idType CODE)
    sonatel_merchant_code: str = "599488"
    # cash-ins are paid from this retailer wallet (partner idType MSISDN), with its PIN
    # sent RSA-encrypted with the key of GET /api/account/v1/publicKeys
    sonatel_retailer_msisdn: str = "771112233"
    sonatel_pin: str = "1234"
    # the apiKey registered with the merchant callback (`mmo setup orange`); Sonatel echoes
    # it in every callback, which is checked against it in constant time
    sonatel_api_key: str = "sandbox-sonatel-callback-key"

    # -- simulator only ---------------------------------------------------------------------
    # seconds between a request and its notification
    callback_delay: float = 0.5
    # WebPay: complete the payment page by itself (no browser needed); a test can switch it
    # off at run time with POST /_simulator/orange/webpay {"autopay": false}
    sim_autopay: bool = True
    # the OTP the simulated payment page accepts
    sim_otp: str = "123456"
    # WebPay pay_token validity (Orange: 10 minutes) and OAuth token lifetime (about 90 days)
    sim_webpay_validity: float = 600.0
    sim_token_lifetime: int = 7_776_000

    required_in_production: ClassVar[tuple[str, ...]] = (
        "client_id",
        "client_secret",
        "merchant_key",
        "return_url",
        "cancel_url",
    )
    secret_fields: ClassVar[tuple[str, ...]] = (
        "callback_secret",
        "client_secret",
        "merchant_key",
        "cameroon_consumer_secret",
        "cameroon_auth_token",
        "cameroon_pin",
        "sonatel_client_secret",
        "sonatel_pin",
        "sonatel_api_key",
    )

    def family_map(self) -> dict[str, str]:
        """`families` as {country: family}; unknown families are refused."""
        result: dict[str, str] = {}
        for pair in self.families.split(","):
            if not pair.strip():
                continue
            country, _, family = pair.partition(":")
            family = family.strip().lower()
            if family not in FAMILIES:
                raise ConfigurationError(
                    f"Unknown Orange API family {family!r} in MMO_ORANGE_FAMILIES",
                    provider="orange",
                )
            result[country.strip().upper()] = family
        return result

    def uses(self, family: str) -> bool:
        """Does any country (or the default) go to `family`?"""
        return family == self.default_family or family in self.family_map().values()

    def family_for(self, country: str) -> str:
        """The API family serving `country` (ISO 3166 alpha-2)."""
        family = self.family_map().get(country.upper(), self.default_family)
        if family not in FAMILIES:
            raise ConfigurationError(
                f"Unknown Orange API family {family!r} in MMO_ORANGE_DEFAULT_FAMILY",
                provider="orange",
            )
        return family

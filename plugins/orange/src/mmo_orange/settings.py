"""The settings of the Orange plugin, filled from `MMO_ORANGE_*` variables.

The defaults are the simulator's: `mmo serve` in the sandbox works without any of them.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from mmo_core.errors import ConfigurationError
from mmo_core.settings import ProviderSettings

FAMILIES = ("webpay", "cameroon", "sonatel")


class OrangeSettings(ProviderSettings):  # kw_only and forbid_unknown_fields are inherited
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
    # the `{cc}` path segment: "dev" is Orange's sandbox (currency OUV), "ci", "ml"... one
    # country's offer with its currency. Empty (the default): "dev" in the sandbox, the
    # payment's own country in production (an empty variable counts as unset, so the
    # production behaviour must be the default)
    webpay_country: str = ""
    return_url: str = "https://merchant.example/orange/return"
    cancel_url: str = "https://merchant.example/orange/cancel"
    webpay_lang: str = "fr"
    # WebPay's `reference` field: "refers to the merchant name" (at most 30 characters)
    merchant_name: str = "MMO Gateway"
    # seconds a pay_token can be paid with (Orange's default: 10 minutes). A payment still
    # INITIATED a minute past it was never confirmed and can no longer be: it ends expired
    webpay_validity: float = 600.0

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

    # What production needs depends on the families in use: see `missing_in`.
    required_in_production: ClassVar[tuple[str, ...]] = ()
    # The settings each family needs in production: its credentials and identities.
    family_settings: ClassVar[dict[str, tuple[str, ...]]] = {
        "webpay": ("client_id", "client_secret", "merchant_key", "return_url", "cancel_url"),
        "cameroon": (
            "cameroon_consumer_key",
            "cameroon_consumer_secret",
            "cameroon_auth_token",
            "cameroon_channel_msisdn",
            "cameroon_pin",
        ),
        "sonatel": (
            "sonatel_client_id",
            "sonatel_client_secret",
            "sonatel_merchant_code",
            "sonatel_retailer_msisdn",
            "sonatel_pin",
            "sonatel_api_key",
        ),
    }
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

    def enabled_families(self) -> tuple[str, ...]:
        """The families some Orange country is served by: the mapped ones, and the default
        family unless every country is mapped elsewhere."""
        from mmo_orange.plugin import DECLARATION  # the countries the plugin serves

        mapped = self.family_map()
        default = self.default_family.strip().lower()
        if default not in FAMILIES:
            raise ConfigurationError(
                f"Unknown Orange API family {self.default_family!r} in MMO_ORANGE_DEFAULT_FAMILY",
                provider="orange",
            )
        served = {mapped.get(country, default) for country in DECLARATION.countries}
        return tuple(family for family in FAMILIES if family in served)

    def uses(self, family: str) -> bool:
        """Does any country go to `family`?"""
        return family in self.enabled_families()

    def missing_in(self, environment: str, explicit: frozenset[str]) -> tuple[str, ...]:
        """In production, every setting of every family in use, set by its variable.

        A setting left unset, or set to its sandbox default (a copied `.env.example`), is
        missing; so is `base_url` (the host needs it), and the own base URL of each family
        when two or more families would otherwise share `base_url` (they live on different
        hosts). Nothing is asked of a family no country uses. The sandbox needs nothing.
        """
        if environment != "production":
            return ()
        families = self.enabled_families()
        if "webpay" in families and self.webpay_country.strip().lower() == "dev":
            raise ConfigurationError(
                "MMO_ORANGE_WEBPAY_COUNTRY=dev is Orange's sandbox (currency OUV): in "
                "production leave it empty (each payment's country) or name a country offer",
                provider="orange",
                details=["MMO_ORANGE_WEBPAY_COUNTRY"],
            )
        defaults = {
            f.name: f.default
            for f in msgspec.structs.fields(type(self))
            if f.default is not msgspec.NODEFAULT
        }

        def unset(name: str) -> bool:
            value = getattr(self, name)
            return name not in explicit or (value != "" and value == defaults.get(name))

        needed = ["base_url"] if unset("base_url") else []
        for family in families:
            needed += [name for name in self.family_settings[family] if unset(name)]
        sharing = [f for f in families if not getattr(self, f"{f}_base_url")]
        if len(sharing) > 1:
            needed += [f"{family}_base_url" for family in sharing]
        return tuple(needed)

    def family_for(self, country: str) -> str:
        """The API family serving `country` (ISO 3166 alpha-2)."""
        family = self.family_map().get(country.upper(), self.default_family.strip().lower())
        if family not in FAMILIES:
            raise ConfigurationError(
                f"Unknown Orange API family {family!r} in MMO_ORANGE_DEFAULT_FAMILY",
                provider="orange",
            )
        return family

"""Airtel Money settings, filled from `MMO_AIRTEL_*` variables; defaults suit the simulator."""

from typing import ClassVar, Literal

from mmo_core.settings import ProviderSettings


class AirtelSettings(ProviderSettings):  # kw_only and forbid_unknown_fields are inherited
    """Credentials and options of one Airtel Open API application.

    - `client_id` / `client_secret`: the application's keys (developers.airtel.africa).
    - `country_base_urls`: per-country hosts, `ZM=https://openapi.airtel.co.zm,UG=...`;
      countries not listed use `base_url` (openapi[uat].airtel.africa or the simulator).
    - `country` / `currency`: the X-Country / X-Currency of calls about no payment
      (balance, health).
    - `countries`: the countries this application is enabled for (Airtel issues one
      application per country: `KE`, or `UG,KE`); empty: every market (the sandbox).
      A payment for another country is refused by `validate`; the simulator refuses the
      application's token with another X-Country (ROUTER007).
    - `pin` and `pin_encryption`: the disbursement wallet PIN, encrypted with Airtel's key
      (`v1`: RSA PKCS#1 v1.5, `v2`: Encryption 2.0, RSA OAEP-SHA256). `encryption_public_key`
      (base64 DER or PEM) saves fetching it from `/v1/rsa/encryption-keys`.
    - `collection_version`: `v1`, or `v2` (`/merchant/v2/payments/` and
      `/standard/v2/payments/refund`, signed with `x-signature` / `x-key`).
    - `disbursement_version`: `v1`, `v2` (adds `transaction.type`, `disbursement_type`) or
      `v3` (`/standard/v3/disbursements`, signed, PIN always in Encryption 2.0).
    - `balance_version` / `balance_types`: `v1` (one wallet) or `v2`
      (`/standard/v2/users/balance?type=`, one answer per type of `balance_types`,
      among DISB, COLL, CASHIN, CASHOUT).
    - `callback_auth` / `callback_private_key`: the application's "callback authentication"
      toggle and private key: callbacks then carry `hash`, checked before anything else.
    - `callback_url`: the callback URL configured in the Airtel portal (the simulator sends
      its callbacks there; when empty, to the `X-Callback-Url` header the plugin sends in
      the sandbox, see README).
    - `callback_delay`: simulator only, seconds before a callback is sent.
    """

    client_id: str = "airtel-sandbox-client"
    client_secret: str = "airtel-sandbox-secret"
    country_base_urls: str = ""
    country: str = "UG"
    currency: str = "UGX"
    countries: str = ""
    pin: str = "1234"
    pin_encryption: Literal["v1", "v2"] = "v1"
    encryption_public_key: str = ""
    collection_version: Literal["v1", "v2"] = "v1"
    disbursement_version: Literal["v1", "v2", "v3"] = "v1"
    balance_version: Literal["v1", "v2"] = "v1"
    balance_types: str = "DISB,COLL"
    disbursement_type: Literal["B2C", "B2B"] = "B2C"
    callback_auth: bool = False
    callback_private_key: str = "airtel-sandbox-callback-key"
    callback_url: str = ""
    callback_delay: float = 0.5

    required_in_production: ClassVar[tuple[str, ...]] = (
        "base_url",
        "client_id",
        "client_secret",
        "pin",
    )
    secret_fields: ClassVar[tuple[str, ...]] = (
        "callback_secret",
        "client_secret",
        "pin",
        "callback_private_key",
        "callback_url",
    )

    def missing_in(self, environment: str, explicit: frozenset[str]) -> tuple[str, ...]:
        """In production, callback authentication needs the portal's private key: the
        sandbox default would let anyone who read this code forge callbacks."""
        if (
            environment == "production"
            and self.callback_auth
            and "callback_private_key" not in explicit
        ):
            return ("callback_private_key",)
        return ()

    def wallet_types(self) -> tuple[str, ...]:
        """`balance_types` as a tuple of upper-case wallet types, in the given order."""
        types = (t.strip().upper() for t in self.balance_types.replace(";", ",").split(","))
        return tuple(dict.fromkeys(t for t in types if t))

    def application_countries(self) -> tuple[str, ...]:
        """`countries` as a tuple of upper-case country codes; empty: every market."""
        codes = (c.strip().upper() for c in self.countries.replace(";", ",").split(","))
        return tuple(dict.fromkeys(c for c in codes if c))

    def base_urls(self) -> dict[str, str]:
        """`country_base_urls` as a dict, country code to URL without trailing slash."""
        urls: dict[str, str] = {}
        for item in self.country_base_urls.replace(";", ",").split(","):
            country, _, url = item.partition("=")
            if country.strip() and url.strip():
                urls[country.strip().upper()] = url.strip().rstrip("/")
        return urls

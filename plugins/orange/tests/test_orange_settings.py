"""Orange settings as the host loads them (`mmo_core.settings.load_settings`): in
production every setting of every family in use must be set, nothing of the others."""

from __future__ import annotations

import pytest
from mmo_core.errors import ConfigurationError
from mmo_core.settings import load_settings
from mmo_orange.settings import OrangeSettings

WEBPAY = {
    "MMO_ORANGE_CLIENT_ID": "prod-client",
    "MMO_ORANGE_CLIENT_SECRET": "prod-secret",
    "MMO_ORANGE_MERCHANT_KEY": "0f1e2d3c",
    "MMO_ORANGE_RETURN_URL": "https://shop.example/om/return",
    "MMO_ORANGE_CANCEL_URL": "https://shop.example/om/cancel",
}
CAMEROON = {
    "MMO_ORANGE_CAMEROON_CONSUMER_KEY": "cm-key",
    "MMO_ORANGE_CAMEROON_CONSUMER_SECRET": "cm-secret",
    "MMO_ORANGE_CAMEROON_AUTH_TOKEN": "Y2hhbm5lbDpwYXNz",
    "MMO_ORANGE_CAMEROON_CHANNEL_MSISDN": "699000111",
    "MMO_ORANGE_CAMEROON_PIN": "9876",
}
SONATEL = {
    "MMO_ORANGE_SONATEL_CLIENT_ID": "sn-client",
    "MMO_ORANGE_SONATEL_CLIENT_SECRET": "sn-secret",
    "MMO_ORANGE_SONATEL_MERCHANT_CODE": "123456",
    "MMO_ORANGE_SONATEL_RETAILER_MSISDN": "778889900",
    "MMO_ORANGE_SONATEL_PIN": "4321",
    "MMO_ORANGE_SONATEL_API_KEY": "a-long-random-callback-key",
}
ROOTS = {
    "MMO_ORANGE_BASE_URL": "https://api.orange.com",
    "MMO_ORANGE_WEBPAY_BASE_URL": "https://api.orange.com",
    "MMO_ORANGE_CAMEROON_BASE_URL": "https://api-s1.orange.cm",
    "MMO_ORANGE_SONATEL_BASE_URL": "https://api.orange-sonatel.com",
}
COMPLETE = ROOTS | WEBPAY | CAMEROON | SONATEL


def load(environ: dict[str, str], environment: str = "production") -> OrangeSettings:
    return load_settings("orange", OrangeSettings, environ, environment)


def missing(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load(environ)
    return list(caught.value.details)


def test_a_complete_production_configuration_loads():
    settings = load(COMPLETE)
    assert settings.enabled_families() == ("webpay", "cameroon", "sonatel")
    assert settings.cameroon_pin == "9876" and settings.sonatel_api_key.startswith("a-long")
    assert settings.webpay_country == ""  # each payment's country in production


@pytest.mark.parametrize("variable", sorted(WEBPAY | CAMEROON | SONATEL))
def test_each_missing_credential_is_named_by_its_variable(variable):
    environ = dict(COMPLETE)
    del environ[variable]
    assert missing(environ) == [variable]
    with pytest.raises(ConfigurationError, match=variable):
        load(environ)


@pytest.mark.parametrize("variable", sorted(WEBPAY | CAMEROON | SONATEL))
def test_an_empty_variable_is_missing_too(variable):
    assert missing(COMPLETE | {variable: ""}) == [variable]


def test_nothing_set_names_everything_the_default_families_need():
    assert set(missing({})) == {
        "MMO_ORANGE_BASE_URL",
        "MMO_ORANGE_WEBPAY_BASE_URL",
        "MMO_ORANGE_CAMEROON_BASE_URL",
        "MMO_ORANGE_SONATEL_BASE_URL",
        *WEBPAY,
        *CAMEROON,
        *SONATEL,
    }


def test_sandbox_values_copied_from_env_example_count_as_missing():
    copied = COMPLETE | {
        "MMO_ORANGE_CLIENT_ID": "sandbox-orange-client",
        "MMO_ORANGE_CAMEROON_CHANNEL_MSISDN": "691234567",
        "MMO_ORANGE_SONATEL_MERCHANT_CODE": "599488",
        "MMO_ORANGE_RETURN_URL": "https://merchant.example/orange/return",
    }
    assert missing(copied) == [
        "MMO_ORANGE_CLIENT_ID",
        "MMO_ORANGE_RETURN_URL",
        "MMO_ORANGE_CAMEROON_CHANNEL_MSISDN",
        "MMO_ORANGE_SONATEL_MERCHANT_CODE",
    ]


def test_only_cameroon_needs_nothing_of_webpay_or_sonatel():
    environ = {
        "MMO_ORANGE_FAMILIES": "CM:cameroon",
        "MMO_ORANGE_DEFAULT_FAMILY": "cameroon",
        "MMO_ORANGE_BASE_URL": "https://api-s1.orange.cm",
    } | CAMEROON
    settings = load(environ)
    assert settings.enabled_families() == ("cameroon",)
    assert not settings.uses("webpay") and not settings.uses("sonatel")
    del environ["MMO_ORANGE_CAMEROON_AUTH_TOKEN"]
    assert missing(environ) == ["MMO_ORANGE_CAMEROON_AUTH_TOKEN"]


def test_senegal_on_webpay_needs_no_sonatel_nor_cameroon_settings():
    # every country on WebPay but Senegal's... which moves to WebPay as well
    environ = {"MMO_ORANGE_FAMILIES": "SN:webpay,CM:webpay"} | ROOTS | WEBPAY
    settings = load(environ)
    assert settings.enabled_families() == ("webpay",)
    assert missing({"MMO_ORANGE_FAMILIES": "SN:webpay,CM:webpay"}) == [
        "MMO_ORANGE_BASE_URL",
        *WEBPAY,
    ]


def test_the_default_family_is_not_in_use_when_every_country_is_mapped():
    countries = ("CI", "ML", "SN", "NE", "GW", "CM", "CF", "GN", "MG", "CD", "BW", "SL", "LR")
    environ = {
        "MMO_ORANGE_FAMILIES": ",".join(f"{c}:cameroon" for c in countries),
        "MMO_ORANGE_BASE_URL": "https://api-s1.orange.cm",
    } | CAMEROON
    assert load(environ).enabled_families() == ("cameroon",)  # default "webpay" unused


def test_two_families_cannot_share_the_base_url():
    environ = {"MMO_ORANGE_FAMILIES": "CM:cameroon,SN:webpay"} | WEBPAY | CAMEROON
    environ["MMO_ORANGE_BASE_URL"] = "https://api.orange.com"
    assert missing(environ) == ["MMO_ORANGE_WEBPAY_BASE_URL", "MMO_ORANGE_CAMEROON_BASE_URL"]
    # one family on BASE_URL, the other on its own root: fine
    environ["MMO_ORANGE_CAMEROON_BASE_URL"] = "https://api-s1.orange.cm"
    assert load(environ).enabled_families() == ("webpay", "cameroon")


def test_webpay_sandbox_country_is_refused_in_production():
    with pytest.raises(ConfigurationError, match="MMO_ORANGE_WEBPAY_COUNTRY=dev"):
        load(COMPLETE | {"MMO_ORANGE_WEBPAY_COUNTRY": "dev"})
    assert load(COMPLETE | {"MMO_ORANGE_WEBPAY_COUNTRY": "ci"}).webpay_country == "ci"


def test_the_sandbox_needs_nothing():
    settings = load({}, "sandbox")
    assert settings.client_id == "sandbox-orange-client"
    assert settings.missing_in("sandbox", frozenset()) == ()


def test_an_unknown_family_is_refused():
    with pytest.raises(ConfigurationError, match="MMO_ORANGE_DEFAULT_FAMILY"):
        load(COMPLETE | {"MMO_ORANGE_DEFAULT_FAMILY": "ussd"})
    with pytest.raises(ConfigurationError, match="MMO_ORANGE_FAMILIES"):
        load(COMPLETE | {"MMO_ORANGE_FAMILIES": "CM:ussd"})

"""Accounts of a provider: from mmo.toml and the environment, checked, never inline secrets."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from mmo_core.accounts import account_variable, load_accounts, read_config_file
from mmo_core.callbacks import build_callback_url, verify_callback_token
from mmo_core.errors import CallbackVerificationFailed, ConfigurationError
from mmo_core.settings import ProviderSettings
from mmo_core.types import InboundCallback, Market, ProviderDeclaration


class PaySettings(ProviderSettings):
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    country: str = "UG"
    secret_fields: ClassVar[tuple[str, ...]] = ("callback_secret", "client_secret")
    required_in_production: ClassVar[tuple[str, ...]] = ("client_id", "client_secret")


DECLARATION = ProviderDeclaration(
    name="pay",
    display_name="Pay",
    countries=("UG", "GH"),
    currencies=("UGX", "GHS"),
    markets=(Market("UG", "UGX"), Market("GH", "GHS")),
    operations=("collection", "disbursement", "balance"),
    settings=PaySettings,
)


def load(environ=None, config=None, environment="sandbox"):
    return load_accounts(DECLARATION, PaySettings, environ or {}, config or {}, environment)


def toml(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "mmo.toml"
    path.write_text(text)
    return read_config_file(str(path))


def test_with_nothing_set_there_is_the_default_account():
    found = load()
    assert list(found.accounts) == ["default"] and not found.problems
    assert found.accounts["default"].settings.client_id == "sandbox-client"
    assert found.accounts["default"].serves("UG", "UGX", "collection")


def test_the_flat_variables_still_fill_default():
    found = load({"MMO_PAY_CLIENT_ID": "flat"})
    assert found.accounts["default"].settings.client_id == "flat"


def test_accounts_from_the_file_with_secrets_by_reference(tmp_path):
    secret_file = tmp_path / "gh-secret"
    secret_file.write_text("gh-secret-value\n")
    config = toml(
        tmp_path,
        f"""
[providers.pay.accounts.uganda]
client_id = "ug-client"
client_secret = {{ env = "UG_SECRET" }}
markets = ["UG/UGX"]

[providers.pay.accounts.ghana]
client_id = "gh-client"
client_secret = {{ file = "{secret_file}" }}
markets = ["GH"]
operations = ["collection"]
""",
    )
    found = load({"UG_SECRET": "ug-secret-value"}, config)
    # named accounts and no flat variable: no `default`
    assert sorted(found.accounts) == ["ghana", "uganda"], found.problems
    uganda, ghana = found.accounts["uganda"], found.accounts["ghana"]
    assert uganda.settings.client_secret == "ug-secret-value"
    assert ghana.settings.client_secret == "gh-secret-value"
    assert uganda.serves("UG", "UGX", "disbursement") and not uganda.serves("GH", "GHS", None)
    assert ghana.serves("GH", "GHS", "collection")
    assert not ghana.serves("GH", "GHS", "disbursement")
    assert ghana.describe() == {
        "name": "ghana",
        "markets": ["GH"],
        "operations": ["collection"],
        "priority": 0,
    }


def test_the_environment_defines_and_overrides_accounts(tmp_path):
    config = toml(tmp_path, '[providers.pay.accounts.brand-a]\nclient_id = "from-file"\n')
    environ = {
        "MMO_PAY__BRAND_A__CLIENT_ID": "from-env",
        "MMO_PAY__KENYA__CLIENT_ID": "ke",
        "MMO_PAY__KENYA__MARKETS": "GH/GHS",
        "MMO_PAY__KENYA__PRIORITY": "5",
    }
    found = load(environ, config)
    assert sorted(found.accounts) == ["brand-a", "kenya"], found.problems
    assert found.accounts["brand-a"].settings.client_id == "from-env"
    assert found.accounts["kenya"].markets == (("GH", "GHS"),)
    assert found.accounts["kenya"].priority == 5
    assert account_variable("pay", "brand-a", "client_id") == "MMO_PAY__BRAND_A__CLIENT_ID"
    assert account_variable("pay", "default", "client_id") == "MMO_PAY_CLIENT_ID"


def test_an_inline_secret_is_refused_and_the_other_accounts_run(tmp_path):
    config = toml(
        tmp_path,
        """
[providers.pay.accounts.good]
markets = ["UG"]
[providers.pay.accounts.leaky]
client_secret = "inline-secret"
markets = ["GH"]
""",
    )
    found = load({}, config)
    assert list(found.accounts) == ["good"]
    assert "client_secret" in found.problems["leaky"]
    assert "inline-secret" not in found.problems["leaky"]


def test_every_problem_of_an_account_is_named_at_once(tmp_path):
    config = toml(
        tmp_path,
        """
[providers.pay.accounts.bad]
no_such_field = 1
client_secret = { env = "UNSET_VARIABLE" }
""",
    )
    found = load({}, config)
    message = found.problems["bad"]
    assert "no_such_field" in message and "UNSET_VARIABLE" in message


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ('markets = ["KE"]', "does not serve KE"),
        ('markets = ["Uganda"]', "not COUNTRY"),
        ('operations = ["lookup"]', "does not offer lookup"),
        ('priority = "high"', "whole number"),
    ],
)
def test_what_an_account_serves_is_checked(tmp_path, extra, said):
    config = toml(tmp_path, f"[providers.pay.accounts.odd]\n{extra}\n")
    found = load({}, config)
    assert said in found.problems["odd"]


def test_production_names_an_accounts_missing_credentials(tmp_path):
    config = toml(tmp_path, '[providers.pay.accounts.uganda]\nclient_id = "x"\n')
    found = load({}, config, environment="production")
    assert "MMO_PAY__UGANDA__CLIENT_SECRET" in found.problems["uganda"]


def test_two_accounts_on_the_same_market_need_a_priority(tmp_path):
    text = """
[providers.pay.accounts.one]
markets = ["UG"]
[providers.pay.accounts.two]
markets = ["UG/UGX"]
"""
    with pytest.raises(ConfigurationError) as refused:
        load({}, toml(tmp_path, text))
    assert "one and two both take UG/UGX collection" in refused.value.message
    found = load({}, toml(tmp_path, text + "priority = 1\n"))
    assert sorted(found.accounts) == ["one", "two"]


def test_a_bad_file_stops_start_up_naming_it(tmp_path):
    path = tmp_path / "mmo.toml"
    path.write_text("[providers\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        read_config_file(str(path))
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_config_file(str(tmp_path / "missing.toml"))
    assert read_config_file(None) == {}


def test_a_callback_token_of_one_account_never_verifies_for_another():
    url = build_callback_url("http://gw", "pay", "pay", "notify", "s3cret", "p-1", "uganda")
    assert "account=uganda" in url
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    callback = InboundCallback(provider="pay", kind="notify", method="POST", path="/", query=query)
    assert verify_callback_token("s3cret", callback, "uganda") == "p-1"
    for other in ("ghana", "default"):
        with pytest.raises(CallbackVerificationFailed):
            verify_callback_token("s3cret", callback, other)

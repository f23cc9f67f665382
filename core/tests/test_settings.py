from typing import ClassVar

import pytest
from mmo_core.errors import ConfigurationError
from mmo_core.settings import ProviderSettings, env_var, load_settings, public_settings


class OpSettings(ProviderSettings, kw_only=True, forbid_unknown_fields=True):
    consumer_key: str = "sandbox-key"
    consumer_secret: str = "sandbox-secret"
    shortcode: int = 174379
    verify: bool = True
    required_in_production: ClassVar[tuple[str, ...]] = ("consumer_key", "consumer_secret")
    secret_fields: ClassVar[tuple[str, ...]] = ("consumer_secret", "callback_secret")


class Required(ProviderSettings, kw_only=True):
    token: str


def test_names_carry_the_provider_prefix():
    assert env_var("mtn_momo", "api_key") == "MMO_MTN_MOMO_API_KEY"


def test_values_are_read_and_converted():
    s = load_settings(
        "mpesa",
        OpSettings,
        {
            "MMO_MPESA_SHORTCODE": "600000",
            "MMO_MPESA_VERIFY": "false",
            "MMO_MPESA_TIMEOUT": "12.5",
            "MMO_OTHER_SHORTCODE": "1",
        },
    )
    assert s.shortcode == 600000 and s.verify is False and s.timeout == 12.5
    assert s.consumer_key == "sandbox-key"


def test_sandbox_defaults_apply_but_production_names_what_is_missing():
    assert load_settings("mpesa", OpSettings, {}).consumer_key == "sandbox-key"
    with pytest.raises(ConfigurationError) as info:
        load_settings("mpesa", OpSettings, {"MMO_MPESA_CONSUMER_KEY": "k"}, "production")
    assert "MMO_MPESA_CONSUMER_SECRET" in info.value.message
    assert "MMO_MPESA_CONSUMER_KEY" not in info.value.message


def test_required_fields_and_bad_values_name_their_variable():
    with pytest.raises(ConfigurationError, match="MMO_X_TOKEN"):
        load_settings("x", Required, {})
    with pytest.raises(ConfigurationError, match="MMO_MPESA_SHORTCODE"):
        load_settings("mpesa", OpSettings, {"MMO_MPESA_SHORTCODE": "abc"})


def test_public_settings_mask_secrets():
    shown = public_settings(
        load_settings("mpesa", OpSettings, {"MMO_MPESA_CONSUMER_SECRET": "s3cret"})
    )
    assert shown["consumer_secret"] == "********" and shown["consumer_key"] == "sandbox-key"


def test_empty_variables_count_as_unset():
    s = load_settings(
        "mpesa", OpSettings, {"MMO_MPESA_CONSUMER_KEY": "", "MMO_MPESA_SHORTCODE": ""}
    )
    assert s.consumer_key == "sandbox-key" and s.shortcode == 174379
    with pytest.raises(ConfigurationError, match="MMO_MPESA_CONSUMER_KEY"):
        load_settings(
            "mpesa",
            OpSettings,
            {"MMO_MPESA_CONSUMER_KEY": "", "MMO_MPESA_CONSUMER_SECRET": "x"},
            "production",
        )


def test_a_secret_may_come_from_a_file(tmp_path):
    secret = tmp_path / "api_key"
    secret.write_text("from-a-file\n")
    settings = load_settings("op", OpSettings, {"MMO_OP_CONSUMER_SECRET_FILE": str(secret)})
    assert settings.consumer_secret == "from-a-file"
    with pytest.raises(ConfigurationError, match="not both") as both:
        load_settings(
            "op",
            OpSettings,
            {"MMO_OP_CONSUMER_SECRET": "x", "MMO_OP_CONSUMER_SECRET_FILE": str(secret)},
        )
    assert "from-a-file" not in str(both.value)
    with pytest.raises(ConfigurationError, match="cannot read") as unreadable:
        load_settings("op", OpSettings, {"MMO_OP_CONSUMER_SECRET_FILE": str(tmp_path / "none")})
    assert "FileNotFoundError" in str(unreadable.value)

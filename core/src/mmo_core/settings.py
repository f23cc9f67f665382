"""Settings from environment variables, one prefix per provider.

A plugin declares a `ProviderSettings` subclass with sandbox defaults; the core fills it
from `MMO_<NAME>_<FIELD>` variables (`MMO_MPESA_CONSUMER_KEY` fills `consumer_key`).
Plugins never read `os.environ` themselves. Fields listed in `required_in_production` must
be set explicitly when `MMO_ENV=production`; a missing one is reported by its variable name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec

from mmo_core.errors import ConfigurationError

ENVIRONMENTS = ("sandbox", "production")

S = TypeVar("S", bound="ProviderSettings")


class ProviderSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Settings every provider has. Subclass it and add the operator's own.

    - `base_url`: the operator's API root. Empty in the sandbox means "the simulator
      mounted by the host".
    - `callback_secret`: the key of the tokens put into the callback URLs handed to the
      operator. Empty means "derived from the host's MMO_CALLBACK_SECRET".
    - `timeout` / `connect_timeout`: seconds for operator calls.
    - `confirm_callbacks`: confirm an unsigned callback that would end a payment with the
      operator's status API before applying it (on by default; turn it off only for an
      operator whose callbacks reach you over a channel you trust).
    """

    base_url: str = ""
    callback_secret: str = ""
    timeout: float = 30.0
    connect_timeout: float = 5.0
    confirm_callbacks: bool = True
    # the networks the operator's webhooks come from (comma-separated addresses or CIDR
    # blocks); empty: any source. Checked by the host before a callback is parsed.
    allowed_ips: str = ""

    # names of fields that must be set explicitly in production (credentials, URLs)
    required_in_production: ClassVar[tuple[str, ...]] = ()
    # names of fields never shown in full (logs, `mmo providers`, the admin API)
    secret_fields: ClassVar[tuple[str, ...]] = ("callback_secret",)

    def missing_in(self, environment: str, explicit: frozenset[str]) -> tuple[str, ...]:
        """Fields this configuration needs but that were left to their defaults.

        Override it when what is required depends on other settings (credentials of the
        countries a deployment enables, say). `explicit` holds the names of the fields set
        by a variable. Return field names; the loader reports them as variables and refuses
        to start. The default requires nothing beyond `required_in_production`.
        """
        return ()


def env_prefix(provider: str) -> str:
    """`MMO_MTN_MOMO_` for provider `mtn_momo`."""
    return "MMO_" + re.sub(r"[^A-Za-z0-9]", "_", provider).upper() + "_"


def env_var(provider: str, field: str) -> str:
    return env_prefix(provider) + field.upper()


def read_variable(environ: Mapping[str, str], name: str) -> str | None:
    """A setting's value from `name`, or from the file `name_FILE` names (a mounted secret:
    Docker and Kubernetes secrets, systemd credentials), without its final newline.

    An empty variable counts as unset (a copied .env.example keeps the defaults). Setting
    both is refused, as is a file that cannot be read; neither message shows a value.
    """
    direct = environ.get(name, "")
    path = environ.get(f"{name}_FILE", "")
    if direct and path:
        raise ConfigurationError(f"Set {name} or {name}_FILE, not both")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"{name}_FILE: cannot read {path} ({type(exc).__name__})"
            ) from None
        return text.rstrip("\r\n") or None
    return direct or None


def load_settings(
    provider: str,
    settings_type: type[S],
    environ: Mapping[str, str] | None = None,
    environment: str = "sandbox",
) -> S:
    """Build `settings_type` from `MMO_<PROVIDER>_*` variables (the account `default`).

    Raises ConfigurationError naming the variable when a value cannot be converted, when a
    field without default is unset, or (in production) when a `required_in_production`
    field is unset.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(settings_type):
        value = read_variable(environ, env_var(provider, field.name))
        if value is not None:
            values[field.name] = value
    return build_settings(
        provider, settings_type, values, lambda name: env_var(provider, name), environment
    )


def build_settings(
    provider: str,
    settings_type: type[S],
    values: Mapping[str, Any],
    variable: Callable[[str], str],
    environment: str = "sandbox",
) -> S:
    """Build `settings_type` from the `values` given (by field name); `variable(field)`
    names where a field is set, for the messages. See `load_settings`."""
    missing = [
        variable(field.name)
        for field in msgspec.structs.fields(settings_type)
        if field.name not in values
        and (
            field.required
            or (environment == "production" and field.name in settings_type.required_in_production)
        )
    ]
    if missing:
        raise ConfigurationError(
            f"Missing setting(s) for provider {provider!r}: {', '.join(missing)}",
            provider=provider,
            details=missing,
        )
    try:
        settings = msgspec.convert(dict(values), settings_type, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = re.search(r"\$\.(\w+)", message)
        where = variable(match.group(1)) if match else env_prefix(provider) + "*"
        raise ConfigurationError(
            f"Invalid value for {where}: {message}", provider=provider
        ) from None
    needed = [variable(f) for f in settings.missing_in(environment, frozenset(values))]
    if needed:
        raise ConfigurationError(
            f"Missing setting(s) for provider {provider!r}: {', '.join(needed)}",
            provider=provider,
            details=needed,
        )
    return settings


def public_settings(settings: ProviderSettings) -> dict[str, Any]:
    """The settings as a dict with secret fields masked, for display."""
    shown = msgspec.structs.asdict(settings)
    for name in type(settings).secret_fields:
        if shown.get(name):
            shown[name] = "********"
    return shown


__all__ = [
    "ENVIRONMENTS",
    "ProviderSettings",
    "build_settings",
    "env_prefix",
    "env_var",
    "load_settings",
    "public_settings",
    "read_variable",
]

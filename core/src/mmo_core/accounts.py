"""Accounts: several named sets of one provider's settings behind one gateway.

A deployment holds one account per MTN target environment, per Airtel country, per
M-Pesa paybill... An account is a full `ProviderSettings` of its provider plus what it
serves (markets and operations) and a priority. Accounts come from two places, read
together (the environment wins over the file, field by field):

- the configuration file (`mmo.toml`, path in `MMO_CONFIG`, read with `tomllib`)::

      [providers.mtn_momo.accounts.uganda]
      target_environment = "mtnuganda"
      markets = ["UG/UGX"]                   # or ["UG"]; empty or absent: all declared
      operations = ["collection", "disbursement"]
      priority = 10                          # the higher is chosen first
      rate_limit = 20                        # calls per second to the operator (0: none)
      collection_subscription_key = { env = "MTN_UG_COLLECTION_KEY" }
      collection_api_key = { file = "/run/secrets/mtn_ug_api_key" }

  A secret field (the settings' `secret_fields`) is always given by reference,
  `{ env = "VAR" }` or `{ file = "path" }`, never inline: the file is meant to be
  committed. Any other field may be inline or by reference.
- the environment: `MMO_<PROVIDER>__<ACCOUNT>__<FIELD>` (`MMO_MTN_MOMO__UGANDA__API_KEY`;
  an account `brand-a` is `BRAND_A` there), each also as `..._FILE`.

The flat `MMO_<PROVIDER>_<FIELD>` variables define the account `default`, as they always
did, when the provider has no named account (or the file names `default`). With named
accounts they are what every account starts from (a timeout, a callback delay), each
account overriding what it sets itself.

`load_accounts` never raises for one account's bad settings: it returns the good accounts
and one problem per bad one, so that the others run. It raises ConfigurationError for
what makes routing ambiguous: two accounts that serve the same market and operation with
the same priority.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from mmo_core.callbacks import DEFAULT_ACCOUNT
from mmo_core.errors import ConfigurationError
from mmo_core.settings import ProviderSettings, build_settings, env_prefix, read_variable
from mmo_core.types import PAYMENT_TYPES, Market, ProviderDeclaration

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_MARKET = re.compile(r"^([A-Z]{2})(?:/([A-Z]{3}))?$")
# keys of an account that are not settings fields
ACCOUNT_KEYS = ("markets", "operations", "priority", "rate_limit")


@dataclass(frozen=True)
class Account:
    """One account of a provider: its settings and what it serves."""

    provider: str
    name: str
    settings: ProviderSettings
    # (country, currency or None for any of the country's); empty: all the provider's
    markets: tuple[tuple[str, str | None], ...] = ()
    # operations it serves; empty: all the provider's
    operations: tuple[str, ...] = ()
    priority: int = 0
    # calls per second this account may make to its operator, shared by every host
    # process (mmo_host.outbound); 0: no limit
    rate_limit: float = 0.0
    # where it came from, for messages: "environment", "mmo.toml", or both
    source: str = "environment"

    @property
    def key(self) -> str:
        """`mtn_momo/uganda`."""
        return f"{self.provider}/{self.name}"

    def serves(self, country: str, currency: str | None, operation: str | None) -> bool:
        """Whether this account takes payments of `operation` in `country`/`currency`
        (None: any). Its provider's declaration is checked elsewhere."""
        if operation is not None and self.operations and operation not in self.operations:
            return False
        if not self.markets:
            return True
        return any(
            c == country and (cur is None or currency is None or cur == currency)
            for c, cur in self.markets
        )

    def describe(self) -> dict[str, Any]:
        """What `mmo providers` and the API show: never a setting, never a secret."""
        return {
            "name": self.name,
            "markets": [f"{c}/{cur}" if cur else c for c, cur in self.markets],
            "operations": list(self.operations),
            "priority": self.priority,
        }


@dataclass
class Accounts:
    """What `load_accounts` found for one provider."""

    accounts: dict[str, Account] = field(default_factory=dict)
    # the accounts left out, by name, each with a message naming every problem in it
    problems: dict[str, str] = field(default_factory=dict)


def read_config_file(path: str | None) -> dict[str, Any]:
    """The parsed `mmo.toml` (an empty dict without a path). A file that cannot be read or
    parsed stops start-up naming the file and the line."""
    if not path:
        return {}
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"MMO_CONFIG: cannot read {path} ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"MMO_CONFIG: {path} is not valid TOML: {exc}") from None
    providers = data.get("providers", {})
    if not isinstance(providers, dict):
        raise ConfigurationError(f"MMO_CONFIG: {path}: [providers] must be a table")
    return data


def env_segment(account: str) -> str:
    """`BRAND_A` for the account `brand-a`."""
    return re.sub(r"[^A-Za-z0-9]", "_", account).upper()


def account_variable(provider: str, account: str, field_name: str) -> str:
    """`MMO_MTN_MOMO__UGANDA__API_KEY`; the flat `MMO_MTN_MOMO_API_KEY` for `default`."""
    if account == DEFAULT_ACCOUNT:
        return env_prefix(provider) + field_name.upper()
    return f"{env_prefix(provider)}_{env_segment(account)}__{field_name.upper()}"


def _file_accounts(config: Mapping[str, Any], provider: str) -> dict[str, Any]:
    table = config.get("providers", {}).get(provider, {})
    accounts = table.get("accounts", {}) if isinstance(table, dict) else {}
    if not isinstance(accounts, dict):
        raise ConfigurationError(f"mmo.toml: providers.{provider}.accounts must be a table")
    return accounts


def _env_accounts(environ: Mapping[str, str], provider: str) -> set[str]:
    """Segments (`UGANDA`) of the `MMO_<PROVIDER>__<ACCOUNT>__<FIELD>` variables set."""
    start = env_prefix(provider) + "_"
    found = set()
    for name in environ:
        if name.startswith(start) and "__" in name[len(start) :]:
            found.add(name[len(start) :].split("__", 1)[0])
    return found


def _by_reference(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """A value from the file: inline, or `{env = "VAR"}` / `{file = "path"}`."""
    if not isinstance(value, dict):
        return value
    if set(value) == {"env"} and isinstance(value["env"], str):
        found = read_variable(environ, value["env"])
        if found is None:
            raise ConfigurationError(f"{where}: the variable {value['env']} is not set")
        return found
    if set(value) == {"file"} and isinstance(value["file"], str):
        try:
            return Path(value["file"]).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"{where}: cannot read {value['file']} ({type(exc).__name__})"
            ) from None
    raise ConfigurationError(f'{where}: expected a value, {{env = "VAR"}} or {{file = "path"}}')


def _markets(value: Any, where: str) -> tuple[tuple[str, str | None], ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigurationError(f'{where}: markets must be a list such as ["UG/UGX", "KE"]')
    found = []
    for item in items:
        match = _MARKET.match(str(item).strip())
        if match is None:
            raise ConfigurationError(f"{where}: market {item!r} is not COUNTRY or COUNTRY/CURRENCY")
        found.append((match.group(1), match.group(2)))
    return tuple(found)


def _rate_limit(value: Any, where: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if not 0 <= rate < float("inf"):
        raise ConfigurationError(
            f"{where}: rate_limit must be a number of calls per second (0: no limit), not {value!r}"
        )
    return rate


def _operations(value: Any, declaration: ProviderDeclaration, where: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigurationError(f"{where}: operations must be a list")
    found = tuple(str(i).strip() for i in items if str(i).strip())
    unknown = [op for op in found if op not in declaration.operations]
    if unknown:
        raise ConfigurationError(
            f"{where}: {declaration.display_name} does not offer {', '.join(unknown)}"
        )
    return found


def _from_environ(
    environ: Mapping[str, str],
    provider: str,
    account: str,
    fields: set[str],
    values: dict[str, Any],
    extra: dict[str, Any],
    problems: list[str],
) -> None:
    """The account's variables into `values` (settings) and `extra` (ACCOUNT_KEYS)."""
    for key in (*fields, *ACCOUNT_KEYS):
        try:
            found = read_variable(environ, account_variable(provider, account, key))
        except ConfigurationError as exc:
            problems.append(exc.message)
            continue
        if found is not None:
            (extra if key in ACCOUNT_KEYS else values)[key] = found


def _one_account(
    provider: str,
    name: str,
    declaration: ProviderDeclaration,
    settings_type: type[ProviderSettings],
    from_file: Mapping[str, Any],
    environ: Mapping[str, str],
    environment: str,
) -> Account:
    where = f"account {provider}/{name}"
    if not _NAME.match(name):
        raise ConfigurationError(
            f"{where}: a name is lower-case letters, digits, '-' and '_' (at most 32)"
        )
    fields = {f.name for f in msgspec.structs.fields(settings_type)}
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    problems: list[str] = []
    if name != DEFAULT_ACCOUNT:  # the flat variables are every account's starting point
        _from_environ(environ, provider, DEFAULT_ACCOUNT, fields, values, extra, problems)
    for key, raw in from_file.items():
        place = f"mmo.toml providers.{provider}.accounts.{name}.{key}"
        if key in ACCOUNT_KEYS:
            extra[key] = raw
        elif key not in fields:
            problems.append(f"{place}: no such setting")
        elif key in settings_type.secret_fields and not isinstance(raw, dict):
            problems.append(f'{place}: a secret is given as {{env = "VAR"}} or {{file = "path"}}')
        else:
            try:
                values[key] = _by_reference(raw, environ, place)
            except ConfigurationError as exc:
                problems.append(exc.message)
    _from_environ(environ, provider, name, fields, values, extra, problems)
    if problems:
        raise ConfigurationError(f"{where}: " + "; ".join(problems))
    try:
        settings = build_settings(
            provider,
            settings_type,
            values,
            lambda f: account_variable(provider, name, f),
            environment,
        )
        markets = _markets(extra.get("markets", ()), where)
        operations = _operations(extra.get("operations", ()), declaration, where)
        priority = int(extra.get("priority", 0))
        rate_limit = _rate_limit(extra.get("rate_limit", 0), where)
    except ValueError:
        raise ConfigurationError(f"{where}: priority must be a whole number") from None
    except ConfigurationError as exc:
        message = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
        raise ConfigurationError(message, provider=provider, details=exc.details) from None
    for country, currency in markets:
        if country not in declaration.countries or (
            currency is not None and not declaration.serves(country, currency)
        ):
            shown = f"{country}/{currency}" if currency else country
            raise ConfigurationError(f"{where}: {declaration.display_name} does not serve {shown}")
    source = "mmo.toml" if from_file else "environment"
    return Account(
        provider, name, settings, markets, operations, priority, rate_limit, source=source
    )


def load_accounts(
    declaration: ProviderDeclaration,
    settings_type: type[ProviderSettings],
    environ: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    environment: str = "sandbox",
) -> Accounts:
    """Every account of one provider, from `config` (the parsed mmo.toml) and `environ`."""
    provider = declaration.name
    in_file = _file_accounts(config or {}, provider)
    segments = _env_accounts(environ, provider)
    by_segment = {env_segment(name): name for name in in_file}
    names = list(in_file) + sorted(
        by_segment.get(s, s.lower()) for s in segments if s not in by_segment
    )
    if not names:
        names = [DEFAULT_ACCOUNT]
    found = Accounts()
    for name in dict.fromkeys(names):
        try:
            account = _one_account(
                provider,
                name,
                declaration,
                settings_type,
                in_file.get(name, {}),
                environ,
                environment,
            )
        except ConfigurationError as exc:
            found.problems[name] = exc.message
            continue
        found.accounts[name] = account
    overlaps = ambiguous(declaration, list(found.accounts.values()))
    if overlaps:
        raise ConfigurationError(
            f"Accounts of {provider} serve the same payments with the same priority "
            f"(set `priority` on one): {'; '.join(overlaps)}",
            provider=provider,
        )
    return found


def ambiguous(declaration: ProviderDeclaration, accounts: list[Account]) -> list[str]:
    """`a and b both take UG/UGX collection`, for every pair of accounts that serve the
    same market and operation at the same priority."""
    markets = declaration.markets or tuple(
        Market(c, cur) for c in declaration.countries for cur in declaration.currencies
    )
    operations = [op for op in declaration.operations if op in PAYMENT_TYPES]
    found = []
    for i, first in enumerate(accounts):
        for second in accounts[i + 1 :]:
            if first.priority != second.priority:
                continue
            shared = [
                f"{m.country}/{m.currency} {op}"
                for m in markets
                for op in operations
                if first.serves(m.country, m.currency, op)
                and second.serves(m.country, m.currency, op)
            ]
            if shared:
                more = f" (and {len(shared) - 3} more)" if len(shared) > 3 else ""
                found.append(
                    f"{first.name} and {second.name} both take {', '.join(shared[:3])}{more}"
                )
    return found


__all__ = [
    "ACCOUNT_KEYS",
    "Account",
    "Accounts",
    "account_variable",
    "ambiguous",
    "env_segment",
    "load_accounts",
    "read_config_file",
]

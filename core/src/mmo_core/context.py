"""What a provider's hooks receive as `context`: its settings and shared plumbing.

The host builds one `ProviderContext` per provider at start-up (the conformance kit builds
its own), so a plugin gets its HTTP client, token cache and callback URLs without knowing
how the host is configured.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from mmo_core.callbacks import DEFAULT_ACCOUNT, build_callback_url, verify_callback_token
from mmo_core.results import ResultBoard
from mmo_core.settings import ProviderSettings
from mmo_core.tokens import TokenCache
from mmo_core.types import InboundCallback, ProviderDeclaration


class ProviderContext:
    """Everything a provider's hooks need from the host.

    - `settings`: the provider's `ProviderSettings` subclass: the settings of one account
      (`mmo.toml` or `MMO_<NAME>__<ACCOUNT>__*`; the flat `MMO_<NAME>_*` fill `default`).
    - `account`: that account's name. The host builds one context per account, so a
      plugin serving several accounts needs no code of its own for it: credentials,
      tokens, callback URLs and results are the account's.
    - `http`: an `httpx.AsyncClient` whose `base_url` is the operator's (or simulator's).
    - `tokens`: the shared access-token cache; key your tokens by provider and credential.
    - `results`: where asynchronous answers (a Result POSTed to a URL) wait for the hook
      that asked; shared by the gateway's processes when the host has Redis.
    - `callback_url(kind, payment_id)`: the URL to hand to the operator for a webhook.
    - `verify_callback(callback)`: check the URL token of an inbound callback.
    - `environment`: "sandbox" or "production".
    - `log`: a logger named after the provider. Never log secrets or full phone numbers.
    """

    def __init__(
        self,
        *,
        declaration: ProviderDeclaration,
        settings: ProviderSettings,
        http: httpx.AsyncClient,
        tokens: TokenCache,
        public_url: str,
        callback_secret: str,
        environment: str = "sandbox",
        extras: dict[str, Any] | None = None,
        results: ResultBoard | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.declaration = declaration
        self.name = declaration.name
        self.account = account
        self.settings = settings
        self.http = http
        self.tokens = tokens
        self.public_url = public_url.rstrip("/")
        self.environment = environment
        self.extras = extras or {}
        self.results = results if results is not None else ResultBoard()
        self._callback_secret = settings.callback_secret or callback_secret
        self.log = logging.getLogger(f"mmo.providers.{declaration.name}")

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def callback_url(
        self, kind: str, payment_id: str | None = None, *, segment: str | None = None
    ) -> str:
        """The URL of this provider's `kind` webhook, carrying a secret token.

        `segment` picks one of the declared `webhook_aliases` instead of the main path.
        """
        if segment is not None and segment not in self.declaration.webhook_aliases:
            raise ValueError(f"{segment!r} is not a webhook alias of {self.name}")
        return build_callback_url(
            self.public_url,
            segment or self.declaration.route_segment,
            self.name,
            kind,
            self._callback_secret,
            payment_id,
            self.account,
        )

    def verify_callback(self, callback: InboundCallback) -> str | None:
        """Verify the URL token; return the payment id it vouches for, if any."""
        return verify_callback_token(self._callback_secret, callback, self.account)

    def token_key(self, *parts: str) -> str:
        """A token-cache key namespaced by this provider and account."""
        return ":".join(("token", self.name, self.account, *parts))


__all__ = ["ProviderContext"]

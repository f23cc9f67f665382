"""Secret tokens in the callback URLs handed to operators, and constant-time checks.

Most operators sign nothing. The gateway therefore puts a token into every callback URL it
gives them: an HMAC-SHA256 of the provider, the webhook kind and (when given) our payment
id, keyed with the provider's callback secret. A callback whose token does not match is
refused before its body is read. With a payment id in the URL, a leaked URL cannot be used
for any other payment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlencode

from mmo_core.errors import CallbackVerificationFailed
from mmo_core.types import InboundCallback

DEFAULT_ACCOUNT = "default"


def _signer(provider: str, account: str) -> str:
    """Whose token it is: `mpesa` for the default account, `mpesa/brand-a` for another."""
    return provider if account == DEFAULT_ACCOUNT else f"{provider}/{account}"


def callback_token(
    secret: str,
    provider: str,
    kind: str,
    payment_id: str | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> str:
    message = f"{_signer(provider, account)}:{kind}:{payment_id or ''}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def build_callback_url(
    public_url: str,
    route_segment: str,
    provider: str,
    kind: str,
    secret: str,
    payment_id: str | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> str:
    """The URL of a webhook; an account other than `default` is named in it (`account=`),
    so that the host verifies the callback with that account's secret and matches it
    among that account's payments."""
    query = {"account": account} if account != DEFAULT_ACCOUNT else {}
    if payment_id:
        query["ref"] = payment_id
    query["token"] = callback_token(secret, provider, kind, payment_id, account)
    return f"{public_url.rstrip('/')}/api/v1/webhooks/{route_segment}/{kind}?{urlencode(query)}"


def verify_callback_token(
    secret: str, callback: InboundCallback, account: str = DEFAULT_ACCOUNT
) -> str | None:
    """Check the URL token of `callback` for `account`; return the payment id it vouches
    for (or None). A token made for another account never matches."""
    given = callback.query.get("token", "")
    payment_id = callback.query.get("ref") or None
    try:
        expected = callback_token(secret, callback.provider, callback.kind, payment_id, account)
        matches = bool(given) and hmac.compare_digest(given.encode(), expected.encode())
    except UnicodeEncodeError:  # a lone surrogate in the query: no URL we made holds one
        matches = False
    if not matches:
        raise CallbackVerificationFailed(
            "The callback URL token is missing or wrong", provider=callback.provider
        )
    return payment_id


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets without leaking where they differ.

    Text given by a sender may hold lone surrogates (a header, a JSON escape): they are
    encoded as they stand, so such text compares unequal instead of raising.
    """
    left = a.encode("utf-8", "surrogatepass") if isinstance(a, str) else a
    right = b.encode("utf-8", "surrogatepass") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


__all__ = [
    "DEFAULT_ACCOUNT",
    "build_callback_url",
    "callback_token",
    "constant_time_equals",
    "verify_callback_token",
]

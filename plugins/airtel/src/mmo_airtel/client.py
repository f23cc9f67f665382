"""Airtel's HTTP calls, and the one function that reads its answers.

Airtel answers many refusals with HTTP 200 and `status.success=false`, and speaks in three
code families (ROUTER, ESB `result_code`, DP `response_code`): `interpret` reads the body
of every answer, whatever its HTTP status, and turns it into the core's errors or an
`Answer` the hooks act on.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import msgspec
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from mmo_core import phones
from mmo_core.callbacks import constant_time_equals
from mmo_core.context import ProviderContext
from mmo_core.crypto import hmac_sha256_base64, rsa_encrypt_oaep_sha256, rsa_encrypt_pkcs1v15
from mmo_core.errors import (
    InvalidRequest,
    NotSupported,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
)
from mmo_core.operator import OperatorClient, honours_retry_after, request
from mmo_core.tokens import AccessToken
from mmo_core.types import Failure

from mmo_airtel.codes import Kind, failure_for, strongest
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.wire import (
    ENCODER,
    MSISDN_LENGTHS,
    EncryptionKey,
    Envelope,
    Status,
    TokenRequest,
    TokenResponse,
    text,
)

# Fractional numbers in `data` (a balance, an amount) are read as Decimal, never float.
_ENVELOPE = msgspec.json.Decoder(Envelope, float_hook=Decimal)

NAME = "airtel"
TOKEN_PATH = "/auth/oauth2/token"
KEYS_PATH = "/v1/rsa/encryption-keys"


@dataclass(frozen=True)
class Answer:
    """An Airtel answer that is not an error for the caller: what it means and its code."""

    kind: Kind
    code: str | None
    message: str
    data: Any
    http_status: int = 200
    raw: bytes = b""

    @property
    def transaction(self) -> dict[str, Any]:
        if isinstance(self.data, dict) and isinstance(self.data.get("transaction"), dict):
            return self.data["transaction"]
        return {}

    def field(self, name: str) -> str | None:
        """`data.transaction.<name>` as a string, whether Airtel sent a string or a number."""
        return text(self.transaction.get(name))

    def failure(self) -> Failure:
        return failure_for(self.code or "UNKNOWN", self.message)


@honours_retry_after
def interpret(response: httpx.Response, operation: str) -> Answer:
    """The one place where Airtel's answers become the core's errors and statuses.

    Raises for what the caller cannot act on as a payment state (credentials, bad request,
    not configured, outage, unknown outcome); returns an `Answer` for success, pending,
    definite refusal (`failed` / `expired`), `duplicate` and `not_found`.
    """
    try:
        envelope = _ENVELOPE.decode(response.content)
    except msgspec.MsgspecError:
        envelope = Envelope()
    status = envelope.status or Status()
    http = response.status_code
    response_code, result_code = text(status.response_code), text(status.result_code)
    router_code = text(envelope.status_code)
    found = strongest([response_code, result_code, router_code, envelope.error])
    message = (
        text(status.message)
        or text(envelope.status_message)
        or envelope.error_description
        or (response.text[:200] if envelope.status is None and http >= 400 else "")
    )
    kind: Kind
    code: str | None
    if found is not None:
        kind, code = found
        if kind == "success" and status.success is False:
            kind = "failed"
    else:
        code = (
            response_code
            or result_code
            or router_code
            or envelope.error
            or (text(status.code) if status.success is False else None)
        )
        if http in (401, 403):
            kind = "auth"
        elif http >= 400 and http not in (408, 429) and http < 500:
            kind = "invalid"
        elif status.success is False:
            kind = "failed"
        else:
            kind = "success"
    code = code or (str(http) if http >= 400 else None)
    kwargs: dict[str, Any] = {
        "provider": NAME,
        "provider_code": code,
        "provider_message": message or None,
    }
    what = f"Airtel {operation}: {message or code or http}"
    if http == 429:
        raise RateLimited(what, **kwargs)
    if http in (502, 503):
        raise ProviderUnavailable(what, **kwargs)
    if http >= 500 or http == 408:
        raise OutcomeUnknown(what, **kwargs)
    if kind == "auth":
        raise ProviderAuthenticationError(what, **kwargs)
    if kind == "invalid":
        raise InvalidRequest(what, **kwargs)
    if kind == "unsupported":
        raise NotSupported(what, **kwargs)
    if kind == "unavailable":
        raise ProviderUnavailable(what, **kwargs)
    if kind == "unknown":
        raise OutcomeUnknown(what, **kwargs)
    return Answer(
        kind=kind,
        code=code,
        message=message,
        data=envelope.data,
        http_status=http,
        raw=response.content,
    )


# -- addresses and headers -----------------------------------------------------------------


def settings_of(context: ProviderContext) -> AirtelSettings:
    return context.settings  # type: ignore[return-value]


def url(context: ProviderContext, country: str, path: str) -> str:
    """The per-country host when one is configured, else a path on `context.http`'s base."""
    base = settings_of(context).base_urls().get(country)
    return f"{base}{path}" if base else path


def national_msisdn(e164: str, country: str) -> str:
    """The number as Airtel wants it: national significant number, no country code, no plus.

    Raises InvalidRequest when it is not a number of `country` or has the wrong length.
    """
    if phones.region_of(e164) != country:
        raise InvalidRequest(
            f"Airtel {country} takes {country} numbers only",
            code="invalid_msisdn",
            provider=NAME,
        )
    import phonenumbers

    number = phonenumbers.parse(e164, None)
    national = phonenumbers.national_significant_number(number)
    lengths = MSISDN_LENGTHS.get(country)
    if lengths is not None and len(national) not in lengths:
        allowed = " or ".join(str(n) for n in lengths)
        raise InvalidRequest(
            f"Airtel {country} numbers have {allowed} digits without the country code",
            code="invalid_msisdn",
            provider=NAME,
        )
    return national


# -- token -----------------------------------------------------------------------------------


def _token_key(context: ProviderContext, country: str) -> str:
    settings = settings_of(context)
    return context.token_key(settings.base_urls().get(country, "default"), settings.client_id)


def _token_refused(response: httpx.Response) -> bool:
    """Airtel refuses an expired token (180 s) with `invalid_token`, as a 401 or a 403."""
    return response.status_code in (401, 403) and b"invalid_token" in response.content


def operator(context: ProviderContext, country: str) -> OperatorClient:
    """The core's operator client with Airtel's token (`POST /auth/oauth2/token`, a JSON
    body), per country host, and its test of a refused token."""
    settings = settings_of(context)

    async def fetch() -> AccessToken:
        body = TokenRequest(client_id=settings.client_id, client_secret=settings.client_secret)
        response = await request(
            context,
            "POST",
            url(context, country, TOKEN_PATH),
            "token",
            moves_money=False,
            content=msgspec.json.encode(body),
            headers={"Content-Type": "application/json", "Accept": "*/*"},
        )
        if response.status_code >= 400:
            answer = interpret(response, "token")  # raises for nearly every error status
            raise ProviderAuthenticationError(
                "Airtel refused our credentials",
                provider=NAME,
                provider_code=answer.code,
                provider_message=answer.message,
            )
        try:
            granted = msgspec.json.decode(response.content, type=TokenResponse)
        except msgspec.MsgspecError:
            interpret(response, "token")
            raise ProviderAuthenticationError(
                "Airtel gave no access token", provider=NAME
            ) from None
        return AccessToken.lasting(granted.access_token, granted.expires_in)

    return OperatorClient(
        context,
        token_key=_token_key(context, country),
        fetch_token=fetch,
        headers={"Accept": "*/*", "Content-Type": "application/json"},
        token_refused=_token_refused,
    )


async def token(context: ProviderContext, country: str) -> str:
    """A bearer token, cached for `expires_in`."""
    return await operator(context, country).token()


# -- business calls ------------------------------------------------------------------------


async def call(
    context: ProviderContext,
    method: str,
    path: str,
    operation: str,
    *,
    country: str,
    currency: str,
    body: Any = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    signed: bool = False,
) -> Answer:
    """One Airtel call with the bearer token, X-Country and X-Currency; read by `interpret`.

    Airtel's money calls are its POSTs and its reads its GETs: a lost answer to a POST is
    `OutcomeUnknown`, to a GET `ProviderUnavailable`.

    `signed`: message signing (v2 collection and refund, v3 disbursement): the body is
    serialised once, and those very bytes are signed (`x-signature`, `x-key`) and sent.
    """
    content = ENCODER.encode(body) if body is not None else None
    if signed:
        key = await encryption_key(context, country, currency)
        x_signature, x_key = sign_message(key, content or b"")
        headers = {**(headers or {}), "x-signature": x_signature, "x-key": x_key}
    response = await operator(context, country).send(
        method,
        url(context, country, path),
        operation,
        moves_money=method != "GET",
        headers={"X-Country": country, "X-Currency": currency, **(headers or {})},
        content=content,
        params=params,
    )
    return interpret(response, operation)


# -- wallet PIN ------------------------------------------------------------------------------


def _key_lifetime(valid_upto: str | None) -> float:
    if valid_upto:
        try:
            until = dt.datetime.strptime(valid_upto, "%d-%m-%Y %H:%M:%S").replace(tzinfo=dt.UTC)
            seconds = (until - dt.datetime.now(dt.UTC)).total_seconds()
            if seconds > 60:
                return min(seconds, 86_400.0)
        except ValueError:
            pass
    return 3_600.0


async def encryption_key(context: ProviderContext, country: str, currency: str) -> str:
    """Airtel's RSA public key: the setting, else `GET /v1/rsa/encryption-keys` (cached)."""
    settings = settings_of(context)
    if settings.encryption_public_key:
        return settings.encryption_public_key

    async def fetch() -> AccessToken:
        answer = await call(
            context, "GET", KEYS_PATH, "encryption key", country=country, currency=currency
        )
        if answer.kind != "success":
            raise ProviderUnavailable(
                "Airtel gave no encryption key",
                provider=NAME,
                provider_code=answer.code,
                provider_message=answer.message,
            )
        key = msgspec.convert(answer.data, EncryptionKey)
        return AccessToken.lasting(key.key, _key_lifetime(key.valid_upto))

    cache_key = context.token_key("rsa-key", settings.base_urls().get(country, "default"))
    return await context.tokens.get(cache_key, fetch)


async def encrypted_pin(context: ProviderContext, country: str, currency: str) -> str:
    """The wallet PIN, RSA-encrypted and base64: PKCS#1 v1.5 (v1) or OAEP-SHA256 (v2,
    Encryption 2.0, which disbursement v3 always requires)."""
    settings = settings_of(context)
    key = await encryption_key(context, country, currency)
    if settings.pin_encryption == "v2" or settings.disbursement_version == "v3":
        return rsa_encrypt_oaep_sha256(key, settings.pin)
    return rsa_encrypt_pkcs1v15(key, settings.pin)


# -- message signing (x-signature / x-key) ----------------------------------------------------


def aes_signature(payload: bytes, key: str, iv: str) -> str:
    """`x-signature`: base64(AES-256-CBC/PKCS5(payload)) with the base64 `key` and `iv`."""
    padder = symmetric_padding.PKCS7(128).padder()
    padded = padder.update(payload) + padder.finalize()
    encryptor = Cipher(
        algorithms.AES(base64.b64decode(key, validate=True)),
        modes.CBC(base64.b64decode(iv, validate=True)),
    ).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def sign_message(
    public_key: str, payload: bytes, *, key: str | None = None, iv: str | None = None
) -> tuple[str, str]:
    """(`x-signature`, `x-key`) for `payload`, as Airtel's message signing wants them.

    A fresh random AES-256 key (32 bytes) and IV (16 bytes), base64 each; the payload
    encrypted with them (AES-256-CBC, PKCS#5 padding); `"<b64key>:<b64iv>"` encrypted with
    Airtel's RSA public key (RSA/ECB/PKCS1Padding). `key` / `iv` are for test vectors only.
    """
    key = key or base64.b64encode(os.urandom(32)).decode()
    iv = iv or base64.b64encode(os.urandom(16)).decode()
    return aes_signature(payload, key, iv), rsa_encrypt_pkcs1v15(public_key, f"{key}:{iv}")


def signing_key_material(decrypted: bytes) -> tuple[str, str] | None:
    """The (`key`, `iv`) of a decrypted `x-key` (`"<b64key>:<b64iv>"`), None if malformed."""
    try:
        key, _, iv = decrypted.decode("ascii").partition(":")
        if len(base64.b64decode(key, validate=True)) != 32:
            return None
        if len(base64.b64decode(iv, validate=True)) != 16:
            return None
    except (UnicodeDecodeError, binascii.Error, ValueError):
        return None
    return key, iv


# -- callback authentication -------------------------------------------------------------------

_HASH_AFTER = re.compile(rb',\s*"hash"\s*:\s*"[^"]*"')
_HASH_BEFORE = re.compile(rb'"hash"\s*:\s*"[^"]*"\s*,?')
TRANSACTION_ORDER = ("id", "message", "status_code", "airtel_money_id")


def callback_hash(private_key: str, message: bytes) -> str:
    """base64(HMAC-SHA256(private key as UTF-8, message)), as Airtel computes it."""
    return hmac_sha256_base64(private_key.encode(), message)


def without_hash(raw: bytes) -> bytes:
    """The raw body with its `"hash": "..."` member cut out, every other byte kept."""
    stripped, count = _HASH_AFTER.subn(b"", raw, count=1)
    if count:
        return stripped
    return _HASH_BEFORE.sub(b"", raw, count=1)


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def hash_candidates(raw: bytes) -> list[bytes]:
    """What Airtel may have hashed: the raw body without `hash` first; then, as fallback,
    the compact re-serialisation of the body without `hash` (as received and in Airtel's
    key order id, message, status_code, airtel_money_id), and the `transaction` object."""
    candidates = [without_hash(raw)]
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past the recursion limit
        return candidates
    if not isinstance(parsed, dict):
        return candidates
    parsed.pop("hash", None)
    candidates.append(_compact(parsed))
    transaction = parsed.get("transaction")
    if isinstance(transaction, dict):
        ordered = {k: transaction[k] for k in TRANSACTION_ORDER if k in transaction}
        ordered.update({k: v for k, v in transaction.items() if k not in ordered})
        candidates.append(_compact({**parsed, "transaction": ordered}))
        candidates.append(_compact(transaction))
    return candidates


def verify_hash(private_key: str, raw: bytes, given: str) -> bool:
    """Constant-time check of `given` against every accepted form; all are computed."""
    matches = [
        constant_time_equals(given, callback_hash(private_key, candidate))
        for candidate in hash_candidates(raw)
    ]
    return any(matches)

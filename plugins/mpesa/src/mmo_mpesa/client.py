"""Daraja's HTTP calls and the one translation of its answers into the core's terms.

- `token`: OAuth client credentials through the core's token cache.
- `operator` / `send`: a product call through the core's `OperatorClient` (bearer token,
  one refresh and resend when Daraja refuses it: each product has its own code for that).
- `raise_for`: Daraja's error envelope `{requestId, errorCode, errorMessage}` -> core error.
- `result_status`: a ResultCode (STK callback / query, B2C and other Results) -> status.
- `ResultBoard`: where the asynchronous Results of Transaction Status, Reversal and Account
  Balance meet the hook that asked for them (Daraja answers those only by callback).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
from mmo_core import failures, phones
from mmo_core.context import ProviderContext
from mmo_core.crypto import rsa_encrypt_pkcs1v15
from mmo_core.errors import (
    InvalidRequest,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
    ProviderUnavailable,
    RateLimited,
    UnknownToOperator,
)
from mmo_core.operator import OperatorClient, honours_retry_after, request
from mmo_core.tokens import AccessToken
from mmo_core.types import Failure, ReportedStatus

from mmo_mpesa.settings import MpesaSettings
from mmo_mpesa.wire import ErrorEnvelope, TokenResponse

NAME = "mpesa"
NAIROBI = ZoneInfo("Africa/Nairobi")
TOKEN_PATH = "/oauth/v1/generate"

# Each product answers an expired or unknown token with its own code.
INVALID_TOKEN_CODES = frozenset({"404.001.03", "401.002.01", "400.003.01"})
AUTH_CODES = frozenset({"400.008.01", "400.008.02", "404.001.04"})
BEING_PROCESSED = "being processed"

# Every documented ResultCode (and refusal code) -> the gateway's failure code: this
# plugin's one mapping table (docs/api.md). Codes are compared as strings; one that is not
# here becomes `operator_error`, logged once. Those mapped to `prompt_expired` (the payer
# never answered: 1019, 1036, 1037) end the payment `expired`.
VOCABULARY = failures.Vocabulary(
    NAME,
    {
        "1": failures.INSUFFICIENT_FUNDS,
        "2": failures.AMOUNT_OUT_OF_BOUNDS,
        "3": failures.AMOUNT_OUT_OF_BOUNDS,
        "4": failures.PAYER_LIMIT_REACHED,
        "8": failures.PAYER_LIMIT_REACHED,
        "11": failures.PAYER_NOT_ALLOWED,
        "17": failures.DUPLICATE,
        "21": failures.ACCOUNT_ERROR,
        "26": failures.PROVIDER_UNAVAILABLE,
        "1001": failures.PROVIDER_UNAVAILABLE,
        "1019": failures.PROMPT_EXPIRED,
        "1025": failures.OPERATOR_ERROR,
        "1032": failures.PAYER_DECLINED,
        "1036": failures.PROMPT_EXPIRED,
        "1037": failures.PROMPT_EXPIRED,
        "2001": failures.WRONG_PIN,
        "2006": failures.PAYER_NOT_ALLOWED,
        "2028": failures.ACCOUNT_ERROR,
        "2040": failures.PAYER_NOT_FOUND,
        "8006": failures.ACCOUNT_ERROR,
        "9999": failures.OPERATOR_ERROR,
        "R000001": failures.DUPLICATE,
        "R000002": failures.OPERATOR_ERROR,
        "SFC_IC0003": failures.PAYER_NOT_FOUND,
        # a B2C request that timed out in Daraja's queue (its QueueTimeOutURL)
        "QueueTimeOut": failures.NOT_RECEIVED,
        # the synchronous refusal "Unable to lock subscriber" (retry in a few minutes)
        "500.001.1001": failures.PROVIDER_UNAVAILABLE,
    },
)
RESULT_CODES: dict[str, str] = {
    "0": "The service request is processed successfully.",
    "1": "The balance is insufficient for the transaction.",
    "2": "Declined due to limit rule: less than the minimum transaction amount.",
    "3": "Declined due to limit rule: greater than the maximum transaction amount.",
    "4": "Declined due to limit rule: would exceed daily transfer limit.",
    "8": "Declined due to limit rule: would exceed the maximum balance.",
    "11": "The DebitParty is in an invalid state.",
    "17": "Rule limited.",
    "21": "The initiator is not allowed to initiate this request.",
    "26": "System busy.",
    "1001": "Unable to lock subscriber, a transaction is already in process for the current "
    "subscriber.",
    "1019": "Transaction has expired.",
    "1025": "An error occurred while sending a push request.",
    "1032": "Request cancelled by user.",
    # not in the notes' table: the prompt's own timeout (the payer never answered)
    "1036": "The push request timed out.",
    "1037": "DS timeout user cannot be reached.",
    "2001": "The initiator information is invalid.",
    "2006": "Declined due to account rule.",
    "2028": "The request is not permitted according to product assignment.",
    "2040": "Credit Party customer type (Unregistered or Registered Customer) can't be "
    "supported by the service.",
    "8006": "The security credential is locked.",
    "9999": "An error occurred while sending a push request.",
    "R000001": "The transaction has already been reversed.",
    "R000002": "The OriginalTransactionID is invalid.",
    "SFC_IC0003": "The operator does not exist.",
}

_KENYAN_WALLET = re.compile(r"^254[17]\d{8}$")


# -- formats --------------------------------------------------------------------------------


def timestamp(now: dt.datetime | None = None) -> str:
    """`YYYYMMDDHHmmss` in Nairobi time, as Daraja expects (a UTC clock reads as expired)."""
    moment = now or dt.datetime.now(tz=NAIROBI)
    return moment.astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def password(shortcode: str, passkey: str, stamp: str) -> str:
    """The STK Password: base64(BusinessShortCode + Passkey + Timestamp)."""
    return base64.b64encode(f"{shortcode}{passkey}{stamp}".encode()).decode()


def msisdn(number: str) -> str:
    """A Kenyan wallet as Daraja wants it: 2547XXXXXXXX or 2541XXXXXXXX.

    Accepts every form a Kenyan user types (07..., 01..., +254..., 254...).
    """
    raw = number.strip().replace(" ", "")
    region = None if raw.startswith(("+", "254")) else "KE"
    digits = phones.international_digits(phones.to_e164(raw, region, strict=False))
    if not _KENYAN_WALLET.match(digits):
        raise InvalidRequest(
            "M-Pesa takes Kenyan mobile numbers (07..., 01..., +2547..., +2541...)",
            code="invalid_msisdn",
            provider=NAME,
        )
    return digits


def whole_shillings(amount: Decimal) -> int:
    if amount != amount.to_integral_value() or amount <= 0:
        raise InvalidRequest(
            "M-Pesa takes whole shillings only", code="invalid_amount", provider=NAME
        )
    return int(amount)


# (certificate, initiator password) -> its SecurityCredential: Daraja's credential is
# reusable (the notes, section 8: FAQ 21), so one RSA encryption serves every call of an
# account until its certificate or password changes
_CREDENTIALS: dict[tuple[str, str], str] = {}
_CREDENTIALS_KEPT = 64


def security_credential(settings: MpesaSettings) -> str:
    """base64(RSA-PKCS#1-v1.5(initiator password)) with Safaricom's certificate, computed
    once per certificate and password."""
    # a configured certificate (its text, or its file read now: a replaced file counts),
    # or "" for the bundled TEST certificate, which never changes
    given = settings.certificate or settings.certificate_file
    key = (settings.certificate_pem() if given else "", settings.initiator_password)
    found = _CREDENTIALS.get(key)
    if found is None:
        if len(_CREDENTIALS) >= _CREDENTIALS_KEPT:
            _CREDENTIALS.clear()
        pem = key[0] or settings.certificate_pem()
        found = _CREDENTIALS[key] = rsa_encrypt_pkcs1v15(pem, settings.initiator_password)
    return found


def decimal(value: Any) -> Decimal | None:
    """A Daraja number (JSON number decoded as Decimal, or text) as a Decimal."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def decode(data: bytes, type: Any) -> Any:
    """A Daraja body as `type`, with every non-integer number read as Decimal (never a
    float). Daraja documents ids, codes, amounts and party numbers as strings but sends
    some as JSON numbers (`"ShortCode": 600984`, `"ResponseCode": 0`, `"TransAmount":
    250.00`): a number where `type` wants text is read as that text, never refused."""
    try:
        return msgspec.json.Decoder(type, float_hook=Decimal).decode(data)
    except msgspec.ValidationError:
        # the rare body with numbers for text: read it loosely, then check it as strictly
        tree = msgspec.json.Decoder(float_hook=Decimal).decode(data)
        return msgspec.convert(_as_text(tree, msgspec.inspect.type_info(type)), type)


def _wants_text(info: msgspec.inspect.Type) -> bool:
    """Whether a JSON number must become text to fit `info` (text, and no number, wanted)."""
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    numeric = (msgspec.inspect.IntType, msgspec.inspect.FloatType, msgspec.inspect.DecimalType)
    return any(isinstance(m, msgspec.inspect.StrType) for m in members) and not any(
        isinstance(m, (*numeric, msgspec.inspect.AnyType)) for m in members
    )


def _as_text(value: Any, info: msgspec.inspect.Type) -> Any:
    """`value` (decoded JSON) with each number written as text where `info` wants text."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value) if _wants_text(info) else value
    members = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    for member in members:
        if isinstance(value, dict) and isinstance(member, msgspec.inspect.StructType):
            fields = {field.encode_name: field.type for field in member.fields}
            return {k: _as_text(v, fields[k]) if k in fields else v for k, v in value.items()}
        if isinstance(value, list) and isinstance(member, msgspec.inspect.ListType):
            return [_as_text(item, member.item_type) for item in value]
    return value


# -- translation ----------------------------------------------------------------------------


def result_status(code: int | str | None, text: str = "") -> tuple[ReportedStatus, Failure | None]:
    """A Daraja ResultCode as a payment status, keeping the code and its text."""
    key = str(code).strip()
    if key == "0":
        return "succeeded", None
    failure = failure_for(key, text)
    return ("expired" if failure.code in failures.EXPIRED_CODES else "failed"), failure


def failure_for(code: str, text: str | None = None) -> Failure:
    """The one translation of a Daraja code into the gateway's vocabulary, keeping
    Daraja's code and its text (or the documented text of the code)."""
    return VOCABULARY.failure(code, text or RESULT_CODES.get(code, "M-Pesa declined"))


@honours_retry_after
def raise_for(response: httpx.Response, operation: str) -> None:
    """The one place where Daraja's synchronous answers become the core's errors."""
    status = response.status_code
    if status < 400:
        return
    try:
        envelope = decode(response.content, ErrorEnvelope)
        code, text, request_id = envelope.errorCode, envelope.errorMessage, envelope.requestId
    except msgspec.MsgspecError:
        code, text, request_id = str(status), response.text[:200], None
    kwargs: dict[str, Any] = {
        "provider": NAME,
        "provider_code": code,
        "provider_message": text,
        "request_id": request_id,
    }
    lowered = text.lower()
    if code in INVALID_TOKEN_CODES or code in AUTH_CODES or "no apiproduct match" in lowered:
        raise ProviderAuthenticationError(
            f"M-Pesa refused our credentials on {operation}", **kwargs
        )
    if code == "500.001.1001":
        if "wrong credentials" in lowered or "merchant does not exist" in lowered:
            raise ProviderAuthenticationError(
                f"M-Pesa refused the shortcode or passkey on {operation}", **kwargs
            )
        if "does not exist" in lowered:
            if operation == "status":
                # STK Query of a CheckoutRequestID M-Pesa never issued (to this shortcode)
                raise UnknownToOperator("M-Pesa has no record of this transaction", **kwargs)
            raise InvalidRequest(f"M-Pesa does not know this transaction ({operation})", **kwargs)
        # "Unable to lock subscriber", and any other refusal of this request
        raise OperatorDeclined(
            text or "M-Pesa declined the request", failure_code=VOCABULARY.code(code), **kwargs
        )
    if code in ("500.003.02", "500.003.03") or status == 429:
        raise RateLimited(f"M-Pesa: {operation} rate limited ({text})", retry_after=60, **kwargs)
    if status in (502, 503):
        raise ProviderUnavailable(f"M-Pesa: {operation} unavailable", **kwargs)
    if status >= 500:
        raise OutcomeUnknown(f"M-Pesa: {operation} failed with {code} {text}", **kwargs)
    raise InvalidRequest(f"M-Pesa refused {operation}: {text or code}", **kwargs)


def is_being_processed(response: httpx.Response) -> bool:
    """STK Query's standard answer while the prompt is open (HTTP 500, 500.001.1001)."""
    return response.status_code >= 400 and BEING_PROCESSED in response.text.lower()


# -- calls ----------------------------------------------------------------------------------


def _token_key(context: ProviderContext) -> str:
    return context.token_key(context.settings.consumer_key)  # type: ignore[attr-defined]


def operator(context: ProviderContext) -> OperatorClient:
    """The core's operator client with Daraja's token (`GET /oauth/v1/generate`, Basic
    auth) and its test of a refused token (each product has its own code)."""
    settings: MpesaSettings = context.settings  # type: ignore[assignment]

    async def fetch() -> AccessToken:
        response = await request(
            context,
            "GET",
            TOKEN_PATH,
            "token",
            moves_money=False,
            params={"grant_type": "client_credentials"},
            auth=(settings.consumer_key, settings.consumer_secret),
        )
        raise_for(response, "token")
        try:
            body = decode(response.content, TokenResponse)
        except msgspec.MsgspecError as exc:
            raise OutcomeUnknown(f"M-Pesa: unreadable token answer: {exc}", provider=NAME) from None
        return AccessToken.lasting(body.access_token, body.expires_in)

    return OperatorClient(
        context, token_key=_token_key(context), fetch_token=fetch, token_refused=_invalid_token
    )


async def token(context: ProviderContext) -> str:
    return await operator(context).token()


def _invalid_token(response: httpx.Response) -> bool:
    if response.status_code not in (400, 401, 404):
        return False
    try:
        code = decode(response.content, ErrorEnvelope).errorCode
    except msgspec.MsgspecError:
        return response.status_code == 401
    return code in INVALID_TOKEN_CODES


async def send(
    context: ProviderContext, path: str, body: Any, operation: str, *, moves_money: bool
) -> httpx.Response:
    """POST a product request through the core's operator client (one token refresh)."""
    return await operator(context).send(
        "POST",
        path,
        operation,
        moves_money=moves_money,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(body),
    )

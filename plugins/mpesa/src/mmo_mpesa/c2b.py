"""C2B: payments a customer starts from their phone to the business's paybill or till.

Daraja sends a validation request (when validation is enabled for the shortcode) and then
a confirmation. The confirmation is a payment the gateway did not start: it becomes an
`InboundPayment`, which the host matches to an open collection by BillRefNumber (the
account number the customer typed) or stores as a new collection.

Validation accepts everything unless `MMO_MPESA_C2B_VALIDATION_URL` is set: then the
orchestrator is asked, with a signed JSON POST, and answers `{"accept": true}` or
`{"accept": false, "result_code": "C2B00012"}`. When it does not answer in
`c2b_validation_timeout` seconds (Daraja waits about 8 s), `c2b_validation_on_timeout`
decides.
"""

from __future__ import annotations

import httpx
import msgspec
from mmo_core import money
from mmo_core.context import ProviderContext
from mmo_core.crypto import SIGNATURE_HEADER, sign_payload
from mmo_core.errors import InvalidRequest
from mmo_core.types import InboundPayment

from mmo_mpesa.client import NAME
from mmo_mpesa.settings import MpesaSettings
from mmo_mpesa.wire import C2BTransaction

# Daraja's documented rejection codes of a C2B validation
REJECTION_CODES: dict[str, str] = {
    "C2B00011": "Invalid MSISDN",
    "C2B00012": "Invalid Account Number",
    "C2B00013": "Invalid Amount",
    "C2B00014": "Invalid KYC Details",
    "C2B00015": "Invalid Shortcode",
    "C2B00016": "Other Error",
}
ACCEPTED = {"ResultCode": "0", "ResultDesc": "Accepted"}


class ValidationQuestion(msgspec.Struct, kw_only=True):
    """What the orchestrator is asked (JSON)."""

    provider: str
    transaction_id: str
    transaction_type: str
    amount: str
    currency: str
    account_reference: str
    shortcode: str
    msisdn: str
    payer_name: str


class ValidationAnswer(msgspec.Struct, kw_only=True):
    accept: bool
    result_code: str | None = None
    third_party_id: str | None = None


def payer_name(transaction: C2BTransaction) -> str:
    names = (transaction.FirstName, transaction.MiddleName, transaction.LastName)
    return " ".join(part for part in names if part)


def _rejected(code: str) -> dict[str, str]:
    code = code if code in REJECTION_CODES else "C2B00016"
    return {"ResultCode": code, "ResultDesc": "Rejected"}


async def validate(context: ProviderContext, transaction: C2BTransaction) -> dict[str, str]:
    """Daraja's answer to a validation request: accept, or reject with a documented code."""
    settings: MpesaSettings = context.settings  # type: ignore[assignment]
    if not settings.c2b_validation_url:
        return ACCEPTED
    question = ValidationQuestion(
        provider=NAME,
        transaction_id=transaction.TransID,
        transaction_type=transaction.TransactionType,
        amount=transaction.TransAmount,
        currency="KES",
        account_reference=transaction.BillRefNumber,
        shortcode=transaction.BusinessShortCode,
        msisdn=transaction.MSISDN,
        payer_name=payer_name(transaction),
    )
    body = msgspec.json.encode(question)
    headers = {"content-type": "application/json"}
    if settings.c2b_validation_secret:
        headers[SIGNATURE_HEADER] = sign_payload(body, (settings.c2b_validation_secret,))
    on_timeout = (
        ACCEPTED if settings.c2b_validation_on_timeout == "accept" else _rejected("C2B00016")
    )
    try:
        async with httpx.AsyncClient(
            timeout=settings.c2b_validation_timeout, follow_redirects=False
        ) as http:
            response = await http.post(settings.c2b_validation_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        context.log.warning(
            "C2B validation of %s: the orchestrator did not answer (%s); %s",
            transaction.TransID,
            type(exc).__name__,
            settings.c2b_validation_on_timeout,
        )
        return on_timeout
    try:
        if response.status_code >= 300:
            raise msgspec.ValidationError(f"HTTP {response.status_code}")
        answer = msgspec.json.decode(response.content, type=ValidationAnswer)
    except msgspec.MsgspecError as exc:
        context.log.warning(
            "C2B validation of %s: unusable answer from the orchestrator (%s); %s",
            transaction.TransID,
            exc,
            settings.c2b_validation_on_timeout,
        )
        return on_timeout
    if not answer.accept:
        return _rejected(answer.result_code or "C2B00016")
    if answer.third_party_id:
        return {**ACCEPTED, "ThirdPartyTransID": answer.third_party_id[:20]}
    return ACCEPTED


def inbound_payment(transaction: C2BTransaction, msisdn: str | None) -> InboundPayment:
    """The confirmation as a payment the gateway did not start."""
    try:
        amount = money.parse_amount(transaction.TransAmount, "KES")
    except InvalidRequest as exc:
        raise InvalidRequest(
            f"C2B confirmation without a usable TransAmount: {exc.message}",
            code="malformed_callback",
            provider=NAME,
        ) from None
    data = {
        "TransactionType": transaction.TransactionType,
        "BusinessShortCode": transaction.BusinessShortCode,
        "TransTime": transaction.TransTime,
    }
    for key in ("InvoiceNumber", "ThirdPartyTransID", "OrgAccountBalance"):
        value = getattr(transaction, key)
        if value:
            data[key] = value
    return InboundPayment(
        provider_transaction_id=transaction.TransID,
        amount=amount,
        currency="KES",
        country="KE",
        msisdn=msisdn,
        account_reference=transaction.BillRefNumber or None,
        payer_name=payer_name(transaction) or None,
        occurred_at=transaction.TransTime or None,
        origin="c2b",
        provider_data=data,
    )

"""The Senegal "Orange Money API" of Sonatel (omcoreapis eWallet) [O8, O9].

Merchant payment confirmed on #144# (or one step with the payer's OTP), cash-in with the
retailer's RSA-encrypted PIN, the retailer balance, and the merchant callback registered
by `setup`, whose echoed apiKey `update` checks in constant time.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import msgspec
from mmo_core import money, phones
from mmo_core.callbacks import constant_time_equals
from mmo_core.context import ProviderContext
from mmo_core.crypto import load_public_key, rsa_encrypt_pkcs1v15
from mmo_core.errors import (
    CallbackVerificationFailed,
    InvalidRequest,
    NotSupported,
    OperatorDeclined,
)
from mmo_core.types import (
    Balance,
    BalanceReport,
    InboundCallback,
    InitiateResult,
    Payment,
    PaymentUpdate,
    SetupReport,
    StatusReport,
)

from mmo_orange import client, fields
from mmo_orange.client import NAME, raise_for
from mmo_orange.wire import (
    SonatelBalance,
    SonatelMerchantCallback,
    SonatelMoney,
    SonatelNotification,
    SonatelParty,
    SonatelPublicKey,
    SonatelTransaction,
    SonatelTransactionResponse,
)

SONATEL_API = "/api/eWallet/v1"
SENEGAL_MSISDN = re.compile(r"^7[78]\d{7}$")
# a payment's metadata key carrying the OTP the payer generated (#144#391#): one-step payment
OTP_KEY = "otp"


def validate(payment: Payment) -> None:
    """Orange Senegal numbers only; the payer message becomes `reference` (50 characters),
    else the reference is the payment id (`fields`), never refused."""
    fields.check_payer_message(payment, "sonatel")
    if not SENEGAL_MSISDN.match(phones.national_number(payment.msisdn)):
        raise InvalidRequest(
            "Orange Senegal takes Orange numbers of 9 digits (77xxxxxxx, 78xxxxxxx)",
            code="invalid_msisdn",
            provider=NAME,
        )


def is_callback(callback: InboundCallback) -> bool:
    """Sonatel's callback carries `transactionId`; WebPay's carries `notif_token`."""
    return b'"transactionId"' in callback.body


async def encrypted_pin(context: ProviderContext) -> str:
    """base64(RSA-PKCS#1-v1.5(PIN)) with the key Sonatel serves at publicKeys [O8]."""
    response = await client.send(
        context, "sonatel", "GET", "/api/account/v1/publicKeys", "public key", moves_money=False
    )
    raise_for(response, "public key")
    key = client.decode(response, SonatelPublicKey, "Orange Senegal: publicKeys", moves_money=False)
    return rsa_encrypt_pkcs1v15(load_public_key(key.key), client.settings_of(context).sonatel_pin)


async def initiate(context: ProviderContext, payment: Payment) -> InitiateResult:
    settings = client.settings_of(context)
    customer = SonatelParty(
        idType="MSISDN", id=phones.national_number(payment.msisdn), walletType="PRINCIPAL"
    )
    otp = str(payment.metadata.get(OTP_KEY) or "")
    if payment.type == "disbursement":
        path, kind, method = SONATEL_API + "/cashins", "cashin", None
        partner = SonatelParty(
            idType="MSISDN",
            id=settings.sonatel_retailer_msisdn,
            encryptedPinCode=await encrypted_pin(context),
            walletType="PRINCIPAL",
        )
    else:
        partner = SonatelParty(idType="CODE", id=settings.sonatel_merchant_code)
        if otp:  # the payer's OTP: one step, no confirmation on the handset
            path, kind, method = SONATEL_API + "/payments/onestep", "onestep", None
            customer = SonatelParty(
                idType="MSISDN", id=customer.id, walletType="PRINCIPAL", otp=otp
            )
        else:  # the payer confirms on #144#
            path, kind, method = SONATEL_API + "/payments", "payment", "CLASSIC"
    body = SonatelTransaction(
        partner=partner,
        customer=customer,
        amount=SonatelMoney(value=int(payment.amount), unit=payment.currency),
        reference=fields.sonatel_reference(payment),
        requestDate=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        receiveNotification=True,
        method=method,
    )
    response = await client.send(
        context,
        "sonatel",
        "POST",
        path,
        "initiate",
        moves_money=True,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(body),
    )
    raise_for(response, "initiate")
    answer = client.decode(
        response, SonatelTransactionResponse, "Orange Senegal: transaction", moves_money=True
    )
    mapped = client.sonatel_status(answer.status)
    if mapped == "failed":
        raise OperatorDeclined(
            answer.description or f"Orange Money reported {answer.status}",
            provider=NAME,
            provider_code=answer.status.upper(),
            provider_message=answer.description,
            failure_code=client.declined_code(answer.status.upper(), answer.description),
        )
    return InitiateResult(
        status="succeeded" if mapped == "succeeded" else "pending",
        provider_reference=answer.transactionId,
        provider_transaction_id=answer.transactionId,
        provider_data={"family": "sonatel", "kind": kind, "transaction_id": answer.transactionId},
    )


async def status(context: ProviderContext, payment: Payment) -> StatusReport:
    transaction_id = payment.provider_data.get("transaction_id") or payment.provider_reference
    if not transaction_id:
        # Sonatel chooses the transactionId and answers it to the money-moving call only:
        # without it (that answer was lost) only its callback, matched by our reference,
        # can tell the outcome
        raise NotSupported(
            "This payment has no Orange Senegal transactionId: Sonatel cannot be asked about it",
            code="cannot_ask",
            provider=NAME,
        )
    response = await client.send(
        context,
        "sonatel",
        "GET",
        f"{SONATEL_API}/transactions/{transaction_id}/status",
        "status",
        moves_money=False,
    )
    raise_for(response, "status")
    answer = client.decode(
        response, SonatelTransactionResponse, "Orange Senegal: status", moves_money=False
    )
    mapped = client.sonatel_status(answer.status)
    failure = None
    if mapped == "failed":
        failure = client.failure_of(answer.status.upper(), answer.description, answer.status)
    return StatusReport(
        status=mapped,
        provider_reference=transaction_id,
        provider_transaction_id=transaction_id,
        failure=failure,
    )


def update(context: ProviderContext, callback: InboundCallback) -> PaymentUpdate:
    # numbers where strings are documented are read; an amount is a Decimal, never a float
    note: SonatelNotification = client.read_callback(callback, SonatelNotification)
    expected = client.settings_of(context).sonatel_api_key
    given = note.apiKey or callback.headers.get("apikey") or ""
    if not constant_time_equals(given, expected):
        raise CallbackVerificationFailed(
            "Orange Senegal callback with a wrong apiKey", provider=NAME
        )
    mapped = client.sonatel_status(note.status)
    failure = None
    amount = None
    if mapped == "failed":
        # a failed payment moves no money: its amount, whatever it holds, is not read
        failure = client.failure_of(note.status.upper(), None, note.status)
    elif note.amount is not None:
        amount = money.reported_amount(note.amount.value, note.amount.unit, provider=NAME)
    payment_id = None
    if note.reference:
        try:
            payment_id = str(uuid.UUID(note.reference))
        except ValueError:
            payment_id = None
    return PaymentUpdate(
        status=mapped,
        payment_id=payment_id,
        provider_reference=note.transactionId,
        provider_transaction_id=note.transactionId,
        failure=failure,
        amount=amount,
    )


async def balance(context: ProviderContext) -> BalanceReport:
    """`POST /account/retailer/balance` with the retailer's encrypted PIN."""
    settings = client.settings_of(context)
    party = SonatelParty(
        idType="MSISDN",
        id=settings.sonatel_retailer_msisdn,
        encryptedPinCode=await encrypted_pin(context),
        walletType="PRINCIPAL",
    )
    response = await client.send(
        context,
        "sonatel",
        "POST",
        SONATEL_API + "/account/retailer/balance",
        "balance",
        moves_money=False,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(party),
    )
    raise_for(response, "balance")
    held = client.decode(response, SonatelBalance, "Orange Senegal: balance", moves_money=False)
    available = held.value
    return BalanceReport(
        balances=(
            Balance(
                account=phones.mask("+221" + settings.sonatel_retailer_msisdn),
                currency=held.unit,
                available=available,
            ),
        )
    )


async def setup(context: ProviderContext) -> SetupReport:
    """`POST /api/notification/v1/merchantcallback`: our callback URL and apiKey."""
    settings = client.settings_of(context)
    body = SonatelMerchantCallback(
        apiKey=settings.sonatel_api_key,
        code=settings.sonatel_merchant_code,
        name=settings.merchant_name[:30],
        callbackUrl=context.callback_url("callback"),
    )
    response = await client.send(
        context,
        "sonatel",
        "POST",
        "/api/notification/v1/merchantcallback",
        "setup",
        moves_money=False,
        headers={"Content-Type": "application/json"},
        content=msgspec.json.encode(body),
    )
    raise_for(response, "setup")
    return SetupReport(
        lines=(
            f"Sonatel merchant callback registered for merchant code "
            f"{settings.sonatel_merchant_code} (apiKey = MMO_ORANGE_SONATEL_API_KEY).",
        )
    )

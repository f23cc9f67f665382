"""Unit tests (pytest-httpx, no network) of message signing (v2 collection and refund, v3
disbursement), balance v2 and the transaction summary."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from mmo_airtel import client, plugin
from mmo_airtel.settings import AirtelSettings
from mmo_core.errors import (
    InvalidRequest,
    OperatorDeclined,
    OutcomeUnknown,
    ProviderAuthenticationError,
)
from mmo_core.testing import make_context
from mmo_core.types import Payment
from pytest_httpx import HTTPXMock

BASE = "https://openapiuat.airtel.africa"
TOKEN_URL = f"{BASE}/auth/oauth2/token"

# shared/providers/airtel.md section 10, from the 121-platform's message_signing.ts
VECTOR_KEY = "PSw37xtnShLl7zgWn4dLSnf1J5GRhRsOD4OfvJOuLIM="
VECTOR_IV = "gGIhDvCBnSBhBgYiXCyMnw=="
VECTOR_PAYLOAD = (
    b'{"reference":"1234","subscriber":{"country":"UG","currency":"UGX","msisdn":"752604392"},'
    b'"transaction":{"amount":"100","country":"UG","currency":"UGX","id":"test_id "}}'
)
VECTOR_SIGNATURE = (
    "bDOsVGZzbK0P5jO/M5QVMH/qxSmRJLEvIPZCdW6H81xvsZNI6jZej54oBQlHZ38yy63QNeyyYcfEkGJ8f3f15wH"
    "Ws86V9BCIpHSesS3SrhozE/gGA1fLydeSS26mw0jhyt9XIpabk1RjDH59SfsrkHKU38I5mRlthG/t2qXJck0Fh"
    "NR64bgOExm9CsuxUlfpsSoW1g81g1u5a4yMFIHhp77f+h3EXNHzcEsdSWhqTho="
)

PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC = base64.b64encode(
    PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def make(**changes: Any):
    settings = AirtelSettings(**{"encryption_public_key": PUBLIC, **changes})
    return make_context(
        plugin.DECLARATION,
        settings,
        base_url=BASE,
        public_url="https://gateway.example",
        callback_secret="unit-secret",
    )


def payment(**changes: Any) -> Payment:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": "collection",
        "amount": Decimal("5000"),
        "currency": "UGX",
        "msisdn": "+256752604392",
        "reference": "Order1042",
        "country": "UG",
    }
    values.update(changes)
    return Payment(**values)


def envelope(data: Any = None, *, response_code: str | None = None, **status: Any) -> dict:
    block = {"code": "200", "message": "SUCCESS", "result_code": "ESB000010", "success": True}
    block.update(status)
    if response_code:
        block["response_code"] = response_code
    body: dict[str, Any] = {"status": block}
    if data is not None:
        body["data"] = data
    return body


def add_token(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        method="POST",
        url=TOKEN_URL,
        json={"access_token": "tok", "expires_in": "180", "token_type": "bearer"},
    )


def verify_signed(request: httpx.Request) -> bytes:
    """Check a request's x-signature / x-key as Airtel does; return the signed body."""
    decrypted = PRIVATE.decrypt(base64.b64decode(request.headers["x-key"]), padding.PKCS1v15())
    material = client.signing_key_material(decrypted)
    assert material is not None
    assert request.headers["x-signature"] == client.aes_signature(request.content, *material)
    return request.content


# -- the primitives ------------------------------------------------------------------------------


def test_notes_aes_test_vector_verifies() -> None:
    assert client.aes_signature(VECTOR_PAYLOAD, VECTOR_KEY, VECTOR_IV) == VECTOR_SIGNATURE
    signature, x_key = client.sign_message(PUBLIC, VECTOR_PAYLOAD, key=VECTOR_KEY, iv=VECTOR_IV)
    assert signature == VECTOR_SIGNATURE
    decrypted = PRIVATE.decrypt(base64.b64decode(x_key), padding.PKCS1v15())
    assert decrypted == f"{VECTOR_KEY}:{VECTOR_IV}".encode()
    # one byte more and the signature no longer matches
    assert client.aes_signature(VECTOR_PAYLOAD + b" ", VECTOR_KEY, VECTOR_IV) != VECTOR_SIGNATURE


def test_sign_message_uses_fresh_aes_256_material() -> None:
    first = client.sign_message(PUBLIC, b"{}")
    second = client.sign_message(PUBLIC, b"{}")
    assert first[0] != second[0] and first[1] != second[1]
    key, iv = client.signing_key_material(
        PRIVATE.decrypt(base64.b64decode(first[1]), padding.PKCS1v15())
    ) or ("", "")
    assert len(base64.b64decode(key)) == 32 and len(base64.b64decode(iv)) == 16
    assert client.aes_signature(b"{}", key, iv) == first[0]


@pytest.mark.parametrize(
    "material",
    [
        b"no-colon",
        base64.b64encode(b"k" * 16) + b":" + base64.b64encode(b"i" * 16),  # AES-128 key
        base64.b64encode(b"k" * 32) + b":" + base64.b64encode(b"i" * 8),  # short IV
        b"!!!:???",
        b"\xff\xfe",
    ],
)
def test_malformed_key_material_is_refused(material: bytes) -> None:
    assert client.signing_key_material(material) is None


# -- v2 collection and refund ----------------------------------------------------------------------


async def test_v2_collection_is_signed_over_the_exact_bytes_sent(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/merchant/v2/payments/",
        json=envelope(
            {"transaction": {"id": "x", "status": "SUCCESS"}}, response_code="DP00800001006"
        ),
    )
    context = make(collection_version="v2")
    pay = payment()
    result = await plugin.initiate(context, pay)
    assert result.status == "pending"
    sent = httpx_mock.get_requests(url=f"{BASE}/merchant/v2/payments/")[0]
    body = json.loads(verify_signed(sent))
    assert body["transaction"]["id"] == pay.id
    assert body["subscriber"]["msisdn"] == "752604392"


async def test_v1_collection_carries_no_signature(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/merchant/v1/payments/",
        json=envelope(
            {"transaction": {"id": "x", "status": "SUCCESS"}}, response_code="DP00800001006"
        ),
    )
    await plugin.initiate(make(), payment())
    sent = httpx_mock.get_requests(url=f"{BASE}/merchant/v1/payments/")[0]
    assert "x-signature" not in sent.headers and "x-key" not in sent.headers


@pytest.mark.parametrize(
    ("kind", "url", "code"),
    [
        ("collection", f"{BASE}/merchant/v2/payments/", "DP00800001026"),
        ("disbursement", f"{BASE}/standard/v3/disbursements", "DP00900001016"),
    ],
)
async def test_signature_mismatch_is_an_authentication_error(
    httpx_mock: HTTPXMock, kind: str, url: str, code: str
) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=url,
        json=envelope(
            response_code=code,
            code="403",
            message="Forbidden: x-signature and payload did not match",
            result_code=None,
            success=False,
        ),
    )
    context = make(collection_version="v2", disbursement_version="v3")
    with pytest.raises(ProviderAuthenticationError) as caught:
        await plugin.initiate(context, payment(type=kind, reference="Payout42"))
    assert caught.value.provider_code == code
    assert "did not match" in (caught.value.provider_message or "")


async def test_v2_refund_is_signed(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/standard/v2/payments/refund",
        json=envelope({"transaction": {"airtel_money_id": "MP1", "status": "SUCCESS"}}),
    )
    paid = payment(status="succeeded", provider_transaction_id="MP1", provider_reference="r")
    report = await plugin.reverse(make(collection_version="v2"), paid, None, "refund")
    assert report.status == "reversed"
    sent = httpx_mock.get_requests(url=f"{BASE}/standard/v2/payments/refund")[0]
    assert json.loads(verify_signed(sent)) == {"transaction": {"airtel_money_id": "MP1"}}


async def test_signing_key_is_fetched_when_not_configured(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/v1/rsa/encryption-keys",
        json=envelope(
            {"key_id": 1, "key": PUBLIC, "valid_upto": "01-01-2099 00:00:00"},
            response_code="DP02010001001",
        ),
    )
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/merchant/v2/payments/",
        json=envelope(
            {"transaction": {"id": "x", "status": "SUCCESS"}}, response_code="DP00800001006"
        ),
        is_reusable=True,
    )
    context = make(collection_version="v2", encryption_public_key="")
    await plugin.initiate(context, payment())
    await plugin.initiate(context, payment())
    assert len(httpx_mock.get_requests(url=f"{BASE}/v1/rsa/encryption-keys")) == 1  # cached
    for sent in httpx_mock.get_requests(url=f"{BASE}/merchant/v2/payments/"):
        verify_signed(sent)


# -- v3 disbursement ---------------------------------------------------------------------------------


async def test_v3_disbursement_is_signed_with_an_oaep_pin(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    url = f"{BASE}/standard/v3/disbursements"
    httpx_mock.add_response(
        method="POST",
        url=url,
        json=envelope(
            {
                "transaction": {
                    "reference_id": "CI1",
                    "airtel_money_id": "CI2",
                    "id": "x",
                    "status": "TS",
                }
            },
            response_code="DP00900001001",
        ),
    )
    # v3 requires Encryption 2.0 even when the v1 PIN setting is left on
    context = make(disbursement_version="v3", pin_encryption="v1", pin="4321")
    payout = payment(type="disbursement", reference="Payout42")
    result = await plugin.initiate(context, payout)
    assert result.status == "succeeded" and result.provider_transaction_id == "CI2"
    body = json.loads(verify_signed(httpx_mock.get_requests(url=url)[0]))
    assert PRIVATE.decrypt(base64.b64decode(body["pin"]), OAEP) == b"4321"
    assert body["transaction"]["type"] == "B2C"
    assert body["payee"] == {"msisdn": "752604392", "wallet_type": "NORMAL"}


async def test_v3_enquiry_path_and_derived_reference(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    payout = payment(type="disbursement", reference="Payout42", provider_reference="pay-42")
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/standard/v3/disbursements/pay-42?transactionType=B2C",
        json=envelope(
            {"transaction": {"id": "pay-42", "status": "TS", "airtel_money_id": "CI9"}},
            response_code="DP00900001001",
        ),
    )
    context = make(disbursement_version="v3")
    report = await plugin.status(context, payout)
    assert (report.status, report.provider_transaction_id) == ("succeeded", "CI9")
    # the v2/v3 reference rule (4 to 64 letters or digits) is met by derivation
    plugin.validate(context, payment(type="disbursement", reference="no spaces!"))


# -- balance v2 --------------------------------------------------------------------------------------


async def test_balance_v2_asks_each_wallet_type(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    for wallet, amount in (("DISB", "1500.50"), ("COLL", "99.00")):
        httpx_mock.add_response(
            method="GET",
            url=f"{BASE}/standard/v2/users/balance?type={wallet}",
            json=envelope({"balance": amount, "currency": "UGX", "account_status": "ACTIVE"}),
        )
    report = await plugin.balance(make(balance_version="v2", balance_types=" disb; coll,DISB"))
    assert [(b.account, b.available) for b in report.balances] == [
        ("UG DISB", Decimal("1500.50")),
        ("UG COLL", Decimal("99.00")),
    ]
    assert all(isinstance(b.available, Decimal) for b in report.balances)


async def test_balance_v2_defaults_to_the_disbursement_wallet(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/standard/v2/users/balance?type=DISB",
        json=envelope({"balance": "7", "currency": "UGX"}),
    )
    report = await plugin.balance(make(balance_version="v2", balance_types=""))
    assert [b.account for b in report.balances] == ["UG DISB"]


async def test_balance_v2_refusals(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    url = f"{BASE}/standard/v2/users/balance?type=DISB"
    httpx_mock.add_response(
        method="GET",
        url=url,
        json=envelope(code="400", message="Invalid type", result_code="ESB000011", success=False),
    )
    httpx_mock.add_response(
        method="GET", url=url, json=envelope({"balance": "lots", "currency": "UGX"})
    )
    context = make(balance_version="v2", balance_types="DISB")
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.balance(context)
    assert caught.value.provider_code == "ESB000011"
    with pytest.raises(OutcomeUnknown):
        await plugin.balance(context)


# -- transaction summary -------------------------------------------------------------------------

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
SUMMARY_URL = (
    f"{BASE}/merchant/v1/transactions?from=1767225600000&to=1767312000000&limit=2&offset=1"
)


async def test_transaction_summary_page(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    entry = {
        "charges": {"service": 0},
        "payee": {"currency": "UGX", "msisdn": 752604392, "name": "SHOP"},
        "payer": {"currency": "UGX", "msisdn": "752604393", "name": "JOHN DOE"},
        "service": {"type": "MERCHANT_PAYMENT"},
        "transaction": {
            "airtel_money_id": "MP1",
            "amount": 150.10,
            "created_at": 1767225600500,
            "id": 91,
            "reference_number": "Order1042",
            "status": "TS",
        },
    }
    httpx_mock.add_response(
        method="GET", url=SUMMARY_URL, json=envelope({"count": 3, "transactions": [entry]})
    )
    page = await plugin.transaction_summary(make(), START, END, limit=2, offset=1)
    assert page.count == 3
    [listed] = page.transactions
    assert listed.transaction.amount == Decimal("150.10")
    assert listed.transaction.airtel_money_id == "MP1"
    assert listed.payee and listed.payee.msisdn == 752604392


async def test_transaction_summary_errors(httpx_mock: HTTPXMock) -> None:
    add_token(httpx_mock)
    httpx_mock.add_response(
        method="GET",
        url=SUMMARY_URL,
        json=envelope(code="404", message="none", result_code="ESB000045", success=False),
    )
    httpx_mock.add_response(
        method="GET",
        url=SUMMARY_URL,
        json=envelope(code="400", message="failed", result_code="ESB000011", success=False),
    )
    httpx_mock.add_response(
        method="GET", url=SUMMARY_URL, json=envelope({"count": "many", "transactions": 1})
    )
    httpx_mock.add_response(method="GET", url=SUMMARY_URL, json=envelope())
    context = make()
    empty = await plugin.transaction_summary(context, START, END, limit=2, offset=1)
    assert (empty.count, empty.transactions) == (0, [])
    with pytest.raises(OperatorDeclined):
        await plugin.transaction_summary(context, START, END, limit=2, offset=1)
    with pytest.raises(OutcomeUnknown):
        await plugin.transaction_summary(context, START, END, limit=2, offset=1)
    assert (await plugin.transaction_summary(context, START, END, limit=2, offset=1)).count == 0
    for start, end, limit, offset in ((END, START, 1, 0), (START, END, 0, 0), (START, END, 1, -1)):
        with pytest.raises(InvalidRequest):
            await plugin.transaction_summary(context, start, end, limit=limit, offset=offset)

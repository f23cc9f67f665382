"""Unit tests (pytest-httpx) of refunds (`reverse`), deposits and requests to withdraw."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import httpx
import msgspec
import pytest
from mmo_core.callbacks import callback_token
from mmo_core.errors import (
    CallbackVerificationFailed,
    InvalidRequest,
    NotSupported,
    OperatorDeclined,
    ProviderAuthenticationError,
)
from mmo_core.testing import make_context
from mmo_core.types import InboundCallback, Payment, Reversal
from mmo_mtn_momo import client, plugin
from mmo_mtn_momo.settings import MtnMomoSettings
from pytest_httpx import HTTPXMock

BASE = "https://momo.test"
PUBLIC = "https://gw.example.com"
SECRET = "unit-secret"
REFUND_V1 = f"{BASE}/disbursement/v1_0/refund"
REFUND_V2 = f"{BASE}/disbursement/v2_0/refund"
DUPLICATE = {
    "code": "RESOURCE_ALREADY_EXIST",
    "message": "Duplicated reference id. Creation of resource failed.",
}


def context(**settings):
    values = {"callback_delay": 0.0, **settings}
    return make_context(
        plugin.DECLARATION,
        msgspec.convert(values, MtnMomoSettings, strict=False),
        base_url=BASE,
        public_url=PUBLIC,
        callback_secret=SECRET,
    )


def payment(kind: str = "collection", **changes) -> Payment:
    pid = str(uuid.uuid4())
    values = {
        "id": pid,
        "type": kind,
        "amount": Decimal("1500"),
        "currency": "EUR",
        "msisdn": "+46701234567",
        "reference": "ord-1001",
        "country": "SE",
        "status": "succeeded",
        "provider_reference": pid,
        "provider_transaction_id": "600198217",
        "provider_data": {"product": kind, "accepted": True},
    }
    values.update(changes)
    return Payment(**values)


def token_ok(httpx_mock: HTTPXMock, product: str = "disbursement") -> None:
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/{product}/token/",
        json={"access_token": f"tok-{product}", "token_type": "access_token", "expires_in": 3600},
        is_reusable=True,
    )


def reversal(rid: str, amount: str, status: str) -> Reversal:
    return Reversal(id=rid, amount=Decimal(amount), currency="EUR", status=status)


def refund_body(status: str = "SUCCESSFUL", amount: str = "1500", **extra) -> dict:
    body = {
        "amount": amount,
        "currency": "EUR",
        "externalId": "ord-1001",
        "payee": {"partyIdType": "MSISDN", "partyId": "46701234567"},
        "status": status,
        **extra,
    }
    if status == "SUCCESSFUL":
        body["financialTransactionId"] = "700000001"
    return body


def posts(httpx_mock: HTTPXMock, url: str) -> list[httpx.Request]:
    return [r for r in httpx_mock.get_requests() if r.method == "POST" and str(r.url) == url]


# -- the refund's X-Reference-Id ------------------------------------------------------------------


def test_refund_reference_is_a_deterministic_uuid4() -> None:
    pid = str(uuid.uuid4())
    ref = client.refund_reference(pid)
    parsed = uuid.UUID(ref)
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert str(parsed) == ref
    assert client.refund_reference(pid) == ref  # a resend carries the same id
    assert ref != pid and client.refund_reference(str(uuid.uuid4())) != ref
    # 16 bytes of SHA-256 over the id and "refund", version and variant bits set
    import hashlib

    raw = hashlib.sha256(f"{pid}:refund".encode()).digest()[:16]
    assert parsed.bytes[:6] == raw[:6] and parsed.bytes[9:] == raw[9:]


# -- reverse ----------------------------------------------------------------------------------------


async def test_reverse_posts_a_refund_and_reads_it_back(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    rid = client.refund_reference(p.id)
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=202)
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body())
    report = await plugin.reverse(ctx, p, None, "Customer's return & refund", None)
    assert report.status == "reversed"
    assert report.provider_reference == p.id
    assert report.provider_transaction_id == "600198217"  # the collection's, unchanged
    assert report.amount == Decimal(1500)
    assert report.provider_data == {
        "refund_reference": rid,
        "refund_status": "SUCCESSFUL",
        "refund_transaction_id": "700000001",
        "refund_amount": "1500",
    }
    (sent,) = posts(httpx_mock, REFUND_V1)
    assert sent.headers["x-reference-id"] == rid
    assert sent.headers["authorization"] == "Bearer tok-disbursement"
    assert sent.headers["ocp-apim-subscription-key"] == ctx.settings.disbursement_subscription_key
    assert sent.headers["x-callback-url"].startswith(
        f"{PUBLIC}/api/v1/webhooks/mtn-momo/refund?ref={p.id}&token="
    )
    assert json.loads(sent.content) == {
        "amount": "1500",
        "currency": "EUR",
        "externalId": "ord-1001",
        "referenceIdToRefund": p.id,
        "payerMessage": "Customer s return and refund",
        "payeeNote": "Customer s return and refund",
    }


async def test_partial_refund_v2_pending(httpx_mock: HTTPXMock) -> None:
    ctx = context(create_version="v2_0")
    token_ok(httpx_mock)
    p = payment(provider_reference=str(uuid.uuid4()))
    rid = client.refund_reference(p.id)
    httpx_mock.add_response(method="POST", url=REFUND_V2, status_code=202)
    httpx_mock.add_response(
        method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body("PENDING", "12.5")
    )
    report = await plugin.reverse(ctx, p, Decimal("12.50"), "", None)
    assert report.status == "pending"
    assert report.provider_data["refund_status"] == "PENDING"
    body = json.loads(posts(httpx_mock, REFUND_V2)[0].content)
    assert body["amount"] == "12.5"
    assert body["referenceIdToRefund"] == p.provider_reference
    assert body["payerMessage"] == "Refund ord-1001"


async def test_refund_answer_lost_is_resent_and_409_is_the_same_refund(
    httpx_mock: HTTPXMock,
) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    rid = client.refund_reference(p.id)
    httpx_mock.add_exception(httpx.ReadTimeout("lost"), method="POST", url=REFUND_V1)
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=409, json=DUPLICATE)
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body())
    report = await plugin.reverse(ctx, p, None, "refund", None)
    assert report.status == "reversed"
    sent = posts(httpx_mock, REFUND_V1)
    assert len(sent) == 2
    assert {r.headers["x-reference-id"] for r in sent} == {rid}
    assert sent[0].content == sent[1].content


async def test_second_refund_of_another_amount_is_refused(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    rid = client.refund_reference(p.id)
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=409, json=DUPLICATE)
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body(amount="100"))
    with pytest.raises(InvalidRequest) as caught:
        await plugin.reverse(ctx, p, Decimal(200), "again", None)
    assert caught.value.code == "duplicate"
    assert caught.value.provider_code == "RESOURCE_ALREADY_EXIST"


async def test_refund_not_readable_yet_is_pending(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    rid = client.refund_reference(p.id)
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=202)
    httpx_mock.add_response(
        method="GET",
        url=f"{REFUND_V1}/{rid}",
        status_code=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."},
    )
    report = await plugin.reverse(ctx, p, None, "refund", None)
    assert report.status == "pending"
    assert report.provider_data == {"refund_reference": rid}


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("NOT_ENOUGH_FUNDS", "NOT_ENOUGH_FUNDS"),
        ({"code": "TRANSACTION_NOT_FOUND", "message": "gone"}, "TRANSACTION_NOT_FOUND"),
        (None, "FAILED"),
    ],
)
async def test_failed_refund_is_declined_with_momo_reason(
    httpx_mock: HTTPXMock, reason, code
) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    rid = client.refund_reference(p.id)
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=202)
    body = refund_body("FAILED")
    if reason is not None:
        body["reason"] = reason
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=body)
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.reverse(ctx, p, None, "refund", None)
    assert caught.value.provider_code == code


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (500, "NOT_ENOUGH_FUNDS", OperatorDeclined),
        (500, "TRANSACTION_NOT_FOUND", OperatorDeclined),
        (500, "NOT_ALLOWED", OperatorDeclined),
        (400, "REQUEST_REJECTED", InvalidRequest),
        (500, "INVALID_CURRENCY", InvalidRequest),
        (403, "FORBIDDEN_IP", ProviderAuthenticationError),
    ],
)
async def test_refund_refused_at_once_is_not_resent(
    httpx_mock: HTTPXMock, status, code, error
) -> None:
    ctx = context()
    token_ok(httpx_mock)
    httpx_mock.add_response(
        method="POST", url=REFUND_V1, status_code=status, json={"code": code, "message": "no"}
    )
    with pytest.raises(error) as caught:
        await plugin.reverse(ctx, payment(), None, "refund", None)
    assert caught.value.provider_code == code
    assert len(posts(httpx_mock, REFUND_V1)) == 1


async def test_reverse_refusals_before_momo() -> None:
    ctx = context()
    with pytest.raises(NotSupported):
        await plugin.reverse(ctx, payment("disbursement"), None, "x", None)
    for amount in (Decimal(0), Decimal("1500.01")):
        with pytest.raises(InvalidRequest) as caught:
            await plugin.reverse(ctx, payment(), amount, "x", None)
        assert caught.value.code == "invalid_amount"
    with pytest.raises(ProviderAuthenticationError):
        await plugin.reverse(context(disbursement_api_key=""), payment(), None, "x", None)


# -- status sees the refund ------------------------------------------------------------------------


async def test_status_of_refunded_collection_is_reversed(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock, "collection")
    token_ok(httpx_mock)
    p = payment()
    rid = client.refund_reference(p.id)
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/requesttopay/{p.id}",
        json={"status": "SUCCESSFUL", "amount": "1500", "financialTransactionId": "600198217"},
    )
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body())
    report = await plugin.status(ctx, p)
    assert report.status == "reversed"
    assert report.provider_transaction_id == "600198217"
    assert report.provider_data["refund_transaction_id"] == "700000001"


@pytest.mark.parametrize("refund", ["missing", "PENDING", "FAILED"])
async def test_status_without_successful_refund_stays_succeeded(
    httpx_mock: HTTPXMock, refund: str
) -> None:
    ctx = context()
    token_ok(httpx_mock, "collection")
    token_ok(httpx_mock)
    p = payment()
    rid = client.refund_reference(p.id)
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/requesttopay/{p.id}",
        json={"status": "SUCCESSFUL", "amount": "1500", "financialTransactionId": "1"},
    )
    if refund == "missing":
        httpx_mock.add_response(
            method="GET",
            url=f"{REFUND_V1}/{rid}",
            status_code=404,
            json={"code": "RESOURCE_NOT_FOUND", "message": "x"},
        )
    else:
        httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body(refund))
    assert (await plugin.status(ctx, p)).status == "succeeded"


async def test_status_looks_for_refunds_only_when_it_may_have_one(httpx_mock: HTTPXMock) -> None:
    token_ok(httpx_mock, "collection")
    success = {"status": "SUCCESSFUL", "amount": "1500", "financialTransactionId": "1"}
    # a pending payment (the host does not know it succeeded): no refund read
    p = payment(status="pending")
    httpx_mock.add_response(
        method="GET", url=f"{BASE}/collection/v1_0/requesttopay/{p.id}", json=success
    )
    assert (await plugin.status(context(), p)).status == "succeeded"
    # no disbursement credentials: no refund read
    q = payment()
    httpx_mock.add_response(
        method="GET", url=f"{BASE}/collection/v1_0/requesttopay/{q.id}", json=success
    )
    assert (await plugin.status(context(disbursement_api_user=""), q)).status == "succeeded"
    assert all("/disbursement/" not in str(r.url) for r in httpx_mock.get_requests())


# -- refund callbacks ------------------------------------------------------------------------------


def inbound(body: dict, payment_id: str, token: str | None = None) -> InboundCallback:
    return InboundCallback(
        provider="mtn_momo",
        kind="refund",
        method="PUT",
        path="/api/v1/webhooks/mtn-momo/refund",
        query={
            "ref": payment_id,
            "token": token or callback_token(SECRET, "mtn_momo", "refund", payment_id),
        },
        body=json.dumps(body).encode(),
    )


async def test_successful_refund_callback_reverses_the_payment() -> None:
    pid = str(uuid.uuid4())
    outcome = await plugin.parse_callback(context(), inbound(refund_body(amount="10"), pid))
    assert outcome.authenticated is False  # the host confirms with `status`
    update = outcome.update
    assert update.status == "reversed" and update.payment_id == pid
    assert update.amount is None  # a partial refund's amount is not the payment's
    assert update.provider_data["refund_transaction_id"] == "700000001"
    # the callback does not say which refund it is: it never overwrites refund_reference
    assert "refund_reference" not in update.provider_data
    bare = {"status": "SUCCESSFUL"}  # no amount, no financialTransactionId
    outcome = await plugin.parse_callback(context(), inbound(bare, pid))
    assert outcome.update.provider_data == {"refund_status": "SUCCESSFUL"}


@pytest.mark.parametrize("status", ["FAILED", "PENDING"])
async def test_failed_or_pending_refund_callback_changes_nothing(status: str) -> None:
    body = (
        refund_body(status, reason="NOT_ENOUGH_FUNDS")
        if status == "FAILED"
        else refund_body(status)
    )
    outcome = await plugin.parse_callback(context(), inbound(body, str(uuid.uuid4())))
    assert outcome.update is None and outcome.reply.status_code == 200


async def test_forged_refund_callback_is_refused() -> None:
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(
            context(), inbound(refund_body(), str(uuid.uuid4()), token="forged")
        )


# -- request to withdraw and deposit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "metadata", "url"),
    [
        ({}, {"mtn_momo_collection": "requesttowithdraw"}, "/collection/v1_0/requesttowithdraw"),
        (
            {"collection_mode": "requesttowithdraw", "create_version": "v2_0"},
            {},
            "/collection/v2_0/requesttowithdraw",
        ),
        (
            {"collection_mode": "requesttowithdraw"},
            {"mtn_momo_collection": "requesttopay"},
            "/collection/v1_0/requesttopay",
        ),
    ],
)
async def test_collection_mode_by_metadata_or_setting(
    httpx_mock: HTTPXMock, settings, metadata, url
) -> None:
    ctx = context(**settings)
    token_ok(httpx_mock, "collection")
    httpx_mock.add_response(method="POST", url=f"{BASE}{url}", status_code=202)
    p = payment(status="new", provider_reference=None, provider_data={}, metadata=metadata)
    plugin.validate(ctx, p)
    result = await plugin.initiate(ctx, p)
    mode = url.rsplit("/", 1)[-1]
    assert result.provider_data == {"product": "collection", "mode": mode, "accepted": True}
    (sent,) = posts(httpx_mock, f"{BASE}{url}")
    assert sent.headers["x-reference-id"] == p.id
    assert json.loads(sent.content)["payer"] == {"partyIdType": "MSISDN", "partyId": "46701234567"}
    assert "/webhooks/mtn-momo/collection?" in sent.headers["x-callback-url"]


async def test_withdraw_status_409_and_errors(httpx_mock: HTTPXMock) -> None:
    ctx = context(collection_mode="requesttowithdraw")
    token_ok(httpx_mock, "collection")
    create = f"{BASE}/collection/v1_0/requesttowithdraw"
    p = payment(status="new", provider_reference=None, provider_data={})
    httpx_mock.add_response(method="POST", url=create, status_code=409, json=DUPLICATE)
    httpx_mock.add_response(
        method="GET",
        url=f"{create}/{p.id}",
        json={"status": "SUCCESSFUL", "amount": "1500", "financialTransactionId": "42"},
    )
    result = await plugin.initiate(ctx, p)
    assert result.status == "succeeded" and result.provider_data["mode"] == "requesttowithdraw"
    # status follows the mode initiate used, whatever the settings say now
    q = payment(status="pending", provider_data={"mode": "requesttowithdraw", "accepted": True})
    httpx_mock.add_response(
        method="GET",
        url=f"{create}/{q.provider_reference}",
        json={"status": "FAILED", "reason": "APPROVAL_REJECTED"},
    )
    report = await plugin.status(context(), q)
    assert report.status == "failed" and report.failure.provider_code == "APPROVAL_REJECTED"
    httpx_mock.add_response(
        method="POST",
        url=create,
        status_code=500,
        json={"code": "PAYER_NOT_FOUND", "message": "x"},
    )
    with pytest.raises(OperatorDeclined) as caught:
        await plugin.initiate(ctx, payment(status="new", provider_reference=None, provider_data={}))
    assert caught.value.provider_code == "PAYER_NOT_FOUND"


@pytest.mark.parametrize(("version", "path"), [("v1_0", "v1_0"), ("v2_0", "v2_0")])
async def test_deposit_by_setting(httpx_mock: HTTPXMock, version, path) -> None:
    ctx = context(disbursement_mode="deposit", create_version=version)
    token_ok(httpx_mock)
    url = f"{BASE}/disbursement/{path}/deposit"
    httpx_mock.add_response(method="POST", url=url, status_code=202)
    p = payment("disbursement", status="new", provider_reference=None, provider_data={})
    plugin.validate(ctx, p)
    result = await plugin.initiate(ctx, p)
    assert result.provider_data["mode"] == "deposit"
    (sent,) = posts(httpx_mock, url)
    assert json.loads(sent.content)["payee"]["partyId"] == "46701234567"
    # the status GET of a deposit (v1_0 only), after a 202: a 404 is a late read
    q = payment("disbursement", status="pending", provider_data=result.provider_data)
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/disbursement/v1_0/deposit/{q.provider_reference}",
        status_code=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "x"},
    )
    assert (await plugin.status(ctx, q)).status == "pending"


async def test_remittance_is_always_a_transfer(httpx_mock: HTTPXMock) -> None:
    ctx = context(disbursement_mode="deposit")
    token_ok(httpx_mock, "remittance")
    url = f"{BASE}/remittance/v1_0/transfer"
    httpx_mock.add_response(method="POST", url=url, status_code=202)
    p = payment("remittance", status="new", provider_reference=None, provider_data={})
    assert (await plugin.initiate(ctx, p)).provider_data["mode"] == "transfer"


def test_validate_refuses_unknown_modes_and_versions() -> None:
    p = payment(status="new", provider_data={})
    with pytest.raises(InvalidRequest) as caught:
        plugin.validate(
            context(), msgspec.structs.replace(p, metadata={"mtn_momo_collection": "x"})
        )
    assert caught.value.code == "unsupported_mode"
    with pytest.raises(InvalidRequest):
        plugin.validate(
            context(disbursement_mode="payout"), payment("disbursement", provider_data={})
        )
    with pytest.raises(InvalidRequest):
        plugin.validate(context(collection_mode="deposit"), p)
    with pytest.raises(InvalidRequest):
        plugin.validate(context(create_version="v3_0"), p)


# -- refunds with the host's reversal id -----------------------------------------------------------


def test_refund_reference_of_a_reversal_id() -> None:
    pid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    # a UUID v4 reversal id is the refund's X-Reference-Id itself
    assert client.refund_reference(pid, rid) == rid
    assert client.refund_reference(pid, rid.upper()) == rid
    # another id (not a v4 UUID) gives a v4 derived from it, stable across retries
    for other in ("0190f0f2-7a3b-7c4d-8e5f-6a7b8c9d0e1f", "rev-1"):
        derived = client.refund_reference(pid, other)
        assert uuid.UUID(derived).version == 4
        assert derived == client.refund_reference(pid, other)
        assert derived not in (other, client.refund_reference(pid))
    # no reversal id: the id derived from the payment alone
    assert client.refund_reference(pid, None) == client.refund_reference(pid, "")


async def test_two_partial_refunds_use_their_reversal_ids(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=202, is_reusable=True)
    httpx_mock.add_response(
        method="GET", url=f"{REFUND_V1}/{first}", json=refund_body(amount="500")
    )
    httpx_mock.add_response(
        method="GET", url=f"{REFUND_V1}/{second}", json=refund_body(amount="700")
    )
    one = await plugin.reverse(ctx, p, Decimal(500), "part 1", first)
    assert one.status == "reversed" and one.amount == Decimal(500)
    assert one.provider_data["refund_reference"] == first
    assert "refund_references" not in one.provider_data  # the host keeps the reversals
    # the host hands every reversal of the payment, the one in progress included
    paid = msgspec.structs.replace(
        p, reversals=(reversal(first, "500", "reversed"), reversal(second, "700", "pending"))
    )
    two = await plugin.reverse(ctx, paid, Decimal(700), "part 2", second)
    assert two.status == "reversed" and two.amount == Decimal(700)
    assert two.provider_data["refund_reference"] == second
    assert "refund_references" not in two.provider_data
    sent = posts(httpx_mock, REFUND_V1)
    assert [r.headers["x-reference-id"] for r in sent] == [first, second]
    assert [json.loads(r.content)["amount"] for r in sent] == ["500", "700"]


async def test_retried_reversal_is_read_as_already_received(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    rid = str(uuid.uuid4())
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=409, json=DUPLICATE)
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body(amount="500"))
    report = await plugin.reverse(ctx, p, Decimal(500), "retry", rid)
    assert report.status == "reversed"
    assert report.provider_data["refund_reference"] == rid
    (sent,) = posts(httpx_mock, REFUND_V1)  # one POST, no new id invented
    assert sent.headers["x-reference-id"] == rid


async def test_reused_reversal_id_with_another_amount_is_refused(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    rid = str(uuid.uuid4())
    httpx_mock.add_response(method="POST", url=REFUND_V1, status_code=409, json=DUPLICATE)
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=refund_body(amount="500"))
    with pytest.raises(InvalidRequest) as caught:
        await plugin.reverse(ctx, p, Decimal(600), "other amount", rid)
    assert caught.value.code == "duplicate"


@pytest.mark.parametrize(
    ("second_status", "status", "total"),
    [("SUCCESSFUL", "reversed", "1500"), ("FAILED", "succeeded", "500")],
)
async def test_status_reads_every_recorded_refund(
    httpx_mock: HTTPXMock, second_status: str, status: str, total: str
) -> None:
    """`reversed` only once the successful refunds add up to the payment (the host reads
    `reversed` as the whole payment); a partial refund leaves it `succeeded`."""
    ctx = context()
    token_ok(httpx_mock, "collection")
    token_ok(httpx_mock)
    first, second, failed = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    # the host's reversals, oldest first: a failed one is not read back
    p = payment(
        reversals=(
            reversal(first, "500", "reversed"),
            reversal(failed, "200", "failed"),
            reversal(second, "1000", "pending"),
        )
    )
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/requesttopay/{p.id}",
        json={"status": "SUCCESSFUL", "amount": "1500", "financialTransactionId": "600198217"},
    )
    httpx_mock.add_response(
        method="GET", url=f"{REFUND_V1}/{first}", json=refund_body(amount="500")
    )
    httpx_mock.add_response(
        method="GET", url=f"{REFUND_V1}/{second}", json=refund_body(second_status, amount="1000")
    )
    report = await plugin.status(ctx, p)
    assert report.status == status
    assert report.provider_data["refund_total"] == total
    last = second if second_status == "SUCCESSFUL" else first
    assert report.provider_data["refund_reference"] == last  # the last that succeeded
    # the derived id is not read when the host has reversals, nor a failed reversal's
    read = [str(r.url) for r in httpx_mock.get_requests()]
    assert not any(client.refund_reference(p.id) in url or failed in url for url in read)


# -- reversal_status: the worker asks about a refund left pending --------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (refund_body("SUCCESSFUL", amount="500"), "reversed", None),
        (refund_body("PENDING", amount="500"), "pending", None),
        (
            refund_body("FAILED", amount="500", reason="NOT_ENOUGH_FUNDS"),
            "failed",
            "NOT_ENOUGH_FUNDS",
        ),
    ],
)
async def test_reversal_status_reads_the_refund_by_its_reversal_id(
    httpx_mock: HTTPXMock, body, status, code
) -> None:
    from mmo_core.types import Reversal

    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    reversal = Reversal(id=str(uuid.uuid4()), amount=Decimal(500), currency="EUR", status="pending")
    rid = client.refund_reference(p.id, reversal.id)
    assert rid == reversal.id  # a UUID v4 is used as it is
    httpx_mock.add_response(method="GET", url=f"{REFUND_V1}/{rid}", json=body)
    report = await plugin.reversal_status(ctx, p, reversal)
    assert report.status == status
    assert (report.failure.provider_code if report.failure else None) == code
    assert report.provider_data["refund_reference"] == rid
    if status == "reversed":
        assert report.provider_transaction_id == "700000001"


async def test_reversal_status_of_a_refund_momo_never_got(httpx_mock: HTTPXMock) -> None:
    from mmo_core.errors import UnknownToOperator
    from mmo_core.types import Reversal

    ctx = context()
    token_ok(httpx_mock)
    p = payment()
    reversal = Reversal(id=str(uuid.uuid4()), amount=Decimal(5), currency="EUR", status="unknown")
    httpx_mock.add_response(
        method="GET",
        url=f"{REFUND_V1}/{reversal.id}",
        status_code=404,
        json={"code": "RESOURCE_NOT_FOUND", "message": "Requested resource was not found."},
    )
    with pytest.raises(UnknownToOperator):
        await plugin.reversal_status(ctx, p, reversal)


async def test_status_reads_no_refund_when_every_reversal_failed(httpx_mock: HTTPXMock) -> None:
    ctx = context()
    token_ok(httpx_mock, "collection")
    p = payment(reversals=(reversal(str(uuid.uuid4()), "500", "failed"),))
    httpx_mock.add_response(
        method="GET",
        url=f"{BASE}/collection/v1_0/requesttopay/{p.id}",
        json={"status": "SUCCESSFUL", "amount": "1500", "financialTransactionId": "600198217"},
    )
    report = await plugin.status(ctx, p)
    assert report.status == "succeeded" and "refund_total" not in report.provider_data
    assert not any("/refund/" in str(r.url) for r in httpx_mock.get_requests())

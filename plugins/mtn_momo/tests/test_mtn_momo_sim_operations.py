"""Refunds, deposits and requests to withdraw in the MoMo simulator, over real HTTP (raw
MoMo calls, and the plugin's hooks against it)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import httpx
import msgspec
import pytest
from mmo_core.errors import InvalidRequest, OperatorDeclined
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment, Reversal
from mmo_mtn_momo import client, plugin
from mmo_mtn_momo.settings import MtnMomoSettings

S = MtnMomoSettings()


def settings(**values) -> MtnMomoSettings:
    return msgspec.convert({"callback_delay": 0.05, **values}, MtnMomoSettings, strict=False)


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[CallbackRecorder, str]]:
    rec = CallbackRecorder()
    with serve_app(rec) as served:
        yield rec, served.url


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with serve_app(plugin.simulator_app(settings())) as served:
        yield served.url


@pytest.fixture
async def http(sim_url: str):
    async with httpx.AsyncClient(base_url=sim_url, timeout=5) as c:
        yield c


async def token(http: httpx.AsyncClient, product: str) -> str:
    key, user, secret = S.credentials(product)
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    response = await http.post(
        f"/{product}/token/",
        headers={"Authorization": f"Basic {basic}", "Ocp-Apim-Subscription-Key": key},
    )
    return response.json()["access_token"]


async def headers(http, product: str, ref: str | None = None, **extra: str) -> dict[str, str]:
    values = {
        "Authorization": f"Bearer {await token(http, product)}",
        "Ocp-Apim-Subscription-Key": S.credentials(product)[0],
        "X-Target-Environment": "sandbox",
        **extra,
    }
    if ref is not None:
        values["X-Reference-Id"] = ref
    return values


def payer_body(number: str, amount: str = "1500", key: str = "payer") -> dict:
    return {
        "amount": amount,
        "currency": "EUR",
        "externalId": "ord-1001",
        key: {"partyIdType": "MSISDN", "partyId": number},
        "payerMessage": "Order 1001",
        "payeeNote": "Order 1001",
    }


def refund_body(original: str, amount: str = "1500", currency: str = "EUR") -> dict:
    return {
        "amount": amount,
        "currency": currency,
        "externalId": "rf-1001",
        "payerMessage": "Refund",
        "payeeNote": "Refund",
        "referenceIdToRefund": original,
    }


async def create(http, path: str, body: dict, ref: str | None = None, **extra) -> httpx.Response:
    product = path.split("/")[1]
    ref = ref or str(uuid.uuid4())
    return await http.post(path, headers=await headers(http, product, ref, **extra), json=body)


async def read(http, path: str) -> httpx.Response:
    return await http.get(path, headers=await headers(http, path.split("/")[1]))


async def collected(http, number: str = "46701234567", amount: str = "1500") -> str:
    ref = str(uuid.uuid4())
    response = await create(http, "/collection/v1_0/requesttopay", payer_body(number, amount), ref)
    assert response.status_code == 202
    return ref


async def ledger(http) -> dict:
    return (await http.get("/_simulator/ledger")).json()


# -- refund ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1_0", "v2_0"])
async def test_refund_of_a_successful_collection(http, version) -> None:
    original = await collected(http)
    ref = str(uuid.uuid4())
    before = Decimal(
        (await read(http, "/disbursement/v1_0/account/balance")).json()["availableBalance"]
    )
    response = await create(http, f"/disbursement/{version}/refund", refund_body(original), ref)
    assert response.status_code == 202 and response.content == b""
    got = (await read(http, f"/disbursement/v1_0/refund/{ref}")).json()
    assert got["status"] == "SUCCESSFUL" and got["financialTransactionId"].isdigit()
    assert got["referenceIdToRefund"] == original and got["amount"] == "1500"
    assert got["payee"] == {"partyIdType": "MSISDN", "partyId": "46701234567"}
    after = Decimal(
        (await read(http, "/disbursement/v1_0/account/balance")).json()["availableBalance"]
    )
    assert after == before - 1500
    entry = next(e for e in (await ledger(http))["entries"] if e["id"] == ref)
    assert entry["kind"] == "refund" and entry["refund_of"] == original
    assert entry["status"] == "SUCCESSFUL" and entry["msisdn"] == "46701234567"
    # same X-Reference-Id again: 409, and no second refund
    again = await create(http, f"/disbursement/{version}/refund", refund_body(original), ref)
    assert again.status_code == 409 and again.json()["code"] == "RESOURCE_ALREADY_EXIST"
    # a refund is not a transfer, nor a deposit
    assert (await read(http, f"/disbursement/v1_0/transfer/{ref}")).status_code == 404
    assert (await read(http, f"/disbursement/v1_0/deposit/{ref}")).status_code == 404


async def test_refund_outcomes(http) -> None:
    async def refund(original: str, amount: str = "1500") -> dict:
        ref = str(uuid.uuid4())
        response = await create(
            http, "/disbursement/v1_0/refund", refund_body(original, amount), ref
        )
        assert response.status_code == 202
        return (await read(http, f"/disbursement/v1_0/refund/{ref}")).json()

    unknown = await refund(str(uuid.uuid4()))
    assert unknown["status"] == "FAILED" and unknown["reason"] == "TRANSACTION_NOT_FOUND"
    rejected = await refund(await collected(http, "46733123451"))
    assert rejected["status"] == "FAILED" and rejected["reason"] == "NOT_ALLOWED"
    # partial refunds up to the collected amount, not beyond
    original = await collected(http, amount="100")
    assert (await refund(original, "60"))["status"] == "SUCCESSFUL"
    over = await refund(original, "41")
    assert over["status"] == "FAILED" and over["reason"] == "NOT_ALLOWED"
    assert (await refund(original, "40"))["status"] == "SUCCESSFUL"
    # more than the disbursement account holds
    big = await collected(http, amount="5000000")
    poor = await refund(big, "5000000")
    assert poor["status"] == "FAILED" and poor["reason"] == "NOT_ENOUGH_FUNDS"
    # a refund of a request to withdraw works too
    ref = str(uuid.uuid4())
    await create(http, "/collection/v1_0/requesttowithdraw", payer_body("46701234567"), ref)
    assert (await refund(ref))["status"] == "SUCCESSFUL"


async def test_refund_request_checks(http) -> None:
    original = await collected(http)
    url = "/disbursement/v1_0/refund"
    bad_target = await create(http, url, refund_body("not-a-uuid"))
    assert bad_target.status_code == 400
    wrong_currency = await create(http, url, refund_body(original, currency="GHS"))
    assert wrong_currency.status_code == 500
    assert wrong_currency.json() == {
        "code": "INVALID_CURRENCY",
        "message": "Currency not supported.",
    }
    no_target = await create(http, url, {"amount": "1", "currency": "EUR", "externalId": "x"})
    assert no_target.status_code == 400
    bad_ref = await create(http, url, refund_body(original), ref=str(uuid.uuid1()))
    assert bad_ref.status_code == 400
    # a collection token does not open disbursement refunds
    cross = await http.post(
        url,
        headers={
            **await headers(http, "collection", str(uuid.uuid4())),
            "Ocp-Apim-Subscription-Key": S.disbursement_subscription_key,
        },
        json=refund_body(original),
    )
    assert cross.status_code == 401
    no_key = await http.post(
        url, headers={"X-Reference-Id": str(uuid.uuid4())}, json=refund_body(original)
    )
    assert no_key.status_code == 401 and no_key.json()["statusCode"] == 401
    missing = await read(http, f"{url}/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["code"] == "RESOURCE_NOT_FOUND"


async def test_refund_callback_and_faults(http, recorder) -> None:
    rec, url = recorder
    seen = len(rec.requests)
    original = await collected(http)
    ref = str(uuid.uuid4())
    await http.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 500})
    try:
        failed = await create(http, "/disbursement/v1_0/refund", refund_body(original), ref)
    finally:
        await http.post("/_simulator/faults", json={})
    assert failed.status_code == 500  # before anything happened: the reference stays free
    response = await create(
        http,
        "/disbursement/v1_0/refund",
        refund_body(original),
        ref,
        **{"X-Callback-Url": f"{url}/cb/refund?ref=abc"},
    )
    assert response.status_code == 202
    got = await asyncio.to_thread(rec.wait_for, seen + 1, 5)
    call = next(r for r in got[seen:] if r.path == "/cb/refund")
    assert call.method == "PUT" and call.query == {"ref": "abc"}
    body = json.loads(call.body)
    assert body["status"] == "SUCCESSFUL" and "referenceId" not in body
    assert body == (await read(http, f"/disbursement/v1_0/refund/{ref}")).json()


async def test_sync_errors_refuse_the_refund_at_once() -> None:
    with serve_app(plugin.simulator_app(settings(sandbox_errors="sync"))) as served:
        async with httpx.AsyncClient(base_url=served.url) as http:
            ref = str(uuid.uuid4())
            response = await create(
                http, "/disbursement/v1_0/refund", refund_body(str(uuid.uuid4())), ref
            )
            assert response.status_code == 500
            assert response.json()["code"] == "TRANSACTION_NOT_FOUND"
            assert (await read(http, f"/disbursement/v1_0/refund/{ref}")).status_code == 404
            ref = str(uuid.uuid4())
            response = await create(
                http, "/disbursement/v2_0/deposit", payer_body("46733123455", key="payee"), ref
            )
            assert response.status_code == 500 and response.json()["code"] == "PAYER_NOT_FOUND"


# -- request to withdraw and deposit -------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1_0", "v2_0"])
@pytest.mark.parametrize(
    ("number", "status", "reason"),
    [
        ("46701234567", "SUCCESSFUL", None),
        ("46733123451", "FAILED", "APPROVAL_REJECTED"),
        ("46733123455", "FAILED", "PAYER_NOT_FOUND"),
        ("46733123463", "FAILED", "COULD_NOT_PERFORM_TRANSACTION"),
        ("46701230001", "FAILED", "NOT_ENOUGH_FUNDS"),
    ],
)
async def test_request_to_withdraw(http, version, number, status, reason) -> None:
    ref = str(uuid.uuid4())
    path = f"/collection/{version}/requesttowithdraw"
    response = await create(http, path, payer_body(number), ref)
    assert response.status_code == 202 and response.content == b""
    got = (await read(http, f"/collection/v1_0/requesttowithdraw/{ref}")).json()
    assert got["status"] == status and got.get("reason") == reason
    assert got["payer"]["partyId"] == number
    # its own resource: not a request to pay
    assert (await read(http, f"/collection/v1_0/requesttopay/{ref}")).status_code == 404
    dup = await create(http, path, payer_body(number), ref)
    assert dup.status_code == 409
    entry = next(e for e in (await ledger(http))["entries"] if e["id"] == ref)
    assert entry["kind"] == "requesttowithdraw" and entry["product"] == "collection"


@pytest.mark.parametrize("version", ["v1_0", "v2_0"])
@pytest.mark.parametrize(
    ("number", "status", "reason"),
    [
        ("46701234567", "SUCCESSFUL", None),
        # DepositPayer* follow the RequestToPay rows of MTN's table
        ("46733123455", "FAILED", "PAYER_NOT_FOUND"),
        ("46733123452", "FAILED", "EXPIRED"),
    ],
)
async def test_deposit(http, version, number, status, reason) -> None:
    ref = str(uuid.uuid4())
    response = await create(
        http, f"/disbursement/{version}/deposit", payer_body(number, key="payee"), ref
    )
    assert response.status_code == 202
    got = (await read(http, f"/disbursement/v1_0/deposit/{ref}")).json()
    assert got["status"] == status and got.get("reason") == reason
    assert got["payee"]["partyId"] == number
    assert (await read(http, f"/disbursement/v1_0/transfer/{ref}")).status_code == 404
    wrong = await create(http, f"/disbursement/{version}/deposit", payer_body(number))
    assert wrong.status_code == 400  # a deposit has a payee, not a payer


# -- the plugin against the simulator ------------------------------------------------------------


def new_payment(kind: str = "collection", msisdn: str = "+46701234567", **extra) -> Payment:
    return Payment(
        id=str(uuid.uuid4()),
        type=kind,
        amount=Decimal(150),
        currency="EUR",
        msisdn=msisdn,
        reference="ord-9",
        country="SE",
        **extra,
    )


def succeeded(p: Payment, result) -> Payment:
    return msgspec.structs.replace(
        p,
        status="succeeded",
        provider_reference=result.provider_reference,
        provider_data=result.provider_data,
    )


async def test_plugin_reverse_against_the_simulator(sim_url, recorder) -> None:
    rec, public = recorder
    ctx = make_context(plugin.DECLARATION, settings(), base_url=sim_url, public_url=public)
    seen = len(rec.requests)
    try:
        p = new_payment()
        paid = succeeded(p, await plugin.initiate(ctx, p))
        assert (await plugin.status(ctx, paid)).status == "succeeded"
        report = await plugin.reverse(ctx, paid, None, "Customer's return", None)
        assert report.status == "reversed"
        rid = client.refund_reference(p.id)
        assert report.provider_data["refund_reference"] == rid
        # sent again (a lost answer, a retry): MoMo's 409, the same refund, no second one
        again = await plugin.reverse(ctx, paid, None, "retry", None)
        assert again.status == "reversed"
        with pytest.raises(InvalidRequest):
            await plugin.reverse(ctx, paid, Decimal(10), "another amount", None)
        # status now sees the refund
        status = await plugin.status(ctx, paid)
        assert status.status == "reversed"
        assert status.provider_data["refund_transaction_id"]
        async with httpx.AsyncClient(base_url=sim_url) as http:
            entries = (await ledger(http))["entries"]
        refunds = [e for e in entries if e.get("refund_of") == p.id]
        assert [e["id"] for e in refunds] == [rid]
        assert refunds[0]["status"] == "SUCCESSFUL" and refunds[0]["amount"] == "150"
        # the refund's callback goes to the refund route with our payment id
        got = await asyncio.to_thread(rec.wait_for, seen + 2, 5)
        paths = [(r.path, r.query.get("ref")) for r in got[seen:]]
        assert ("/api/v1/webhooks/mtn-momo/refund", p.id) in paths
        # a declined collection cannot be refunded: MoMo's reason is kept
        q = new_payment(msisdn="+46733123451")
        declined = succeeded(q, await plugin.initiate(ctx, q))
        with pytest.raises(OperatorDeclined) as caught:
            await plugin.reverse(ctx, declined, None, "x", None)
        assert caught.value.provider_code == "NOT_ALLOWED"
    finally:
        await ctx.http.aclose()


async def test_plugin_refund_lost_in_transit_gives_one_refund(sim_url, recorder) -> None:
    _, public = recorder
    ctx = make_context(
        plugin.DECLARATION, settings(timeout=0.5), base_url=sim_url, public_url=public
    )
    async with httpx.AsyncClient(base_url=sim_url) as http:
        try:
            p = new_payment()
            paid = succeeded(p, await plugin.initiate(ctx, p))
            await http.post(
                "/_simulator/faults", json={"timeout_rate": 1.0, "timeout_seconds": 1.0}
            )
            try:
                report = await plugin.reverse(ctx, paid, Decimal(50), "partial", None)
            finally:
                await http.post("/_simulator/faults", json={})
            assert report.status == "reversed" and report.amount == Decimal(50)
        finally:
            await ctx.http.aclose()
        entries = (await ledger(http))["entries"]
    assert [e["refund_of"] for e in entries if e.get("refund_of")].count(p.id) == 1


async def test_plugin_withdraw_and_deposit_against_the_simulator(sim_url, recorder) -> None:
    _, public = recorder
    ctx = make_context(
        plugin.DECLARATION,
        settings(disbursement_mode="deposit", create_version="v2_0"),
        base_url=sim_url,
        public_url=public,
    )
    try:
        w = new_payment(metadata={"mtn_momo_collection": "requesttowithdraw"})
        plugin.validate(ctx, w)
        result = await plugin.initiate(ctx, w)
        assert result.provider_data["mode"] == "requesttowithdraw"
        assert (await plugin.status(ctx, w)).status == "succeeded"
        d = new_payment("disbursement", msisdn="+46733123455")
        result = await plugin.initiate(ctx, d)
        report = await plugin.status(ctx, succeeded(d, result))
        assert report.status == "failed" and report.failure.provider_code == "PAYER_NOT_FOUND"
        async with httpx.AsyncClient(base_url=sim_url) as http:
            entries = {e["id"]: e for e in (await ledger(http))["entries"]}
        assert entries[w.id]["kind"] == "requesttowithdraw"
        assert entries[d.id]["kind"] == "deposit" and entries[d.id]["reason"] == "PAYER_NOT_FOUND"
    finally:
        await ctx.http.aclose()


async def test_plugin_partial_refunds_by_reversal_id(sim_url, recorder) -> None:
    """Two partial refunds of one payment (one X-Reference-Id per reversal id), a retried
    one read as already received, and a third that would refund more than was paid."""
    _, public = recorder
    ctx = make_context(plugin.DECLARATION, settings(), base_url=sim_url, public_url=public)
    try:
        p = new_payment()  # 150 EUR
        paid = succeeded(p, await plugin.initiate(ctx, p))
        first, second, third = (str(uuid.uuid4()) for _ in range(3))
        made: list[Reversal] = []

        def reversing(rid: str, amount: str) -> Payment:
            # as the host hands it: every reversal row, the one in progress included
            if rid not in {r.id for r in made}:
                made.append(
                    Reversal(id=rid, amount=Decimal(amount), currency="EUR", status="pending")
                )
            return msgspec.structs.replace(paid, reversals=tuple(made))

        def settled(rid: str, status: str) -> Payment:
            made[:] = [
                msgspec.structs.replace(r, status=status) if r.id == rid else r for r in made
            ]
            return msgspec.structs.replace(paid, reversals=tuple(made))

        one = await plugin.reverse(ctx, reversing(first, "50"), Decimal(50), "part 1", first)
        assert one.status == "reversed" and one.provider_data["refund_reference"] == first
        settled(first, "reversed")
        two = await plugin.reverse(
            ctx, reversing(second, "70.5"), Decimal("70.5"), "part 2", second
        )
        assert two.status == "reversed"
        assert two.provider_data["refund_reference"] == second
        assert "refund_references" not in two.provider_data
        # the host retries the second reversal (same id): MoMo's 409, not a third refund
        again = await plugin.reverse(
            ctx, reversing(second, "70.5"), Decimal("70.5"), "part 2", second
        )
        assert again.status == "reversed" and again.provider_data["refund_reference"] == second
        settled(second, "reversed")
        # 29.5 is left: 30 more is refused by the simulator (NOT_ALLOWED)
        with pytest.raises(OperatorDeclined) as caught:
            await plugin.reverse(ctx, reversing(third, "30"), Decimal(30), "too much", third)
        assert caught.value.provider_code == "NOT_ALLOWED"
        # 120.5 of 150 refunded: the payment is still succeeded (reversed = all of it)
        status = await plugin.status(ctx, settled(third, "failed"))
        assert status.status == "succeeded"
        assert status.provider_data["refund_total"] == "120.5"
        # the rest, 29.5: now the whole payment is refunded
        last = str(uuid.uuid4())
        rest = await plugin.reverse(ctx, reversing(last, "29.5"), Decimal("29.5"), "rest", last)
        assert rest.status == "reversed"
        status = await plugin.status(ctx, settled(last, "reversed"))
        assert status.status == "reversed" and status.provider_data["refund_total"] == "150"
        async with httpx.AsyncClient(base_url=sim_url) as http:
            entries = (await ledger(http))["entries"]
        refunds = {e["id"]: e for e in entries if e.get("refund_of") == p.id}
        assert set(refunds) == {first, second, third, rest.provider_data["refund_reference"]}
        assert refunds[first]["status"] == refunds[second]["status"] == "SUCCESSFUL"
        assert refunds[third]["status"] == "FAILED" and refunds[third]["reason"] == "NOT_ALLOWED"
        assert [refunds[first]["amount"], refunds[second]["amount"]] == ["50", "70.5"]
    finally:
        await ctx.http.aclose()


# -- endpoints the SDKs use (fidelity) -------------------------------------------------------------


async def test_balance_in_a_currency(http) -> None:
    whole = (await read(http, "/collection/v1_0/account/balance")).json()
    got = await read(http, "/collection/v1_0/account/balance/EUR")
    assert got.status_code == 200 and got.json()["currency"] == "EUR"
    assert got.json()["availableBalance"] == whole["availableBalance"]
    other = await read(http, "/disbursement/v1_0/account/balance/UGX")
    assert other.status_code == 500
    assert other.json() == {"code": "INVALID_CURRENCY", "message": "Currency not supported."}
    # the same key and token checks as every product call
    refused = await http.get("/remittance/v1_0/account/balance/EUR")
    assert refused.status_code == 401 and refused.json()["statusCode"] == 401


async def test_delivery_notification(http) -> None:
    ref = await collected(http)
    path = f"/collection/v1_0/requesttopay/{ref}/deliverynotification"
    hdrs = await headers(http, "collection")
    sent = await http.post(path, headers=hdrs, json={"notificationMessage": "Your order shipped"})
    assert sent.status_code == 200 and sent.content == b""
    entry = next(e for e in (await ledger(http))["entries"] if e["id"] == ref)
    assert entry["notification"] == "Your order shipped"
    # the message may come as a header instead of the body
    by_header = await http.post(path, headers={**hdrs, "notificationMessage": "By header"})
    assert by_header.status_code == 200
    too_long = await http.post(path, headers=hdrs, json={"notificationMessage": "x" * 161})
    assert too_long.status_code == 400 and too_long.json()["code"] == "REQUEST_REJECTED"
    assert (await http.post(path, headers=hdrs, content=b"{")).status_code == 400
    assert (await http.post(path, headers=hdrs, json={})).status_code == 400
    unknown = f"/collection/v1_0/requesttopay/{uuid.uuid4()}/deliverynotification"
    missing = await http.post(unknown, headers=hdrs, json={"notificationMessage": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "RESOURCE_NOT_FOUND"
    refused = await http.post(path, json={"notificationMessage": "x"})
    assert refused.status_code == 401
    # a request to withdraw takes one too
    wref = str(uuid.uuid4())
    await create(http, "/collection/v1_0/requesttowithdraw", payer_body("46701234567"), wref)
    withdraw = await http.post(
        f"/collection/v1_0/requesttowithdraw/{wref}/deliverynotification",
        headers=hdrs,
        json={"notificationMessage": "Withdrawn"},
    )
    assert withdraw.status_code == 200

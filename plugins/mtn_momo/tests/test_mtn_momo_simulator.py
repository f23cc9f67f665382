"""The MoMo sandbox simulator over real HTTP (raw MoMo calls, and the plugin against it)."""

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
from mmo_core.errors import InvalidRequest, UnknownToOperator
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment
from mmo_mtn_momo import plugin
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
    app = plugin.simulator_app(settings(ongoing_seconds=0.3))
    with serve_app(app) as served:
        yield served.url


@pytest.fixture
async def http(sim_url: str):
    async with httpx.AsyncClient(base_url=sim_url, timeout=5) as client:
        yield client


def basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


async def token(http: httpx.AsyncClient, product: str = "collection") -> str:
    key, user, secret = S.credentials(product)
    response = await http.post(
        f"/{product}/token/",
        headers={"Authorization": basic(user, secret), "Ocp-Apim-Subscription-Key": key},
        json={},  # mtnmomo sends "{}"; the sandbox is lenient
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "access_token" and body["expires_in"] == 3600
    return body["access_token"]


def headers(tok: str, product: str = "collection", **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {tok}",
        "Ocp-Apim-Subscription-Key": S.credentials(product)[0],
        "X-Target-Environment": "sandbox",
        **extra,
    }


def rtp(payer: str, amount: str = "1500", currency: str = "EUR", **extra) -> dict:
    return {
        "amount": amount,
        "currency": currency,
        "externalId": "ord-1001",
        "payer": {"partyIdType": "MSISDN", "partyId": payer},
        "payerMessage": "Order 1001",
        "payeeNote": "Order 1001",
        **extra,
    }


async def pay(http, payer: str, **hdrs) -> tuple[str, httpx.Response]:
    tok = await token(http)
    ref = str(uuid.uuid4())
    response = await http.post(
        "/collection/v1_0/requesttopay",
        headers=headers(tok, **{"X-Reference-Id": ref, **hdrs}),
        json=rtp(payer),
    )
    return ref, response


async def read(http, ref: str, product: str = "collection", path: str = "requesttopay") -> dict:
    tok = await token(http, product)
    response = await http.get(f"/{product}/v1_0/{path}/{ref}", headers=headers(tok, product))
    assert response.status_code == 200, response.text
    return response.json()


# -- provisioning -----------------------------------------------------------------------------


async def test_api_user_provisioning(http) -> None:
    key = S.collection_subscription_key
    user = str(uuid.uuid4())
    created = await http.post(
        "/v1_0/apiuser",
        headers={"X-Reference-Id": user, "Ocp-Apim-Subscription-Key": key},
        json={"providerCallbackHost": "merchant.example.com"},
    )
    assert created.status_code == 201 and created.content == b""
    again = await http.post(
        "/v1_0/apiuser",
        headers={"X-Reference-Id": user, "Ocp-Apim-Subscription-Key": key},
        json={"providerCallbackHost": "merchant.example.com"},
    )
    assert again.status_code == 409 and again.json()["code"] == "RESOURCE_ALREADY_EXIST"
    v1 = str(uuid.uuid1())
    bad = await http.post(
        "/v1_0/apiuser",
        headers={"X-Reference-Id": v1, "Ocp-Apim-Subscription-Key": key},
        json={"providerCallbackHost": "h"},
    )
    assert bad.status_code == 400
    garbage = await http.post(
        "/v1_0/apiuser",
        headers={"X-Reference-Id": str(uuid.uuid4()), "Ocp-Apim-Subscription-Key": key},
        content=b"{}",
    )
    assert garbage.status_code == 400
    read_back = await http.get(f"/v1_0/apiuser/{user}", headers={"Ocp-Apim-Subscription-Key": key})
    assert read_back.json() == {
        "providerCallbackHost": "merchant.example.com",
        "targetEnvironment": "sandbox",
    }
    missing = await http.get(
        f"/v1_0/apiuser/{uuid.uuid4()}", headers={"Ocp-Apim-Subscription-Key": key}
    )
    assert missing.status_code == 404
    k1 = await http.post(
        f"/v1_0/apiuser/{user}/apikey",
        headers={"Ocp-Apim-Subscription-Key": key, "Content-Length": "0"},
    )
    k2 = await http.post(f"/v1_0/apiuser/{user}/apikey", headers={"Ocp-Apim-Subscription-Key": key})
    assert k1.status_code == 201 and len(k1.json()["apiKey"]) == 32
    assert k1.json()["apiKey"] != k2.json()["apiKey"]
    nokey = await http.post(
        f"/v1_0/apiuser/{uuid.uuid4()}/apikey", headers={"Ocp-Apim-Subscription-Key": key}
    )
    assert nokey.status_code == 404
    # the new user gets a collection token with its new key
    got = await http.post(
        "/collection/token/",
        headers={
            "Authorization": basic(user, k2.json()["apiKey"]),
            "Ocp-Apim-Subscription-Key": key,
        },
    )
    assert got.status_code == 200
    # every provisioning call needs a subscription key
    for response in (
        await http.post("/v1_0/apiuser", json={"providerCallbackHost": "h"}),
        await http.get(f"/v1_0/apiuser/{user}"),
        await http.post(f"/v1_0/apiuser/{user}/apikey"),
    ):
        assert response.status_code == 401 and response.json()["statusCode"] == 401


# -- auth -------------------------------------------------------------------------------------


async def test_token_errors(http) -> None:
    key, user, _ = S.credentials("collection")
    wrong = await http.post(
        "/collection/token/",
        headers={"Authorization": basic(user, "nope"), "Ocp-Apim-Subscription-Key": key},
    )
    assert wrong.status_code == 500 and wrong.json() == {"error": "login_failed"}
    garbled = await http.post(
        "/collection/token/",
        headers={"Authorization": "Basic !!!", "Ocp-Apim-Subscription-Key": key},
    )
    assert garbled.json() == {"error": "login_failed"}
    # another product's key: APIM refuses it (a common mistake)
    other = await http.post(
        "/disbursement/token/",
        headers={
            "Authorization": basic(user, S.collection_api_key),
            "Ocp-Apim-Subscription-Key": key,
        },
    )
    assert other.status_code == 401 and "subscription key" in other.json()["message"]
    # the collection user cannot get a disbursement token
    cross = await http.post(
        "/disbursement/token/",
        headers={
            "Authorization": basic(user, S.collection_api_key),
            "Ocp-Apim-Subscription-Key": S.disbursement_subscription_key,
        },
    )
    assert cross.json() == {"error": "login_failed"}


async def test_login_failed_status_is_configurable() -> None:
    with serve_app(plugin.simulator_app(settings(login_failed_status=401))) as served:
        async with httpx.AsyncClient(base_url=served.url) as http:
            response = await http.post(
                "/collection/token/",
                headers={
                    "Authorization": basic("x", "y"),
                    "Ocp-Apim-Subscription-Key": S.collection_subscription_key,
                },
            )
    assert response.status_code == 401 and response.json() == {"error": "login_failed"}


async def test_product_calls_need_key_token_and_environment(http) -> None:
    ref = str(uuid.uuid4())
    tok = await token(http)
    url = "/collection/v1_0/requesttopay"
    no_key = await http.post(url, headers={"X-Reference-Id": ref}, json=rtp("46701234567"))
    assert no_key.status_code == 401
    bad_ref = await http.post(
        url,
        headers={
            "X-Reference-Id": "123",
            "Ocp-Apim-Subscription-Key": S.collection_subscription_key,
        },
        json=rtp("1"),
    )
    assert bad_ref.status_code == 400  # before the token check
    no_ref = await http.post(
        url, headers={"Ocp-Apim-Subscription-Key": S.collection_subscription_key}, json=rtp("1")
    )
    assert no_ref.status_code == 400
    no_token = await http.post(
        url,
        headers={"X-Reference-Id": ref, "Ocp-Apim-Subscription-Key": S.collection_subscription_key},
        json=rtp("1"),
    )
    assert no_token.status_code == 401
    bad_env = await http.post(
        url,
        headers=headers(tok, **{"X-Reference-Id": ref, "X-Target-Environment": "mtnmars"}),
        json=rtp("1"),
    )
    assert bad_env.status_code == 500 and bad_env.json()["code"] == "NOT_ALLOWED_TARGET_ENVIRONMENT"
    # a collection token does not open the disbursement product
    cross = await http.get(
        f"/disbursement/v1_0/transfer/{ref}",
        headers={**headers(tok), "Ocp-Apim-Subscription-Key": S.disbursement_subscription_key},
    )
    assert cross.status_code == 401
    # revoked (expired) tokens answer 401
    revoked = await http.post("/_simulator/revoke-tokens")
    assert revoked.json()["revoked"] >= 1
    expired = await http.get(f"{url}/{ref}", headers=headers(tok))
    assert expired.status_code == 401


async def test_expired_token_answers_401() -> None:
    with serve_app(plugin.simulator_app(settings(token_lifetime=0))) as served:
        async with httpx.AsyncClient(base_url=served.url) as http:
            tok = (
                await http.post(
                    "/collection/token/",
                    headers={
                        "Authorization": basic(S.collection_api_user, S.collection_api_key),
                        "Ocp-Apim-Subscription-Key": S.collection_subscription_key,
                    },
                )
            ).json()["access_token"]
            await asyncio.sleep(0.01)
            response = await http.get("/collection/v1_0/account/balance", headers=headers(tok))
    assert response.status_code == 401


# -- request to pay ----------------------------------------------------------------------------


async def test_create_rules(http) -> None:
    ref, first = await pay(http, "46701234567")
    assert first.status_code == 202 and first.content == b""
    tok = await token(http)
    dup = await http.post(
        "/collection/v1_0/requesttopay",
        headers=headers(tok, **{"X-Reference-Id": ref}),
        json=rtp("46701234567"),
    )
    assert dup.status_code == 409
    assert dup.json() == {
        "code": "RESOURCE_ALREADY_EXIST",
        "message": "Duplicated reference id. Creation of resource failed.",
    }
    body = await read(http, ref)
    assert body["amount"] == "1500" and body["status"] == "SUCCESSFUL"
    assert body["financialTransactionId"].isdigit() and "reason" not in body
    for bad in (
        rtp("46701234567", payerMessage="Tom's"),
        rtp("46701234567", payeeNote="a & b"),
        rtp("46701234567", payeeNote="x" * 161),
        rtp("46701234567", amount="-1"),
        rtp("46701234567", amount="abc"),
        {"amount": "1"},
    ):
        response = await http.post(
            "/collection/v1_0/requesttopay",
            headers=headers(tok, **{"X-Reference-Id": str(uuid.uuid4())}),
            json=bad,
        )
        assert response.status_code == 400, bad
    ghs = await http.post(
        "/collection/v1_0/requesttopay",
        headers=headers(tok, **{"X-Reference-Id": str(uuid.uuid4())}),
        json=rtp("46701234567", currency="GHS"),
    )
    assert ghs.status_code == 500 and ghs.json() == {
        "code": "INVALID_CURRENCY",
        "message": "Currency not supported.",
    }
    unknown = await http.get(f"/collection/v1_0/requesttopay/{uuid.uuid4()}", headers=headers(tok))
    assert unknown.status_code == 404 and unknown.json()["code"] == "RESOURCE_NOT_FOUND"


@pytest.mark.parametrize(
    ("payer", "status", "reason"),
    [
        ("46733123450", "FAILED", "INTERNAL_PROCESSING_ERROR"),
        ("46733123451", "FAILED", "APPROVAL_REJECTED"),
        ("46733123452", "FAILED", "EXPIRED"),
        ("46733123454", "PENDING", None),
        ("46733123455", "FAILED", "PAYER_NOT_FOUND"),
        ("46733123456", "FAILED", "PAYEE_NOT_ALLOWED_TO_RECEIVE"),
        ("46733123457", "FAILED", "NOT_ALLOWED"),
        ("46733123458", "FAILED", "NOT_ALLOWED_TARGET_ENVIRONMENT"),
        ("46733123459", "FAILED", "INVALID_CALLBACK_URL_HOST"),
        ("46733123460", "FAILED", "INVALID_CURRENCY"),
        ("46733123461", "FAILED", "INTERNAL_PROCESSING_ERROR"),
        ("46733123462", "FAILED", "SERVICE_UNAVAILABLE"),
        ("46733123463", "FAILED", "COULD_NOT_PERFORM_TRANSACTION"),
        ("56733123453", "SUCCESSFUL", None),
        ("46701230001", "FAILED", "NOT_ENOUGH_FUNDS"),
        ("46701231032", "FAILED", "APPROVAL_REJECTED"),
        ("46701231037", "FAILED", "EXPIRED"),
        ("46701232001", "FAILED", "PAYMENT_NOT_APPROVED"),
        ("46701239990", "SUCCESSFUL", None),
    ],
)
async def test_request_to_pay_sandbox_numbers(http, payer, status, reason) -> None:
    ref, response = await pay(http, payer)
    assert response.status_code == 202
    body = await read(http, ref)
    assert body["status"] == status
    assert body.get("reason") == reason
    assert ("financialTransactionId" in body) == (status == "SUCCESSFUL")


async def test_ongoing_number_answers_pending_first(http, recorder) -> None:
    rec, url = recorder
    seen = len(rec.requests)
    ref, _ = await pay(http, "46733123453", **{"X-Callback-Url": f"{url}/cb/ongoing"})
    assert (await read(http, ref))["status"] == "PENDING"
    await asyncio.sleep(0.5)
    assert (await read(http, ref))["status"] == "SUCCESSFUL"
    got = await asyncio.to_thread(rec.wait_for, seen + 1, 5)
    assert any(r.path == "/cb/ongoing" for r in got[seen:])


async def test_callback_is_put_with_status_body_and_no_reference(http, recorder) -> None:
    rec, url = recorder
    seen = len(rec.requests)
    ref, _ = await pay(http, "46733123451", **{"X-Callback-Url": f"{url}/cb/one?ref=abc"})
    got = await asyncio.to_thread(rec.wait_for, seen + 1, 5)
    call = next(r for r in got[seen:] if r.path == "/cb/one")
    assert call.method == "PUT"
    assert call.query == {"ref": "abc"}
    body = json.loads(call.body)
    assert body["status"] == "FAILED" and body["reason"] == "APPROVAL_REJECTED"
    assert "referenceId" not in body and body["externalId"] == "ord-1001"
    assert body == await read(http, ref)


async def test_no_callback_without_callback_url(http, sim_url) -> None:
    ref, _ = await pay(http, "46701234567")
    await asyncio.sleep(0.15)
    ledger = (await http.get("/_simulator/ledger")).json()
    assert any(e["id"] == ref and e["status"] == "SUCCESSFUL" for e in ledger["entries"])
    assert all(ref not in json.dumps(c) for c in ledger["callbacks_sent"])


async def test_sync_sandbox_errors_and_callback_host() -> None:
    sim = settings(sandbox_errors="sync", callback_host="merchant.example.com")
    with serve_app(plugin.simulator_app(sim)) as served:
        async with httpx.AsyncClient(base_url=served.url) as http:
            for payer, status, code in (
                ("46733123455", 500, "PAYER_NOT_FOUND"),
                ("46733123462", 503, "SERVICE_UNAVAILABLE"),
            ):
                ref, response = await pay(http, payer)
                assert response.status_code == status
                assert response.json()["code"] == code
                tok = await token(http)
                gone = await http.get(f"/collection/v1_0/requesttopay/{ref}", headers=headers(tok))
                assert gone.status_code == 404  # nothing was created
            _, wrong_host = await pay(
                http, "46701234567", **{"X-Callback-Url": "http://evil.example.org/cb"}
            )
            assert wrong_host.status_code == 500
            assert wrong_host.json()["code"] == "INVALID_CALLBACK_URL_HOST"
            _, right_host = await pay(
                http, "46701234567", **{"X-Callback-Url": "http://merchant.example.com/cb"}
            )
            assert right_host.status_code == 202


# -- transfers, balance, account holders --------------------------------------------------------


@pytest.mark.parametrize(
    ("payee", "status", "reason"),
    [
        ("46733123455", "FAILED", "NOT_ENOUGH_FUNDS"),
        ("46733123456", "FAILED", "PAYER_LIMIT_REACHED"),
        ("46733123457", "FAILED", "PAYEE_NOT_FOUND"),
        ("46733123463", "FAILED", "SERVICE_UNAVAILABLE"),
        ("46701234567", "SUCCESSFUL", None),
    ],
)
@pytest.mark.parametrize("product", ["disbursement", "remittance"])
async def test_transfers(http, product, payee, status, reason) -> None:
    tok = await token(http, product)
    ref = str(uuid.uuid4())
    body = {
        "amount": "5900",
        "currency": "EUR",
        "externalId": "pay-77",
        "payee": {"partyIdType": "MSISDN", "partyId": payee},
        "payerMessage": "Salary",
        "payeeNote": "Salary",
    }
    response = await http.post(
        f"/{product}/v1_0/transfer",
        headers=headers(tok, product, **{"X-Reference-Id": ref}),
        json=body,
    )
    assert response.status_code == 202
    got = await read(http, ref, product, "transfer")
    assert got["status"] == status and got.get("reason") == reason
    assert got["payee"]["partyId"] == payee
    # a payer body is not a transfer
    wrong = await http.post(
        f"/{product}/v1_0/transfer",
        headers=headers(tok, product, **{"X-Reference-Id": str(uuid.uuid4())}),
        json=rtp(payee),
    )
    assert wrong.status_code == 400


async def test_balance_and_account_holders(http) -> None:
    tok = await token(http)
    balance = await http.get("/collection/v1_0/account/balance", headers=headers(tok))
    assert balance.json()["currency"] == "EUR"
    assert Decimal(balance.json()["availableBalance"]) > 0
    base = "/collection/v1_0/accountholder"
    for holder, expected in (("46733123450", False), ("46733123451", False), ("46701234567", True)):
        response = await http.get(f"{base}/msisdn/{holder}/active", headers=headers(tok))
        assert response.json() == {"result": expected}
    upper = await http.get(f"{base}/MSISDN/46701234567/active", headers=headers(tok))
    assert upper.json() == {"result": True}
    for holder, status, code in (
        ("46733123452", 500, "NOT_ALLOWED"),
        ("46733123453", 500, "NOT_ALLOWED_TARGET_ENVIRONMENT"),
        ("46733123454", 500, "INTERNAL_PROCESSING_ERROR"),
        ("46733123455", 503, "SERVICE_UNAVAILABLE"),
    ):
        response = await http.get(f"{base}/msisdn/{holder}/active", headers=headers(tok))
        assert response.status_code == status and response.json()["code"] == code
    info = await http.get(f"{base}/msisdn/56733123453/basicuserinfo", headers=headers(tok))
    assert info.json()["name"] == "Sand Box" and info.json()["locale"] == "sv_SE"
    none = await http.get(f"{base}/msisdn/46733123450/basicuserinfo", headers=headers(tok))
    assert none.status_code == 404
    bad_type = await http.get(f"{base}/passport/1/active", headers=headers(tok))
    assert bad_type.status_code == 400
    unauth = await http.get(f"{base}/msisdn/1/basicuserinfo")
    assert unauth.status_code == 401


async def test_faults_make_creates_fail_without_taking_the_reference(http) -> None:
    await http.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 500})
    try:
        ref, response = await pay(http, "46701234567")
    finally:
        await http.post("/_simulator/faults", json={})
    assert response.status_code == 500
    tok = await token(http)
    again = await http.post(
        "/collection/v1_0/requesttopay",
        headers=headers(tok, **{"X-Reference-Id": ref}),
        json=rtp("46701234567"),
    )
    assert again.status_code == 202


# -- the plugin against the simulator -----------------------------------------------------------


def new_payment(msisdn: str = "+46701234567", kind: str = "collection") -> Payment:
    return Payment(
        id=str(uuid.uuid4()),
        type=kind,
        amount=Decimal(150),
        currency="EUR",
        msisdn=msisdn,
        reference="ord-9",
        country="SE",
    )


async def test_answer_lost_in_transit_gives_one_payment(sim_url, recorder) -> None:
    _, public = recorder
    ctx = make_context(
        plugin.DECLARATION, settings(timeout=0.5), base_url=sim_url, public_url=public
    )
    async with httpx.AsyncClient(base_url=sim_url) as http:
        await http.post("/_simulator/faults", json={"timeout_rate": 1.0, "timeout_seconds": 1.0})
        try:
            p = new_payment()
            result = await plugin.initiate(ctx, p)
        finally:
            await http.post("/_simulator/faults", json={})
            await ctx.http.aclose()
        entries = (await http.get("/_simulator/ledger")).json()["entries"]
    assert result.provider_reference == p.id
    assert result.status in ("pending", "succeeded")
    assert [e["id"] for e in entries].count(p.id) == 1


async def test_setup_then_pay_with_the_new_user(recorder) -> None:
    _, public = recorder
    with serve_app(plugin.simulator_app(settings())) as served:
        ctx = make_context(plugin.DECLARATION, settings(), base_url=served.url, public_url=public)
        report = await plugin.setup(ctx)
        await ctx.http.aclose()
        assert "providerCallbackHost 127.0.0.1" in report.lines[0]
        env = {k.removeprefix("MMO_MTN_MOMO_").lower(): v for k, v in report.settings.items()}
        assert set(env) == {
            f"{p}_{f}"
            for p in ("collection", "disbursement", "remittance")
            for f in ("api_user", "api_key")
        }
        fresh = settings(**env)
        ctx = make_context(plugin.DECLARATION, fresh, base_url=served.url, public_url=public)
        try:
            p = new_payment()
            await plugin.initiate(ctx, p)
            report = await plugin.status(ctx, p)
            assert report.status == "succeeded"
            balances = await plugin.balance(ctx)
            assert [b.account for b in balances.balances] == [
                "collection",
                "disbursement",
                "remittance",
            ]
            info = await plugin.lookup_account(ctx, "+56733123453")
            assert info.active and info.name == "Sand Box"
            assert not (await plugin.lookup_account(ctx, "+46733123451")).active
        finally:
            await ctx.http.aclose()
        # a user whose providerCallbackHost is not ours: MoMo refuses the callback URL
        wrong = settings(callback_host="merchant.example.com")
        ctx = make_context(plugin.DECLARATION, wrong, base_url=served.url, public_url=public)
        try:
            env = {
                k.removeprefix("MMO_MTN_MOMO_").lower(): v
                for k, v in (await plugin.setup(ctx)).settings.items()
            }
        finally:
            await ctx.http.aclose()
        ctx = make_context(
            plugin.DECLARATION, settings(**env), base_url=served.url, public_url=public
        )
        try:
            with pytest.raises(InvalidRequest) as caught:
                await plugin.initiate(ctx, new_payment())
            assert getattr(caught.value, "provider_code", None) == "INVALID_CALLBACK_URL_HOST"
        finally:
            await ctx.http.aclose()


async def test_unknown_reference_status_is_unknown(sim_url, recorder) -> None:
    _, public = recorder
    ctx = make_context(plugin.DECLARATION, settings(), base_url=sim_url, public_url=public)
    try:
        with pytest.raises(UnknownToOperator):
            await plugin.status(ctx, new_payment())
    finally:
        await ctx.http.aclose()

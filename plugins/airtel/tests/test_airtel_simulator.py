"""The Airtel simulator over real HTTP on loopback: auth, headers, envelopes, codes, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from mmo_airtel import client, plugin
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator import create_simulator
from mmo_core.crypto import load_public_key, rsa_encrypt_pkcs1v15
from mmo_core.errors import OperatorDeclined, ProviderAuthenticationError
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment

SETTINGS = AirtelSettings(callback_delay=0.02, callback_auth=True, callback_private_key="k")


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[CallbackRecorder, str]]:
    recorder = CallbackRecorder()
    with serve_app(recorder) as served:
        yield recorder, served.url


@pytest.fixture(scope="module")
def simulator(recorder: tuple[CallbackRecorder, str]) -> Iterator[str]:
    settings = AirtelSettings(
        callback_delay=0.02,
        callback_auth=True,
        callback_private_key="k",
        callback_url=recorder[1] + "/airtel/callback",
    )
    with serve_app(create_simulator(settings)) as served:
        yield served.url


@pytest.fixture
async def http(simulator: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator) as http:
        token = (
            await http.post(
                "/auth/oauth2/token",
                json={
                    "client_id": "airtel-sandbox-client",
                    "client_secret": "airtel-sandbox-secret",
                    "grant_type": "client_credentials",
                },
            )
        ).json()["access_token"]
        http.headers.update(
            {"Authorization": f"Bearer {token}", "X-Country": "UG", "X-Currency": "UGX"}
        )
        yield http


def push_body(msisdn: str = "752605678", tx_id: str | None = None, amount: Any = 5000) -> dict:
    return {
        "reference": "Order1042",
        "subscriber": {"country": "UG", "currency": "UGX", "msisdn": msisdn},
        "transaction": {
            "amount": amount,
            "country": "UG",
            "currency": "UGX",
            "id": tx_id or uuid.uuid4().hex,
        },
    }


async def test_token_errors(simulator: str) -> None:
    async with httpx.AsyncClient(base_url=simulator) as http:
        good = {
            "client_id": "airtel-sandbox-client",
            "client_secret": "airtel-sandbox-secret",
            "grant_type": "client_credentials",
        }
        ok = await http.post("/auth/oauth2/token", json=good)
        assert ok.json()["expires_in"] == "180" and ok.json()["token_type"] == "bearer"
        for wrong in (
            {**good, "client_secret": "nope"},
            {**good, "grant_type": "password"},
        ):
            answer = await http.post("/auth/oauth2/token", json=wrong)
            assert answer.status_code == 400
            assert answer.json()["error"] == "invalid_client"
        assert (await http.post("/auth/oauth2/token", content=b"x")).status_code == 400
        for auth in ({}, {"Authorization": "Bearer forged"}):
            answer = await http.get("/standard/v1/users/balance", headers=auth)
            assert answer.status_code == 401
            assert answer.json()["error"] == "invalid_token"


async def test_header_checks(http: httpx.AsyncClient) -> None:
    answer = await http.get("/standard/v1/users/balance", headers={"X-Country": ""})
    assert answer.status_code == 400 and answer.json()["status_code"] == "ROUTER110"
    answer = await http.get("/standard/v1/users/balance", headers={"X-Country": "UGA"})
    assert answer.json()["status"]["response_code"] == "DP00900001013"
    answer = await http.get("/standard/v1/users/balance", headers={"X-Country": "GH"})
    assert answer.status_code == 200 and answer.json()["status"]["result_code"] == "ESB000034"
    answer = await http.get("/standard/v1/users/balance", headers={"X-Currency": ""})
    assert answer.status_code == 200 and answer.json()["status"]["result_code"] == "ESB000008"
    answer = await http.get("/standard/v1/users/balance", headers={"X-Currency": "KES"})
    assert answer.json()["status"] == {
        "code": "400",
        "message": "Invalid Currency Provided",
        "result_code": "ESB000035",
        "success": False,
    }


async def test_push_envelope_and_http_200_refusals(http: httpx.AsyncClient) -> None:
    tx_id = uuid.uuid4().hex
    answer = await http.post("/merchant/v1/payments/", json=push_body(tx_id=tx_id))
    assert answer.status_code == 200
    assert answer.json() == {
        "data": {"transaction": {"id": tx_id, "status": "SUCCESS"}},
        "status": {
            "code": "200",
            "message": "SUCCESS",
            "result_code": "ESB000010",
            "response_code": "DP00800001006",
            "success": True,
        },
    }
    cases = [
        (push_body(tx_id=tx_id), "ESB000041"),
        (push_body(msisdn="256752605678"), "ESB000033"),
        (push_body(amount=0), "DP00800001004"),
        ({"reference": "x"}, "ESB000008"),
    ]
    for body, code in cases:
        refused = await http.post("/merchant/v1/payments/", json=body)
        status = refused.json()["status"]
        assert refused.status_code == 200 and status["success"] is False
        assert code in (status.get("result_code"), status.get("response_code"))
    missing = (await http.get("/standard/v1/payments/nope")).json()["status"]
    assert (missing["result_code"], missing["response_code"]) == ("ESB000045", "DP00800001025")


async def test_numeric_msisdn_is_read_by_its_digits(
    http: httpx.AsyncClient, simulator: str
) -> None:
    """pyairtel 0.1.1 sends `msisdn` as a JSON number with the country code: Airtel answers
    that by its length (ESB000033, notes 13.2), not with a field-validation error; a
    numeric national number goes through like a string one."""
    prefixed = push_body()
    prefixed["subscriber"]["msisdn"] = 256752605678
    refused = (await http.post("/merchant/v1/payments/", json=prefixed)).json()["status"]
    assert (refused["result_code"], refused["success"]) == ("ESB000033", False)
    tx_id = uuid.uuid4().hex
    national = push_body(tx_id=tx_id)
    national["subscriber"]["msisdn"] = 752605678
    accepted = (await http.post("/merchant/v1/payments/", json=national)).json()["status"]
    assert accepted["response_code"] == "DP00800001006"
    ledger = (await http.get("/_simulator/ledger")).json()["entries"]
    assert next(e for e in ledger if e["id"] == tx_id)["status"] == "TS"
    public = (await http.get("/v1/rsa/encryption-keys")).json()["data"]["key"]
    payout = {
        "payee": {"msisdn": 256752604392},
        "reference": "Payout42",
        "pin": pin_for(public),
        "transaction": {"amount": 1500, "id": uuid.uuid4().hex},
    }
    short = (await http.post("/standard/v1/disbursements/", json=payout)).json()["status"]
    assert (short["result_code"], short["response_code"]) == ("ESB000033", "DP00900001012")


@pytest.mark.parametrize(
    ("last4", "code"),
    [
        ("0001", "DP00800001007"),
        ("2001", "DP00800001002"),
        ("1037", "DP00800001024"),
        ("1032", "DP00800001008"),
        ("5678", "DP00800001001"),
    ],
)
async def test_collection_test_numbers_and_signed_callbacks(
    http: httpx.AsyncClient, recorder: tuple[CallbackRecorder, str], last4: str, code: str
) -> None:
    tx_id = uuid.uuid4().hex
    await http.post("/merchant/v1/payments/", json=push_body(msisdn="75260" + last4, tx_id=tx_id))
    enquiry = (await http.get(f"/standard/v1/payments/{tx_id}")).json()
    assert enquiry["status"]["response_code"] == code
    assert enquiry["data"]["transaction"]["status"] == ("TS" if last4 == "5678" else "TF")
    callback = await wait_callback(recorder[0], tx_id)
    body = json.loads(callback.body)
    assert list(body["transaction"]) == ["id", "message", "status_code", "airtel_money_id"]
    assert body["transaction"]["status_code"] == enquiry["data"]["transaction"]["status"]
    assert client.verify_hash("k", callback.body, body["hash"])
    assert client.callback_hash("k", client.without_hash(callback.body)) == body["hash"]


async def wait_callback(recorder: CallbackRecorder, tx_id: str, count: int = 1) -> Any:
    for _ in range(200):
        found = [r for r in recorder.requests if tx_id.encode() in r.body]
        if len(found) >= count:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError("no callback")


async def test_callback_test_numbers(
    http: httpx.AsyncClient, recorder: tuple[CallbackRecorder, str]
) -> None:
    silent, twice = uuid.uuid4().hex, uuid.uuid4().hex
    await http.post("/merchant/v1/payments/", json=push_body(msisdn="752609990", tx_id=silent))
    await http.post("/merchant/v1/payments/", json=push_body(msisdn="752609991", tx_id=twice))
    await wait_callback(recorder[0], twice, count=2)
    assert not [r for r in recorder[0].requests if silent.encode() in r.body]


def pin_for(public: str, pin: str = "1234") -> str:
    return rsa_encrypt_pkcs1v15(public, pin)


async def test_disbursement_pin_refund_balance_and_kyc(http: httpx.AsyncClient) -> None:
    public = (await http.get("/v1/rsa/encryption-keys")).json()["data"]["key"]
    assert load_public_key(public).key_size == 1024
    start = Decimal((await http.get("/standard/v1/users/balance")).json()["data"]["balance"])
    tx_id = uuid.uuid4().hex

    def body(pin: str, msisdn: str = "752604392", tx: str = tx_id, **extra: Any) -> dict:
        return {
            "payee": {"msisdn": msisdn},
            "reference": "Payout42",
            "pin": pin,
            "transaction": {"amount": 1500, "id": tx, **extra},
        }

    garbage = base64.b64encode(b"x" * 128).decode()
    assert (await http.post("/standard/v1/disbursements/", json=body(garbage))).json()[
        "status_code"
    ] == "ROUTER116"
    wrong = await http.post("/standard/v1/disbursements/", json=body(pin_for(public, "9999")))
    assert wrong.status_code == 400 and wrong.json()["status_code"] == "ROUTER115"
    bad_type = await http.post(
        "/standard/v2/disbursements/", json=body(pin_for(public), type="P2P")
    )
    assert bad_type.json()["status"]["result_code"] == "ESB000008"
    short = await http.post("/standard/v1/disbursements/", json=body(pin_for(public), "7526"))
    assert short.json()["status"]["response_code"] == "DP00900001012"
    done = (await http.post("/standard/v1/disbursements/", json=body(pin_for(public)))).json()
    assert done["status"]["response_code"] == "DP00900001006"
    assert done["data"]["transaction"]["id"] == tx_id
    again = await http.post("/standard/v1/disbursements/", json=body(pin_for(public)))
    assert again.json()["status"]["response_code"] == "DP00900001017"
    enquiry = (await http.get(f"/standard/v2/disbursements/{tx_id}?transactionType=B2C")).json()
    assert enquiry["data"]["transaction"]["status"] == "TS"
    missing = (await http.get("/standard/v1/disbursements/nope")).json()
    assert missing["status"]["response_code"] == "DP00900001015"
    after = Decimal((await http.get("/standard/v1/users/balance")).json()["data"]["balance"])
    assert after == start - 1500
    # refund of a collection by airtel_money_id
    paid = uuid.uuid4().hex
    await http.post("/merchant/v1/payments/", json=push_body(tx_id=paid))
    airtel_id = (await http.get(f"/standard/v1/payments/{paid}")).json()["data"]["transaction"][
        "airtel_money_id"
    ]
    refund = {"transaction": {"airtel_money_id": airtel_id}}
    first = (await http.post("/standard/v1/payments/refund", json=refund)).json()
    assert first["data"]["transaction"] == {"airtel_money_id": airtel_id, "status": "SUCCESS"}
    second = (await http.post("/standard/v1/payments/refund", json=refund)).json()
    assert second["status"]["success"] is False
    unknown = {"transaction": {"airtel_money_id": "MP-none"}}
    assert (await http.post("/standard/v1/payments/refund", json=unknown)).json()["status"][
        "result_code"
    ] == "ESB000045"
    assert (await http.post("/standard/v1/payments/refund", json={})).status_code == 400
    user = (await http.get("/standard/v1/users/752604392")).json()
    assert (
        user["data"]["first_name"] == "JOHN" and user["status"]["response_code"] == "DP02200000001"
    )
    nobody = (await http.get("/standard/v1/users/752600404")).json()
    assert nobody["status"]["response_code"] == "DP02200000002"
    assert (await http.get("/standard/v1/users/75")).json()["status"]["result_code"] == "ESB000033"


async def test_faults_and_ledger(http: httpx.AsyncClient, simulator: str) -> None:
    await http.post("/_simulator/faults", json={"error_rate": 1.0, "error_status": 503})
    try:
        answer = await http.get("/standard/v1/users/balance")
        assert answer.status_code == 503
    finally:
        await http.post("/_simulator/faults", json={})
    tx_id = uuid.uuid4().hex
    await http.post("/merchant/v1/payments/", json=push_body(msisdn="752600001", tx_id=tx_id))
    ledger = (await http.get("/_simulator/ledger")).json()["entries"]
    entry = next(e for e in ledger if e["id"] == tx_id)
    assert (entry["status"], entry["response_code"]) == ("TF", "DP00800001007")


# -- the plugin against the simulator ------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_plugin_disbursement_and_refund_over_http(version: str) -> None:
    settings = AirtelSettings(
        callback_delay=0.02, pin_encryption=version, disbursement_version=version
    )
    with serve_app(create_simulator(settings)) as served:
        context = make_context(
            plugin.DECLARATION, settings, base_url=served.url, public_url="http://127.0.0.1:9"
        )
        try:
            payout = Payment(
                id=uuid.uuid4().hex,
                type="disbursement",
                amount=Decimal(2000),
                currency="UGX",
                msisdn="+256752604392",
                reference="Payout42",
                country="UG",
            )
            result = await plugin.initiate(context, payout)
            assert result.status == "pending"
            report = await plugin.status(context, payout)
            assert report.status == "succeeded"
            declined = Payment(
                **{**_fields(payout), "id": uuid.uuid4().hex, "msisdn": "+256752600001"}
            )
            await plugin.initiate(context, declined)
            failed = await plugin.status(context, declined)
            assert failed.failure and failed.failure.provider_code == "DP00900001007"
            with pytest.raises(ProviderAuthenticationError) as caught:
                wrong_pin = {**_fields(payout), "id": uuid.uuid4().hex, "msisdn": "+256752602001"}
                await plugin.initiate(context, Payment(**wrong_pin))
            assert caught.value.provider_code == "ROUTER115"
            collection = Payment(
                **{**_fields(payout), "id": uuid.uuid4().hex, "type": "collection"}
            )
            await plugin.initiate(context, collection)
            reversed_ = await plugin.reverse(context, collection, None, "refund")
            assert reversed_.status == "reversed"
            with pytest.raises(OperatorDeclined):
                await plugin.reverse(context, collection, None, "again")
            balance = await plugin.balance(context)
            assert balance.balances[0].available == Decimal(10_000_000) - 2000
            assert (await plugin.lookup_account(context, "+256752600404")).active is False
        finally:
            await context.http.aclose()


def _fields(payment: Payment) -> dict[str, Any]:
    import msgspec

    return msgspec.structs.asdict(payment)


def test_v2_simulator_key_is_oaep() -> None:
    settings = AirtelSettings(pin_encryption="v2")
    with serve_app(create_simulator(settings)) as served:
        key = httpx.post(
            f"{served.url}/auth/oauth2/token",
            json={
                "client_id": settings.client_id,
                "client_secret": settings.client_secret,
                "grant_type": "client_credentials",
            },
        ).json()["access_token"]
        answer = httpx.get(
            f"{served.url}/v1/rsa/encryption-keys",
            headers={"Authorization": f"Bearer {key}", "X-Country": "UG", "X-Currency": "UGX"},
        ).json()
        assert load_public_key(answer["data"]["key"]).key_size == 2048
        assert answer["status"]["response_code"] == "DP02010001001"


def test_the_transaction_list_is_kept_in_time_order_and_sliced_by_bisection():
    from mmo_airtel.settings import AirtelSettings
    from mmo_airtel.simulator.state import AirtelSandbox

    sandbox = AirtelSandbox(AirtelSettings())
    # the third one was made after the clock stepped back
    for number, made in enumerate((1_000, 2_000, 1_500, 3_000)):
        sandbox.add(
            {
                "account": "default",
                "id": f"T{number}",
                "currency": "UGX",
                "kind": "payout",
                "created_at": made,
            }
        )
    records, first, last = sandbox.listed("default", "UGX", 1_500, 2_999)
    assert [r["id"] for r in records[first:last]] == ["T2", "T1"]
    assert [r["created_at"] for r in records] == [1_000, 1_500, 2_000, 3_000]
    assert sandbox.listed("default", "KES", 0, 10**15) == ([], 0, 0)

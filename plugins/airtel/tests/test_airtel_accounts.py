"""Several accounts (Airtel applications) in one simulator, over real HTTP on loopback.

Each application's credentials get tokens of that application; what one creates belongs
to it; another application's token finds none of it, answered as Airtel answers an id it
does not hold (ESB000045 with DP00800001025 / DP00900001015), and an application used for
a country it is not enabled for gets ROUTER007."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from mmo_airtel import client, plugin
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator import create_simulator
from mmo_core.testing import CallbackRecorder, make_context, serve_app

UGANDA = AirtelSettings(callback_delay=0.01, callback_auth=True, callback_private_key="ug-key")
SECOND = AirtelSettings(
    client_id="second-uganda-app",
    client_secret="second-uganda-secret",
    countries="UG",
    callback_delay=0.01,
    callback_auth=True,
    callback_private_key="second-key",
)
KENYA = AirtelSettings(
    client_id="kenya-app",
    client_secret="kenya-secret",
    country="KE",
    currency="KES",
    countries="KE",
    callback_delay=0.01,
)
CREDENTIALS = {
    name: (s.client_id, s.client_secret)
    for name, s in (("default", UGANDA), ("second", SECOND), ("kenya", KENYA))
}


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, tuple[CallbackRecorder, str]]]:
    recorders = {name: CallbackRecorder() for name in CREDENTIALS}
    with (
        serve_app(recorders["default"]) as first,
        serve_app(recorders["second"]) as second,
        serve_app(recorders["kenya"]) as kenya,
    ):
        yield {
            "default": (recorders["default"], first.url),
            "second": (recorders["second"], second.url),
            "kenya": (recorders["kenya"], kenya.url),
        }


@pytest.fixture(scope="module")
def simulator(receivers: dict[str, tuple[CallbackRecorder, str]]) -> Iterator[str]:
    def portal(settings: AirtelSettings, name: str) -> AirtelSettings:
        return AirtelSettings(
            **{
                **{f: getattr(settings, f) for f in settings.__struct_fields__},
                "callback_url": receivers[name][1] + "/airtel/callback",
            }
        )

    accounts = {
        "default": portal(UGANDA, "default"),
        "second": portal(SECOND, "second"),
        "kenya": portal(KENYA, "kenya"),
    }
    app = plugin.simulator_app(settings=accounts["default"], accounts=accounts)
    with serve_app(app) as served:
        yield served.url


async def token_of(http: httpx.AsyncClient, account: str) -> str:
    client_id, secret = CREDENTIALS[account]
    answer = await http.post(
        "/auth/oauth2/token",
        json={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture
async def http(simulator: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator) as http:
        yield http


def headers(token: str, country: str = "UG", currency: str = "UGX") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Country": country, "X-Currency": currency}


def push(tx_id: str, msisdn: str = "752605678", country: str = "UG", currency: str = "UGX"):
    return {
        "reference": "Order1042",
        "subscriber": {"country": country, "currency": currency, "msisdn": msisdn},
        "transaction": {"amount": 5000, "country": country, "currency": currency, "id": tx_id},
    }


async def test_each_applications_credentials_only(http: httpx.AsyncClient) -> None:
    assert await token_of(http, "default") != await token_of(http, "second")
    crossed = await http.post(
        "/auth/oauth2/token",
        json={
            "client_id": UGANDA.client_id,
            "client_secret": SECOND.client_secret,
            "grant_type": "client_credentials",
        },
    )
    assert crossed.status_code == 400
    assert crossed.json() == {
        "error_description": "Invalid client authentication",
        "error": "invalid_client",
    }


async def test_another_applications_token_finds_none_of_its_transactions(
    http: httpx.AsyncClient, simulator: str
) -> None:
    first, second = await token_of(http, "default"), await token_of(http, "second")
    tx_id = uuid.uuid4().hex
    pushed = await http.post("/merchant/v1/payments/", json=push(tx_id), headers=headers(first))
    assert pushed.json()["status"]["success"] is True

    mine = (await http.get(f"/standard/v1/payments/{tx_id}", headers=headers(first))).json()
    assert mine["data"]["transaction"]["status"] == "TS"
    airtel_money_id = mine["data"]["transaction"]["airtel_money_id"]

    # the other application: Airtel's answer for an id it does not hold, no data
    theirs = await http.get(f"/standard/v1/payments/{tx_id}", headers=headers(second))
    assert theirs.status_code == 200
    assert theirs.json() == {
        "status": {
            "code": "404",
            "message": "No transaction found with provided id",
            "result_code": "ESB000045",
            "response_code": "DP00800001025",
            "success": False,
        }
    }
    refund = {"transaction": {"airtel_money_id": airtel_money_id}}
    refused = (
        await http.post("/standard/v1/payments/refund", json=refund, headers=headers(second))
    ).json()
    assert refused["status"]["success"] is False
    assert refused["status"]["result_code"] == "ESB000045"
    assert "data" not in refused
    # nothing moved: its owner still refunds it
    done = (
        await http.post("/standard/v1/payments/refund", json=refund, headers=headers(first))
    ).json()
    assert done["data"]["transaction"]["status"] == "SUCCESS"

    # the same transaction id is the other application's own: not a duplicate of the first
    again = await http.post("/merchant/v1/payments/", json=push(tx_id), headers=headers(second))
    assert again.json()["status"]["success"] is True
    default = (await http.get("/_simulator/ledger", params={"account": "default"})).json()
    other = (await http.get("/_simulator/ledger", params={"account": "second"})).json()
    [first_entry] = [e for e in default["entries"] if e["id"] == tx_id]
    [second_entry] = [e for e in other["entries"] if e["id"] == tx_id]
    assert (first_entry["account"], first_entry["status"]) == ("default", "REFUNDED")
    assert (second_entry["account"], second_entry["status"]) == ("second", "TS")
    assert first_entry["airtel_money_id"] != second_entry["airtel_money_id"]


async def test_disbursements_and_balances_are_per_application(http: httpx.AsyncClient) -> None:
    first, second = await token_of(http, "default"), await token_of(http, "second")
    before = (await http.get("/standard/v1/users/balance", headers=headers(second))).json()
    context = make_context(
        plugin.DECLARATION, UGANDA, base_url=str(http.base_url), public_url="http://127.0.0.1:9"
    )
    try:
        pin = await client.encrypted_pin(context, "UG", "UGX")
    finally:
        await context.http.aclose()
    tx_id = uuid.uuid4().hex
    body = {
        "payee": {"msisdn": "752605678"},
        "reference": "Payout42",
        "pin": pin,
        "transaction": {"amount": 2500, "id": tx_id},
    }
    sent = await http.post("/standard/v1/disbursements/", json=body, headers=headers(first))
    assert sent.json()["status"]["success"] is True
    theirs = (await http.get(f"/standard/v1/disbursements/{tx_id}", headers=headers(second))).json()
    assert theirs["status"]["response_code"] == "DP00900001015"
    assert theirs["status"]["success"] is False
    after = (await http.get("/standard/v1/users/balance", headers=headers(second))).json()
    assert after["data"]["balance"] == before["data"]["balance"]
    mine = (await http.get("/standard/v1/users/balance", headers=headers(first))).json()
    assert mine["data"]["balance"] != before["data"]["balance"]


async def test_an_application_is_refused_outside_its_country(http: httpx.AsyncClient) -> None:
    kenya = await token_of(http, "kenya")
    refused = await http.post(
        "/merchant/v1/payments/", json=push(uuid.uuid4().hex), headers=headers(kenya)
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "status_message": "Not authorised for country",
        "status_code": "ROUTER007",
    }
    kenyan = await http.post(
        "/merchant/v1/payments/",
        json=push(uuid.uuid4().hex, "733345678", "KE", "KES"),
        headers=headers(kenya, "KE", "KES"),
    )
    assert kenyan.json()["status"]["success"] is True


async def test_callbacks_go_to_each_applications_url_with_its_key(
    http: httpx.AsyncClient, receivers: dict[str, tuple[CallbackRecorder, str]]
) -> None:
    for account, key in (("default", "ug-key"), ("second", "second-key")):
        recorder = receivers[account][0]
        seen = len(recorder.requests)
        tx_id = uuid.uuid4().hex
        token = await token_of(http, account)
        await http.post("/merchant/v1/payments/", json=push(tx_id), headers=headers(token))
        recorded = await _wait(recorder, seen + 1)
        body = recorded.body
        assert tx_id.encode() in body
        given = body.rsplit(b'"hash":"', 1)[1].split(b'"')[0].decode()
        assert client.verify_hash(key, body, given)
        other = "second-key" if key == "ug-key" else "ug-key"
        assert not client.verify_hash(other, body, given)


async def _wait(recorder: CallbackRecorder, count: int) -> Any:
    import asyncio

    return (await asyncio.to_thread(recorder.wait_for, count, 10.0))[count - 1]


async def test_the_plugin_through_two_accounts(simulator: str) -> None:
    """The plugin's own hooks: the second account's status of the first's payment is not
    `succeeded`, and the first's is."""
    contexts = [
        make_context(
            plugin.DECLARATION,
            settings,
            base_url=simulator,
            public_url="http://127.0.0.1:9",
            account=name,
        )
        for name, settings in (("default", UGANDA), ("second", SECOND))
    ]
    try:
        from decimal import Decimal

        from mmo_core.types import Payment

        pay = Payment(
            id=str(uuid.uuid4()),
            type="collection",
            amount=Decimal(5000),
            currency="UGX",
            msisdn="+256752605678",
            reference="Order 1042",
            country="UG",
        )
        result = await plugin.initiate(contexts[0], pay)
        pending = Payment(
            **{
                **{f: getattr(pay, f) for f in pay.__struct_fields__},
                "status": "pending",
                "provider_reference": result.provider_reference,
                "provider_data": result.provider_data,
            }
        )
        assert (await plugin.status(contexts[0], pending)).status == "succeeded"
        assert (await plugin.status(contexts[1], pending)).status == "pending"
    finally:
        for context in contexts:
            await context.http.aclose()


def test_one_settings_alone_is_the_default_account() -> None:
    app = plugin.simulator_app(settings=UGANDA)
    assert app.state.simulation.accounts == {"default": UGANDA}
    with pytest.raises(ValueError, match="share a client_id"):
        create_simulator(UGANDA, {"default": UGANDA, "copy": UGANDA})

"""Several MoMo accounts in one simulator (MTN Uganda and MTN Ghana, each with its own
subscription keys, API users and keys, and target environment): each account's token works
on its own resources only; another account's gets MoMo's answers (404 RESOURCE_NOT_FOUND
for a reference it does not know, 401 for a key that is not its own, 500
NOT_ALLOWED_TARGET_ENVIRONMENT for an environment that is not its own)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
from mmo_core import failures, phones
from mmo_core.context import ProviderContext
from mmo_core.errors import CallbackVerificationFailed, OperatorDeclined
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.testing.conformance import to_inbound
from mmo_core.types import Payment
from mmo_mtn_momo import client, plugin
from mmo_mtn_momo.settings import MtnMomoSettings

UGANDA = msgspec.convert(
    {"target_environment": "mtnuganda", "callback_delay": 0.01}, MtnMomoSettings, strict=False
)
GHANA = msgspec.structs.replace(
    UGANDA,
    target_environment="mtnghana",
    collection_subscription_key="9aa0c0115ec710c74fbd9e4bd0a1c2b3",
    collection_api_user="3e4f0d85-8c6b-4bad-8f94-5b0c6d7e8f90",
    collection_api_key="d4e5f60718293a4b5c6d7e8f90a1b2c3",
    disbursement_subscription_key="9aa0d15b0125e3e64c1f8a7b6c5d4e3f",
    disbursement_api_user="4f5a1e96-9d7c-4cbe-9a05-6c1d7e8f9a01",
    disbursement_api_key="e5f60718293a4b5c6d7e8f90a1b2c3d4",
    remittance_subscription_key="9aa07e3175ce9a2b4c6d8e0f1a2b3c4d",
    remittance_api_user="5a6b2fa7-ae8d-4dcf-8b16-7d2e8f9a0b12",
    remittance_api_key="f60718293a4b5c6d7e8f90a1b2c3d4e5",
)
ACCOUNTS = {"default": UGANDA, "ghana": GHANA}


@dataclass
class Account:
    name: str
    ctx: ProviderContext
    recorder: CallbackRecorder

    @property
    def settings(self) -> MtnMomoSettings:
        return self.ctx.settings  # type: ignore[return-value]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, dict[str, tuple[str, CallbackRecorder]]]]:
    recorders = {name: CallbackRecorder() for name in ACCOUNTS}
    app = plugin.simulator_app(UGANDA, ACCOUNTS)
    with (
        serve_app(app) as sim,
        serve_app(recorders["default"]) as first,
        serve_app(recorders["ghana"]) as second,
    ):
        yield (
            sim.url,
            {
                "default": (first.url, recorders["default"]),
                "ghana": (second.url, recorders["ghana"]),
            },
        )


@pytest.fixture
async def accounts(served) -> AsyncIterator[dict[str, Account]]:
    sim_url, receivers = served
    made = {
        name: Account(
            name,
            make_context(
                plugin.DECLARATION,
                ACCOUNTS[name],
                base_url=sim_url,
                public_url=receivers[name][0],
                account=name,
            ),
            receivers[name][1],
        )
        for name in ACCOUNTS
    }
    try:
        yield made
    finally:
        for account in made.values():
            await account.ctx.http.aclose()


def payment(msisdn: str, currency: str, **changes: Any) -> Payment:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "collection",
        "amount": Decimal("5000"),
        "currency": currency,
        "msisdn": msisdn,
        "reference": "ORDER-" + uuid.uuid4().hex[:8],
        "country": phones.region_of(msisdn),
    }
    values.update(changes)
    return Payment(**values)


async def paid(account: Account, msisdn: str, currency: str) -> Payment:
    p = payment(msisdn, currency)
    plugin.validate(account.ctx, p)
    ack = await plugin.initiate(account.ctx, p)
    p = msgspec.structs.replace(
        p,
        status="pending",
        provider_reference=ack.provider_reference,
        provider_data=ack.provider_data,
    )
    assert (await plugin.status(account.ctx, p)).status == "succeeded"
    return p


def basic(user: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


async def raw_token(
    sim_url: str, settings: MtnMomoSettings, key: str | None = None
) -> httpx.Response:
    sub, user, secret = settings.credentials("collection")
    async with httpx.AsyncClient(base_url=sim_url) as http:
        return await http.post(
            "/collection/token/",
            headers={"Authorization": basic(user, secret), "Ocp-Apim-Subscription-Key": key or sub},
        )


async def raw_read(sim_url: str, token: str, key: str, env: str, reference: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim_url) as http:
        return await http.get(
            f"/collection/v1_0/requesttopay/{reference}",
            headers={
                "Authorization": f"Bearer {token}",
                "Ocp-Apim-Subscription-Key": key,
                "X-Target-Environment": env,
            },
        )


async def ledger(sim_url: str, account: str) -> dict[str, dict]:
    async with httpx.AsyncClient(base_url=sim_url) as http:
        entries = (await http.get("/_simulator/ledger", params={"account": account})).json()
    return {e["id"]: e for e in entries["entries"]}


async def test_each_account_pays_in_its_own_environment(accounts, served) -> None:
    sim_url, _ = served
    ug = await paid(accounts["default"], "+256772345678", "UGX")
    gh = await paid(accounts["ghana"], "+233244345678", "GHS")
    uganda, ghana = await ledger(sim_url, "default"), await ledger(sim_url, "ghana")
    assert uganda[ug.id]["account"] == "default" and uganda[ug.id]["currency"] == "UGX"
    assert ghana[f"ghana:{gh.id}"]["account"] == "ghana"
    assert ghana[f"ghana:{gh.id}"]["currency"] == "GHS"
    assert ug.id not in {e.split(":")[-1] for e in ghana}
    assert gh.id not in uganda


async def test_a_token_of_one_account_never_reads_the_other(accounts, served) -> None:
    sim_url, _ = served
    ug = await paid(accounts["default"], "+256772345678", "UGX")
    ghana_token = (await raw_token(sim_url, GHANA)).json()["access_token"]
    ghana_key = GHANA.collection_subscription_key
    # its own key and environment: MoMo's answer for a reference it does not know
    crossed = await raw_read(sim_url, ghana_token, ghana_key, "mtnghana", ug.id)
    assert crossed.status_code == 404
    assert crossed.json() == {
        "code": "RESOURCE_NOT_FOUND",
        "message": "Requested resource was not found.",
    }
    # the other account's environment is forbidden to it
    wrong_env = await raw_read(sim_url, ghana_token, ghana_key, "mtnuganda", ug.id)
    assert wrong_env.status_code == 500
    assert wrong_env.json()["code"] == "NOT_ALLOWED_TARGET_ENVIRONMENT"
    # its token with the other account's subscription key: 401
    other_key = await raw_read(
        sim_url, ghana_token, UGANDA.collection_subscription_key, "mtnuganda", ug.id
    )
    assert other_key.status_code == 401
    # its API user on the other account's subscription: login_failed
    refused = await raw_token(sim_url, GHANA, key=UGANDA.collection_subscription_key)
    assert refused.status_code == 500 and refused.json() == {"error": "login_failed"}
    # and the owner still reads it
    uganda_token = (await raw_token(sim_url, UGANDA)).json()["access_token"]
    own = await raw_read(
        sim_url, uganda_token, UGANDA.collection_subscription_key, "mtnuganda", ug.id
    )
    assert own.status_code == 200 and own.json()["status"] == "SUCCESSFUL"


async def test_the_plugin_through_the_other_account_never_sees_it_paid(accounts) -> None:
    ug = await paid(accounts["default"], "+256772345678", "UGX")
    # the Ghana account asks about Uganda's payment: MoMo's 404, never "succeeded"
    assert (
        await client.get_transaction(accounts["ghana"].ctx, "collection", "requesttopay", ug.id)
        is None
    )
    report = await plugin.status(accounts["ghana"].ctx, ug)
    assert report.status == "pending"
    # its callback does not verify for the other account
    recorded = (await _wait(accounts["default"].recorder))[-1]
    with pytest.raises(CallbackVerificationFailed):
        await plugin.parse_callback(accounts["ghana"].ctx, to_inbound("mtn_momo", recorded))


async def test_a_refund_through_the_other_account_finds_no_collection(accounts) -> None:
    ug = await paid(accounts["default"], "+256772345678", "UGX")
    # as the Ghana account saw it, in its currency
    foreign = msgspec.structs.replace(ug, status="succeeded", currency="GHS", country="GH")
    with pytest.raises(OperatorDeclined) as declined:
        await plugin.reverse(accounts["ghana"].ctx, foreign, None, "refund", str(uuid.uuid4()))
    assert declined.value.provider_code == "TRANSACTION_NOT_FOUND"
    assert declined.value.failure_code == failures.NOT_RECEIVED


async def test_the_same_reference_id_in_two_accounts_is_two_resources(accounts, served) -> None:
    sim_url, _ = served
    shared = str(uuid.uuid4())
    ug = payment("+256772345678", "UGX", id=shared)
    gh = payment("+233244345678", "GHS", id=shared)
    await plugin.initiate(accounts["default"].ctx, ug)
    await plugin.initiate(accounts["ghana"].ctx, gh)
    assert (await ledger(sim_url, "default"))[shared]["currency"] == "UGX"
    assert (await ledger(sim_url, "ghana"))[f"ghana:{shared}"]["currency"] == "GHS"


async def test_one_account_alone_is_default() -> None:
    """simulator_app(settings) of an old caller: one account, `default`."""
    app = plugin.simulator_app(UGANDA)
    with serve_app(app) as sim:
        token = (await raw_token(sim.url, UGANDA)).json()["access_token"]
        assert token
        # the other account's subscription key is unknown to this simulator: APIM's 401
        refused = await raw_token(sim.url, GHANA)
        assert refused.status_code == 401 and refused.json()["statusCode"] == 401


async def _wait(recorder: CallbackRecorder) -> list:
    return await asyncio.to_thread(recorder.wait_for, 1, 10.0)

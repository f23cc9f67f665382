"""Two paybills (two Daraja apps) in one simulator: each app's credentials get its own
tokens, and one app's token on the other's shortcodes or transactions is refused as
Daraja refuses it."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import httpx
import mmo_mpesa.plugin as plugin
import msgspec
import pytest
from mmo_core.errors import ProviderAuthenticationError, UnknownToOperator
from mmo_core.registry import ProviderRegistry
from mmo_core.testing import CallbackRecorder, make_context, serve_app
from mmo_core.types import Payment
from mmo_mpesa import client
from mmo_mpesa.settings import MpesaSettings
from test_mpesa_conformance import SECOND_PAYBILL

FIRST = MpesaSettings(callback_delay=0.05, result_wait=0.3)
SECOND = msgspec.structs.replace(FIRST, **SECOND_PAYBILL)
ACCOUNTS = {"default": FIRST, "second": SECOND}


@pytest.fixture
def simulator():
    app = plugin.simulator_app(settings=FIRST, accounts=ACCOUNTS)
    with serve_app(app) as served:
        yield served.url


async def _token(http: httpx.AsyncClient, settings: MpesaSettings) -> dict[str, str]:
    answer = await http.get(
        "/oauth/v1/generate?grant_type=client_credentials",
        auth=(settings.consumer_key, settings.consumer_secret),
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _stk(settings: MpesaSettings, shortcode: str, phone: str = "254712345678") -> dict:
    stamp = client.timestamp()
    return {
        "BusinessShortCode": shortcode,
        "Password": client.password(shortcode, settings.passkey, stamp),
        "Timestamp": stamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 150,
        "PartyA": phone,
        "PartyB": shortcode,
        "PhoneNumber": phone,
        "CallBackURL": "http://127.0.0.1:9/cb",
        "AccountReference": "INV42",
    }


def _initiator(settings: MpesaSettings, command: str, **fields) -> dict:
    return {
        "Initiator": settings.initiator_name,
        "SecurityCredential": client.security_credential(settings),
        "CommandID": command,
        "ResultURL": "http://127.0.0.1:9/r",
        "QueueTimeOutURL": "http://127.0.0.1:9/t",
        "Remarks": "check",
        **fields,
    }


async def test_each_apps_credentials_get_its_tokens(simulator):
    async with httpx.AsyncClient(base_url=simulator) as http:
        first, second = await _token(http, FIRST), await _token(http, SECOND)
        assert first != second
        mixed = await http.get(
            "/oauth/v1/generate?grant_type=client_credentials",
            auth=(FIRST.consumer_key, SECOND.consumer_secret),
        )
        assert mixed.status_code == 400 and mixed.json()["errorCode"] == "400.008.01"
        # each app pushes on its own shortcode, with its own passkey
        for headers, settings, phone in (
            (first, FIRST, "254712345601"),
            (second, SECOND, "254712345602"),
        ):
            answer = await http.post(
                "/mpesa/stkpush/v1/processrequest",
                json=_stk(settings, settings.shortcode, phone),
                headers=headers,
            )
            assert answer.status_code == 200, answer.text
        ledger = (await http.get("/_simulator/ledger", params={"account": "second"})).json()
        assert [e["msisdn"] for e in ledger["entries"]] == ["254712345602"]
        assert {e["account"] for e in (await http.get("/_simulator/ledger")).json()["entries"]} == {
            "default",
            "second",
        }


async def test_one_apps_token_is_refused_on_the_others_shortcodes(simulator):
    """The token of the first app on the second's STK, B2C, C2B shortcodes: each product's
    own invalid-token answer, and nothing is recorded for either account."""
    async with httpx.AsyncClient(base_url=simulator) as http:
        first = await _token(http, FIRST)
        # the second app's shortcode, even with the second app's own passkey
        stk = await http.post(
            "/mpesa/stkpush/v1/processrequest",
            json=_stk(SECOND, SECOND.shortcode),
            headers=first,
        )
        assert stk.status_code == 404
        assert stk.json()["errorCode"] == "404.001.03"
        assert stk.json()["errorMessage"] == "Invalid Access Token"
        b2c = await http.post(
            "/mpesa/b2c/v3/paymentrequest",
            json={
                "OriginatorConversationID": str(uuid.uuid4()),
                "InitiatorName": SECOND.initiator_name,
                "SecurityCredential": client.security_credential(SECOND),
                "CommandID": "BusinessPayment",
                "Amount": 500,
                "PartyA": SECOND.b2c_shortcode,
                "PartyB": "254712345678",
                "Remarks": "payout",
                "QueueTimeOutURL": "http://127.0.0.1:9/t",
                "ResultURL": "http://127.0.0.1:9/r",
            },
            headers=first,
        )
        assert b2c.status_code == 401 and b2c.json()["errorCode"] == "401.002.01"
        status = await http.post(
            "/mpesa/transactionstatus/v1/query",
            json=_initiator(
                SECOND,
                "TransactionStatusQuery",
                PartyA=SECOND.b2c_shortcode,
                IdentifierType="4",
                TransactionID="SGF7Z9Y8X1",
            ),
            headers=first,
        )
        assert status.status_code == 400 and status.json()["errorCode"] == "400.003.01"
        balance = await http.post(
            "/mpesa/accountbalance/v1/query",
            json=_initiator(
                SECOND, "AccountBalance", PartyA=SECOND.b2c_shortcode, IdentifierType="4"
            ),
            headers=first,
        )
        assert balance.status_code == 401 and balance.json()["errorCode"] == "401.002.01"
        # C2B URLs are registered per shortcode, by the app the shortcode is linked to
        register = {
            "ShortCode": SECOND.c2b_shortcode,
            "ResponseType": "Completed",
            "ConfirmationURL": "http://127.0.0.1:9/c",
            "ValidationURL": "http://127.0.0.1:9/v",
        }
        refused = await http.post("/mpesa/c2b/v2/registerurl", json=register, headers=first)
        assert refused.status_code == 400 and refused.json()["errorCode"] == "400.003.01"
        second = await _token(http, SECOND)
        taken = await http.post("/mpesa/c2b/v2/registerurl", json=register, headers=second)
        assert taken.status_code == 200 and taken.json()["ResponseCode"] == "0"
        # the first app's own C2B shortcode has no URLs yet: simulating there is refused
        simulate = {
            "ShortCode": FIRST.c2b_shortcode,
            "CommandID": "CustomerPayBillOnline",
            "Amount": 10,
            "Msisdn": 254708374149,
            "BillRefNumber": "A1",
        }
        unregistered = await http.post("/mpesa/c2b/v2/simulate", json=simulate, headers=first)
        assert unregistered.json()["errorCode"] == "500.003.1001"
        ledger = (await http.get("/_simulator/ledger")).json()["entries"]
        assert ledger == []


async def test_one_apps_transaction_is_unknown_to_the_other(simulator):
    """The first app's push and B2C payment, asked about by the second app on its own
    shortcodes: Daraja has no such transaction for it."""
    async with httpx.AsyncClient(base_url=simulator) as http:
        first, second = await _token(http, FIRST), await _token(http, SECOND)
        push = await http.post(
            "/mpesa/stkpush/v1/processrequest",
            json=_stk(FIRST, FIRST.shortcode, "254712345611"),
            headers=first,
        )
        checkout = push.json()["CheckoutRequestID"]
        await asyncio.sleep(0.1)
        query = {**_stk(SECOND, SECOND.shortcode), "CheckoutRequestID": checkout}
        for key in ("TransactionType", "Amount", "PartyA", "PartyB", "PhoneNumber"):
            query.pop(key)
        answer = await http.post("/mpesa/stkpushquery/v1/query", json=query, headers=second)
        assert answer.status_code == 500
        assert answer.json()["errorMessage"] == "This transaction does not exist"
        own = {**query, **{k: v for k, v in _stk(FIRST, FIRST.shortcode).items() if k in query}}
        own["CheckoutRequestID"] = checkout
        answer = await http.post("/mpesa/stkpushquery/v1/query", json=own, headers=first)
        assert answer.status_code == 200 and answer.json()["ResultCode"] == "0"


async def test_the_plugin_across_two_paybills(simulator):
    """Through the hooks: the second paybill's status of the first's payment is
    UnknownToOperator, and a context whose shortcode is the other app's is refused."""
    recorder = CallbackRecorder()
    with serve_app(recorder) as receiver:
        first = make_context(plugin.DECLARATION, FIRST, base_url=simulator, public_url=receiver.url)
        second = make_context(
            plugin.DECLARATION,
            SECOND,
            base_url=simulator,
            public_url=receiver.url,
            account="second",
        )
        crossed = make_context(
            plugin.DECLARATION,
            msgspec.structs.replace(SECOND, shortcode=FIRST.shortcode, passkey=FIRST.passkey),
            base_url=simulator,
            public_url=receiver.url,
            account="second",
        )
        try:
            payment = Payment(
                id=str(uuid.uuid4()),
                type="collection",
                amount=Decimal(150),
                currency="KES",
                msisdn="+254712345622",
                reference="INV42",
                country="KE",
            )
            ack = await plugin.initiate(first, payment)
            pending = msgspec.structs.replace(
                payment, status="pending", provider_reference=ack.provider_reference
            )
            await asyncio.sleep(0.1)
            assert (await plugin.status(first, pending)).status == "succeeded"
            with pytest.raises(UnknownToOperator):
                await plugin.status(second, pending)
            with pytest.raises(ProviderAuthenticationError) as raised:
                await plugin.status(crossed, pending)
            assert raised.value.provider_code == "404.001.03"
        finally:
            for context in (first, second, crossed):
                await context.http.aclose()


def test_simulator_app_with_settings_alone_serves_one_account():
    """Older callers pass only `settings`: one account, `default`. (Through pluggy, a call
    without `accounts` also warns that the hookspec's argument is missing.)"""
    app = plugin.simulator_app(settings=FIRST)
    with serve_app(app) as served, httpx.Client(base_url=served.url) as http:
        ok = http.get(
            "/oauth/v1/generate?grant_type=client_credentials",
            auth=(FIRST.consumer_key, FIRST.consumer_secret),
        )
        assert ok.status_code == 200
        other = http.get(
            "/oauth/v1/generate?grant_type=client_credentials",
            auth=(SECOND.consumer_key, SECOND.consumer_secret),
        )
        assert other.status_code == 400
    provider = ProviderRegistry(environ={}).register(plugin)
    both = provider.call_sync("simulator_app", settings=FIRST, accounts=ACCOUNTS)
    assert set(both.state.simulation.books) == {"default", "second"}

"""Fidelity: third-party MoMo SDKs from PyPI, unchanged except for their base URL, run
against the simulator (`mmo_core.testing.run_sdk`, each SDK in its own venv).

- `mtnmomo` 3.0.1 (sparkplug/momoapi-python, MTN's community Python SDK; pins requests 2.21).
- `momo-openapi` 0.1.2 (requests; the 2026 client with sandbox provisioning).
- `mtnmomo-py` 0.1.0 (httpx; a typed client with sandbox provisioning).

Each test provisions a sandbox API user and key the way the SDK does it, gets a token,
sends a request to pay and reads its status with the SDK, then checks the simulator's
ledger and the callback. Where an SDK hard-codes its host, the test swaps the host by a
module attribute, never by editing the SDK's code.

What the SDKs showed (see README "Fidelity"):
- `mtnmomo` 3.0.1 refuses every MTN sandbox number before any HTTP call: its
  `validate_phone_number` parses numbers as Ugandan and requires the MTN carrier, so
  4673312345x and 56733123453 raise `ValidationError`. Its request to pay therefore runs
  with a Ugandan MTN number (any number not in MTN's table succeeds). Its provisioning
  (`mtnmomo.cli.generateToken`) hard-codes the old host `ericssonbasicapi2.azure-api.net`
  in a string literal: the test replaces the `requests` and `time` module attributes of
  `mtnmomo.cli` (host swap, no 5 s sleep). Its own `MomoApi.generateToken` posts to
  `/apikey` with the subscription key in the wrong role and is not used.
- `mtnmomo-py` 0.1.0 reads `reason` as `{code, message}` only (the older swagger): a
  FAILED status with the live API's string `reason` crashes its `TransactionResult`
  (`AttributeError`). The simulator keeps the live form; the failing number is checked
  with `momo-openapi`, which returns the raw body. It also uses two documented endpoints
  the simulator lacked, now simulated: `GET …/account/balance/{currency}` and
  `POST /collection/v1_0/requesttopay/{id}/deliverynotification`.
- No SDK showed the simulator refusing what MoMo accepts: `mtnmomo`'s `{}` token body and
  `Content-Type` on GETs, the missing `X-Target-Environment` on its token call, upper-case
  `MSISDN` paths and `momo-openapi`'s User-Agent all pass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from mmo_core.testing import CallbackRecorder, run_sdk, serve_app
from mmo_mtn_momo import plugin
from mmo_mtn_momo.settings import MtnMomoSettings

MTNMOMO = ("mtnmomo==3.0.1",)
MOMO_OPENAPI = ("momo-openapi==0.1.2",)
MTNMOMO_PY = ("mtnmomo-py==0.1.0",)

S = MtnMomoSettings()
COLLECTION_KEY = S.collection_subscription_key


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[CallbackRecorder, str]]:
    rec = CallbackRecorder()
    with serve_app(rec) as served:
        yield rec, served.url


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    settings = msgspec.convert({"callback_delay": 0.05}, MtnMomoSettings, strict=False)
    with serve_app(plugin.simulator_app(settings)) as served:
        yield served.url


def ledger(sim_url: str) -> dict[str, dict]:
    entries = httpx.get(f"{sim_url}/_simulator/ledger").json()["entries"]
    return {e["id"]: e for e in entries}


def callbacks_for(rec: CallbackRecorder, path: str, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + 5
    while True:
        found = [r for r in list(rec.requests) if r.path == path]
        if len(found) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return [{"method": r.method, "body": json.loads(r.body)} for r in found]


def api_user(sim_url: str, user: str) -> dict:
    response = httpx.get(
        f"{sim_url}/v1_0/apiuser/{user}", headers={"Ocp-Apim-Subscription-Key": COLLECTION_KEY}
    )
    assert response.status_code == 200
    return response.json()


def test_mtnmomo_provisions_and_requests_to_pay(sim_url, recorder) -> None:
    rec, public = recorder
    script = """
        import ast, json, os, types
        import requests
        import mtnmomo.cli as cli
        from mtnmomo.collection import Collection
        from mtnmomo.errors import APIError, ValidationError

        BASE = os.environ["SIM_URL"]
        LEGACY = "https://ericssonbasicapi2.azure-api.net"

        class HostSwap:
            # the SDK's hard-coded sandbox host, pointed at the simulator
            def post(self, url, **kwargs):
                return requests.post(url.replace(LEGACY, BASE), **kwargs)

        cli.requests = HostSwap()
        cli.time = types.SimpleNamespace(sleep=lambda seconds: None)
        said = cli.generateToken("127.0.0.1", os.environ["SUBSCRIPTION_KEY"])
        creds = ast.literal_eval(said.split(" : ", 1)[1])

        coll = Collection({
            "BASE_URL": BASE,
            "ENVIRONMENT": "sandbox",
            "COLLECTION_USER_ID": creds["UserId"],
            "COLLECTION_API_SECRET": creds["APISecret"],
            "COLLECTION_PRIMARY_KEY": os.environ["SUBSCRIPTION_KEY"],
        })
        ref = coll.requestToPay(
            mobile="256772123456", amount="600", external_id="sdk-mtnmomo-1",
            payee_note="Order 1", payer_message="Order 1", currency="EUR",
            callback_url=os.environ["CALLBACK"],
        )["transaction_ref"]
        status = coll.getTransactionStatus(ref)
        balance = coll.getBalance()
        try:
            coll.requestToPay(mobile="46733123451", amount="600", external_id="sdk-x")
            sandbox_number = "accepted"
        except ValidationError as exc:
            sandbox_number = str(exc)
        try:
            coll.requestToPay(mobile="256772123456", amount="600", external_id="sdk-y",
                              currency="UGX")
            currency = None
        except APIError as exc:
            currency = [exc.http_status, exc.http_body]
        print(json.dumps({"user": creds["UserId"], "ref": ref, "status": status,
                          "balance": balance, "sandbox_number": sandbox_number,
                          "currency": currency}))
    """
    out = run_sdk(
        MTNMOMO,
        script,
        env={
            "SIM_URL": sim_url,
            "SUBSCRIPTION_KEY": COLLECTION_KEY,
            "CALLBACK": f"{public}/cb/mtnmomo",
        },
    )
    # provisioning: the API user exists with the SDK's providerCallbackHost
    assert api_user(sim_url, out["user"]) == {
        "providerCallbackHost": "127.0.0.1",
        "targetEnvironment": "sandbox",
    }
    status = out["status"]
    assert status["status"] == "SUCCESSFUL"
    assert status["amount"] == "600" and status["currency"] == "EUR"
    assert status["payer"] == {"partyIdType": "MSISDN", "partyId": "256772123456"}
    assert status["externalId"] == "sdk-mtnmomo-1"
    assert status["financialTransactionId"].isdigit() and "reason" not in status
    assert out["balance"]["currency"] == "EUR" and out["balance"]["availableBalance"]
    # the SDK refuses MTN's sandbox numbers itself (Ugandan MTN numbers only)
    assert "Invalid Phone number" in out["sandbox_number"]
    # the simulator's INVALID_CURRENCY reaches the SDK as MoMo's 500 {code, message}
    assert out["currency"] == [
        500,
        {"code": "INVALID_CURRENCY", "message": "Currency not supported."},
    ]
    entry = ledger(sim_url)[out["ref"]]
    assert entry["status"] == "SUCCESSFUL" and entry["kind"] == "requesttopay"
    assert entry["msisdn"] == "256772123456" and entry["amount"] == "600"
    assert entry["reference"] == "sdk-mtnmomo-1"
    assert not any(e.get("reference") in ("sdk-x", "sdk-y") for e in ledger(sim_url).values())
    # the callback went to the SDK's X-Callback-Url: the status body, no reference id
    [callback] = callbacks_for(rec, "/cb/mtnmomo")
    assert callback["method"] == "PUT"
    assert callback["body"]["status"] == "SUCCESSFUL"
    assert "referenceId" not in callback["body"]


def test_momo_openapi_provisions_and_checks_sandbox_numbers(sim_url, recorder) -> None:
    rec, public = recorder
    script = """
        import json, os
        import momo_openapi.config, momo_openapi.sandbox
        from momo_openapi import Collection, MomoAPIError

        BASE = os.environ["SIM_URL"]
        # the SDK hard-codes the sandbox host as a module constant
        momo_openapi.sandbox.SANDBOX_URL = BASE
        momo_openapi.config.SANDBOX_URL = BASE
        coll = Collection.for_sandbox(
            os.environ["SUBSCRIPTION_KEY"], callback_host="127.0.0.1",
            callback_url=os.environ["CALLBACK"],
        )
        out = {"user": coll.config.user_id, "refs": {}, "status": {}}
        for number in ("56733123453", "46733123451", "46733123453", "46733123455"):
            ref = coll.request_to_pay("1500", number, "sdk-openapi-" + number,
                                      payer_message="Order", payee_note="Order")
            out["refs"][number] = ref
            out["status"][number] = coll.get_transaction_status(ref)
        out["balance"] = coll.get_balance()

        def error(call):
            try:
                call()
            except MomoAPIError as exc:
                return [exc.status_code, exc.code]
            return None

        first = out["refs"]["56733123453"]
        out["duplicate"] = error(lambda: coll.request_to_pay(
            "1500", "56733123453", "dup", reference_id=first))
        out["unknown"] = error(lambda: coll.get_transaction_status(
            "0b9a7d3c-1f2e-4a5b-8c6d-7e8f9a0b1c2d"))
        out["bad_text"] = error(lambda: coll.request_to_pay(
            "1500", "56733123453", "txt", payer_message="Tom & Jerry"))
        print(json.dumps(out))
    """
    out = run_sdk(
        MOMO_OPENAPI,
        script,
        env={
            "SIM_URL": sim_url,
            "SUBSCRIPTION_KEY": COLLECTION_KEY,
            "CALLBACK": f"{public}/cb/openapi",
        },
    )
    assert api_user(sim_url, out["user"])["providerCallbackHost"] == "127.0.0.1"
    status = out["status"]
    assert status["56733123453"]["status"] == "SUCCESSFUL"
    assert status["56733123453"]["financialTransactionId"].isdigit()
    # MTN's documented sandbox numbers that fail, as the live API answers them
    assert status["46733123451"]["status"] == "FAILED"
    assert status["46733123451"]["reason"] == "APPROVAL_REJECTED"
    assert "financialTransactionId" not in status["46733123451"]
    assert status["46733123455"]["status"] == "FAILED"
    assert status["46733123455"]["reason"] == "PAYER_NOT_FOUND"
    # "ongoing": pending first, with neither financialTransactionId nor reason
    assert status["46733123453"]["status"] == "PENDING"
    assert not {"financialTransactionId", "reason"} & set(status["46733123453"])
    assert out["balance"]["currency"] == "EUR"
    assert out["duplicate"] == [409, "RESOURCE_ALREADY_EXIST"]
    assert out["unknown"] == [404, "RESOURCE_NOT_FOUND"]
    assert out["bad_text"] == [400, "REQUEST_REJECTED"]
    entries = ledger(sim_url)
    expected = {
        "56733123453": "SUCCESSFUL",
        "46733123451": "FAILED",
        "46733123453": "PENDING",
        "46733123455": "FAILED",
    }
    for number, state in expected.items():
        entry = entries[out["refs"][number]]
        assert entry["status"] == state and entry["msisdn"] == number
        assert entry["amount"] == "1500" and entry["currency"] == "EUR"
    assert entries[out["refs"]["46733123451"]]["reason"] == "APPROVAL_REJECTED"
    assert not any(e.get("reference") in ("dup", "txt") for e in entries.values())
    # callbacks for the final ones (the ongoing number answers after 30 s)
    bodies = callbacks_for(rec, "/cb/openapi", 3)
    assert {b["body"]["status"] for b in bodies} >= {"SUCCESSFUL", "FAILED"}


def test_mtnmomo_py_provisions_and_requests_to_pay(sim_url) -> None:
    script = """
        import json, os
        from mtnmomo import MoMoClient, MoMoConfig, MoMoConflictError, Party, ProductCredentials

        BASE = os.environ["SIM_URL"]
        KEY = os.environ["SUBSCRIPTION_KEY"]
        bootstrap = MoMoClient(MoMoConfig(
            collection=ProductCredentials(KEY, "", ""), base_url=BASE))
        user = bootstrap.sandbox.create_api_user("127.0.0.1")
        api_key = bootstrap.sandbox.create_api_key(user)
        read = bootstrap.sandbox.get_api_user(user)
        try:
            bootstrap.sandbox.create_api_user("127.0.0.1", reference_id=user)
            again = None
        except MoMoConflictError as exc:
            again = [exc.status_code, exc.code]
        client = MoMoClient(MoMoConfig(
            collection=ProductCredentials(KEY, user, api_key), base_url=BASE))
        token = client.collection.create_access_token()
        payload = {"amount": "250", "currency": "EUR", "externalId": "sdk-py-1",
                   "payer": Party("MSISDN", "56733123453"),
                   "payerMessage": "Order", "payeeNote": "Order"}
        ref = client.collection.request_to_pay(payload)
        result = client.collection.get_request_to_pay_status(ref)
        active = client.collection.validate_account_holder_status("msisdn", "46733123450")
        upper = client.collection.validate_account_holder_status("MSISDN", "56733123453")
        balance = client.collection.get_account_balance("EUR")
        client.collection.send_request_to_pay_delivery_notification(ref, "Your order shipped")
        print(json.dumps({
            "user": user, "key": api_key, "again": again,
            "host": read.provider_callback_host, "env": read.target_environment,
            "token": [token.token_type, token.expires_in], "ref": ref,
            "status": result.status, "amount": result.amount,
            "payer": result.payer.party_id, "ftid": result.financial_transaction_id,
            "active": active, "upper": upper, "balance": [balance.currency, balance.available_balance],
        }))
    """
    out = run_sdk(MTNMOMO_PY, script, env={"SIM_URL": sim_url, "SUBSCRIPTION_KEY": COLLECTION_KEY})
    assert out["host"] == "127.0.0.1" and out["env"] == "sandbox"
    assert len(out["key"]) == 32 and int(out["key"], 16) >= 0
    assert out["again"] == [409, "RESOURCE_ALREADY_EXIST"]
    assert out["token"] == ["access_token", 3600]
    assert out["status"] == "SUCCESSFUL" and out["amount"] == "250"
    assert out["payer"] == "56733123453" and out["ftid"].isdigit()
    assert out["active"] is False  # MTN's table: 46733123450 is not found
    assert out["upper"] is True  # the id type as the SDK spells it
    # documented endpoints this SDK uses and the simulator first lacked
    assert out["balance"][0] == "EUR" and out["balance"][1]
    entry = ledger(sim_url)[out["ref"]]
    assert entry["status"] == "SUCCESSFUL" and entry["reference"] == "sdk-py-1"
    assert entry["notification"] == "Your order shipped"

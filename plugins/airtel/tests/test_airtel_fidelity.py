"""Fidelity: Python Airtel SDKs from PyPI, unchanged but for their base URL, against the simulator.

Each SDK runs in its own venv (`mmo_core.testing.run_sdk`) with the simulator served on
loopback; the tests assert what the SDK returns AND what the simulator's ledger holds.

- `airtelmoney-py==1.0.6` (Uganda; `base_url=`): token, signed v2 USSD push
  (`/merchant/v2/payments/` with `x-signature`/`x-key`, key from `/v1/rsa/encryption-keys`),
  enquiry, refund, v2 disbursement with a PKCS#1 v1.5 PIN and its enquiry, KYC, balance.
- `mtn-momo-client[airtel]==2.0.1` (`momo_api.airtel`, `AirtelApi(base_url)`): token, v1
  push, enquiry, v1 disbursement, balance.
- `pyairtel==0.1.1` (Tanzania; base URL hard-coded in `pyairtel.client._SANDBOX_URL`, set
  as a module attribute): token, enquiry and refund work; its push cannot succeed against
  Airtel: it sends `msisdn` as the JSON number `255XXXXXXXXX` (country code included),
  which Airtel documents as refused (notes section 13.2, "Do not send country code in
  msisdn"): the simulator answers ESB000033 and records nothing.
- `airtel==0.0.1` ships an empty module (`airtel/core.py`, 0 bytes): nothing to run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator import create_simulator
from mmo_core.testing import serve_app
from mmo_core.testing.sdks import run_sdk

AIRTELMONEY_PY = ("airtelmoney-py==1.0.6",)
MOMO_CLIENT = ("mtn-momo-client[airtel]==2.0.1",)
PYAIRTEL = ("pyairtel==0.1.1",)
AIRTEL = ("airtel==0.0.1",)

CLIENT_ID = "airtel-sandbox-client"
CLIENT_SECRET = "airtel-sandbox-secret"


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    # No callback URL: the SDKs poll; callbacks are covered by the host tests.
    with serve_app(create_simulator(AirtelSettings(callback_delay=0.01))) as served:
        yield served.url


def ledger(url: str) -> dict[str, dict[str, Any]]:
    entries = httpx.get(url + "/_simulator/ledger").json()["entries"]
    return {entry["id"]: entry for entry in entries}


def ids(*names: str) -> dict[str, str]:
    return {name: uuid.uuid4().hex for name in names}


def direct_push(url: str, msisdn: str, tx_id: str, country: str, currency: str) -> None:
    """A USSD push made without any SDK (for SDKs whose own push cannot succeed)."""
    with httpx.Client(base_url=url) as http:
        token = http.post(
            "/auth/oauth2/token",
            json={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "grant_type": "client_credentials",
            },
        ).json()["access_token"]
        answer = http.post(
            "/merchant/v1/payments/",
            headers={
                "Authorization": f"Bearer {token}",
                "X-Country": country,
                "X-Currency": currency,
            },
            json={
                "reference": "Order1042",
                "subscriber": {"country": country, "currency": currency, "msisdn": msisdn},
                "transaction": {
                    "amount": 5000,
                    "country": country,
                    "currency": currency,
                    "id": tx_id,
                },
            },
        ).json()
    assert answer["status"]["response_code"] == "DP00800001006"


AIRTELMONEY_SCRIPT = """
import json, os
from airtelmoney import AirtelMoney, AirtelAuthError

env = os.environ
url = env["SIM_URL"]
out = {}
try:
    AirtelMoney("wrong-client", "wrong-secret", base_url=url).get_access_token()
except AirtelAuthError as exc:
    out["bad_client"] = str(exc)
client = AirtelMoney(env["CLIENT_ID"], env["CLIENT_SECRET"], base_url=url)
out["token"] = bool(client.get_access_token())
col = client.collection
out["push"] = col.payment(
    reference="Order1042", msisdn="752605678", amount=5000, transaction_id=env["OK"]
)
out["enquiry"] = col.enquiry(env["OK"])
out["push_fail"] = col.payment(
    reference="Order1043", msisdn="752600001", amount=2500, transaction_id=env["FAIL"]
)
out["enquiry_fail"] = col.enquiry(env["FAIL"])
out["duplicate"] = col.payment(
    reference="Order1042", msisdn="752605678", amount=5000, transaction_id=env["OK"]
)
out["unsigned"] = col.payment(
    reference="Order1044", msisdn="752605678", amount=700, transaction_id=env["UNSIGNED"],
    sign=False,
)
out["unknown"] = col.enquiry(env["UNKNOWN"])
out["refund"] = col.refund(out["enquiry"]["data"]["transaction"]["airtel_money_id"])
out["payout"] = client.disbursement.payment(
    msisdn="752605678", amount=1500, reference="Payout42", pin="1234",
    transaction_id=env["PAYOUT"],
)
out["payout_enquiry"] = client.disbursement.enquiry(env["PAYOUT"])
out["kyc"] = client.kyc.user_enquiry("752605678")
out["balance"] = client.account.balance()
print(json.dumps(out))
"""


def test_airtelmoney_py_collection_enquiry_refund_payout(simulator: str) -> None:
    """airtelmoney-py 1.0.6 signs its v2 push with the key it fetched from the simulator;
    the simulator verifies `x-signature` and the whole flow goes through."""
    tx = ids("OK", "FAIL", "UNSIGNED", "UNKNOWN", "PAYOUT")
    env = {"SIM_URL": simulator, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, **tx}
    out = run_sdk(AIRTELMONEY_PY, AIRTELMONEY_SCRIPT, env=env)

    assert out["bad_client"] == "Invalid client authentication"
    assert out["token"] is True
    assert out["push"]["status"]["response_code"] == "DP00800001006"
    assert out["push"]["status"]["success"] is True
    assert out["push"]["data"]["transaction"] == {"id": tx["OK"], "status": "SUCCESS"}
    enquiry = out["enquiry"]["data"]["transaction"]
    assert enquiry["status"] == "TS" and enquiry["id"] == tx["OK"]
    assert out["enquiry"]["status"]["response_code"] == "DP00800001001"
    # shared test number 0001: not enough balance, in Airtel's code
    failed = out["enquiry_fail"]
    assert failed["data"]["transaction"]["status"] == "TF"
    assert failed["status"]["success"] is False
    assert failed["status"]["response_code"] == "DP00800001007"
    assert out["duplicate"]["status"]["result_code"] == "ESB000041"
    assert out["duplicate"]["status"]["success"] is False
    # the SDK's sign=False on the signed path is refused, as Airtel documents
    assert out["unsigned"]["status"]["response_code"] == "DP00800001026"
    assert out["unsigned"]["status"]["success"] is False
    assert out["unknown"]["status"]["result_code"] == "ESB000045"
    assert out["unknown"]["status"]["success"] is False
    assert out["refund"]["data"]["transaction"]["status"] == "SUCCESS"
    assert out["refund"]["data"]["transaction"]["airtel_money_id"] == enquiry["airtel_money_id"]
    assert out["payout"]["status"]["response_code"] == "DP00900001006"
    assert out["payout"]["data"]["transaction"]["status"] == "TIP"
    assert out["payout_enquiry"]["data"]["transaction"]["status"] == "TS"
    assert out["kyc"]["status"]["response_code"] == "DP02200000001"
    assert out["kyc"]["data"]["msisdn"] == "752605678"
    assert out["balance"]["data"]["currency"] == "UGX"

    book = ledger(simulator)
    assert book[tx["OK"]]["signed"] is True
    assert book[tx["OK"]]["amount"] == "5000"
    assert book[tx["OK"]]["airtel_money_id"] == enquiry["airtel_money_id"]
    assert book[tx["OK"]]["status"] == "REFUNDED"
    assert book[tx["FAIL"]]["status"] == "TF"
    assert book[tx["FAIL"]]["response_code"] == "DP00800001007"
    assert tx["UNSIGNED"] not in book
    assert tx["UNKNOWN"] not in book
    assert book[tx["PAYOUT"]]["kind"] == "disbursement"
    assert book[tx["PAYOUT"]]["status"] == "TS"
    assert book[tx["PAYOUT"]]["amount"] == "1500"


MOMO_SCRIPT = """
import json, os
from momo_api import AirtelApi, AirtelConfig, encrypt_airtel_pin
from momo_api.exceptions import MomoException

env = os.environ
api = AirtelApi(env["SIM_URL"])
config = dict(client_id=env["CLIENT_ID"], client_secret=env["CLIENT_SECRET"],
              country="UG", currency="UGX")
col = api.get_collection(AirtelConfig.collection(**config))
out = {"token": bool(col.get_access_token())}
out["push"] = col.request_to_pay("5000", "+256752605678", "Order1042", transaction_id=env["OK"])
tx = col.get_payment_status(env["OK"])
out["enquiry"] = {"id": tx.id, "status": tx.status, "airtel_money_id": tx.airtel_money_id,
                  "successful": tx.is_successful()}
out["push_fail"] = col.request_to_pay("2500", "256752601032", "Order1043",
                                      transaction_id=env["FAIL"])
try:
    col.get_payment_status(env["FAIL"])
except MomoException as exc:
    out["enquiry_fail"] = {"type": type(exc).__name__, "code": exc.code,
                           "message": exc.message}
try:
    col.request_to_pay("5000", "+256752605678", "Order1042", transaction_id=env["OK"])
except MomoException as exc:
    out["duplicate"] = {"type": type(exc).__name__, "code": exc.code}
bal = col.get_balance()
out["balance"] = {"currency": bal.currency}
key = col._send("GET", env["SIM_URL"] + "/v1/rsa/encryption-keys",
                headers=col._airtel_headers(col.get_access_token())).json()["data"]["key"]
dis = api.get_disbursement(AirtelConfig.disbursement(
    encrypted_pin=encrypt_airtel_pin("1234", key), **config))
out["payout"] = dis.transfer("1500", "+256752605678", "Payout42", transaction_id=env["PAYOUT"])
payout = dis.get_transfer_status(env["PAYOUT"])
out["payout_enquiry"] = {"status": payout.status, "successful": payout.is_successful()}
print(json.dumps(out))
"""


def test_mtn_momo_client_airtel_collection_and_enquiry(simulator: str) -> None:
    """mtn-momo-client 2.0.1 (`momo_api.airtel`): v1 push with a float amount (5000.0),
    national MSISDN, enquiry; a refusal inside an HTTP 200 raises, as the SDK intends."""
    tx = {name: str(uuid.uuid4()) for name in ("OK", "FAIL", "PAYOUT")}
    env = {"SIM_URL": simulator, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, **tx}
    out = run_sdk(MOMO_CLIENT, MOMO_SCRIPT, env=env)

    assert out["token"] is True
    assert out["push"] == tx["OK"]
    assert out["enquiry"]["status"] == "TS"
    assert out["enquiry"]["successful"] is True
    assert out["enquiry"]["id"] == tx["OK"]
    # shared test number 1032: refused by the payer, DP00800001008 -> TF, success=false
    assert out["push_fail"] == tx["FAIL"]
    assert out["enquiry_fail"]["code"] == "ESB000011"
    assert out["enquiry_fail"]["message"] == "FAILED"
    assert out["duplicate"]["code"] == "ESB000041"
    assert out["balance"]["currency"] == "UGX"
    assert out["payout"] == tx["PAYOUT"]
    assert out["payout_enquiry"] == {"status": "TS", "successful": True}

    book = ledger(simulator)
    assert book[tx["OK"]]["status"] == "TS"
    assert book[tx["OK"]]["amount"] == "5000.0"
    assert book[tx["OK"]]["signed"] is False
    assert book[tx["OK"]]["airtel_money_id"] == out["enquiry"]["airtel_money_id"]
    assert book[tx["FAIL"]]["status"] == "TF"
    assert book[tx["FAIL"]]["response_code"] == "DP00800001008"
    assert book[tx["PAYOUT"]]["amount"] == "1500"
    assert book[tx["PAYOUT"]]["status"] == "TS"


PYAIRTEL_SCRIPT = """
import json, os
import pyairtel.client
from pyairtel import AirtelError, AirtelMoney

env = os.environ
pyairtel.client._SANDBOX_URL = env["SIM_URL"]  # its only base URL setting
out = {}
try:
    AirtelMoney(client_id="wrong", client_secret="wrong").collect(
        phone="+255752605678", amount=5000, reference="Order1042")
except AirtelError as exc:  # a CollectionError wrapping its AuthenticationError
    out["bad_client"] = "invalid_client" in str(exc)
airtel = AirtelMoney(client_id=env["CLIENT_ID"], client_secret=env["CLIENT_SECRET"])
push = airtel.collect(phone="+255752605678", amount=5000, reference="Order1042",
                      transaction_id=env["PUSH"])
out["push"] = {"status": push.status, "initiated": push.is_initiated, "raw": push.raw}
for name in ("OK", "FAIL", "UNKNOWN"):
    st = airtel.get_collection_status(env[name])
    out[name] = {"status": st.status, "successful": st.is_successful, "failed": st.is_failed,
                 "pending": st.is_pending, "airtel_money_id": st.airtel_money_id,
                 "raw": st.raw}
refund = airtel.refund(out["OK"]["airtel_money_id"])
out["refund"] = {"status": refund.status, "successful": refund.is_successful,
                 "raw": refund.raw}
print(json.dumps(out))
"""


def test_pyairtel_enquiry_and_refund_push_refused(simulator: str) -> None:
    """pyairtel 0.1.1 (Tanzania) is broken against Airtel for the push: `normalise_phone`
    forces `255XXXXXXXXX` and the payload sends it as an int, with the country code Airtel
    says not to send; the simulator answers ESB000033 (HTTP 200, success=false) and
    records nothing; the SDK's `is_initiated` is False. Its enquiry works (on pushes made
    without it); its refund goes through, though its `is_successful` reads
    `status.response_code`, which Airtel's refund answer does not carry (notes section 6,
    S1/S4), so it says False: another SDK bug."""
    tx = ids("PUSH", "OK", "FAIL", "UNKNOWN")
    direct_push(simulator, "752605678", tx["OK"], "TZ", "TZS")
    direct_push(simulator, "752601037", tx["FAIL"], "TZ", "TZS")
    env = {"SIM_URL": simulator, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET, **tx}
    out = run_sdk(PYAIRTEL, PYAIRTEL_SCRIPT, env=env)

    assert out["bad_client"] is True
    assert out["push"]["initiated"] is False
    assert out["push"]["raw"]["status"]["result_code"] == "ESB000033"
    assert out["push"]["raw"]["status"]["success"] is False
    assert out["OK"]["status"] == "TS" and out["OK"]["successful"] is True
    assert out["OK"]["airtel_money_id"].startswith("MP")
    # shared test number 1037: timed out, DP00800001024
    assert out["FAIL"]["status"] == "TF" and out["FAIL"]["failed"] is True
    assert out["FAIL"]["raw"]["status"]["response_code"] == "DP00800001024"
    assert out["UNKNOWN"]["status"] == "UNKNOWN"
    assert out["UNKNOWN"]["raw"]["status"]["result_code"] == "ESB000045"
    assert out["refund"]["raw"]["data"]["transaction"]["status"] == "SUCCESS"
    assert out["refund"]["successful"] is False  # the SDK's bug, see the docstring

    book = ledger(simulator)
    assert tx["PUSH"] not in book
    assert book[tx["OK"]]["status"] == "REFUNDED"
    assert book[tx["OK"]]["currency"] == "TZS"
    assert book[tx["FAIL"]]["response_code"] == "DP00800001024"


def test_airtel_0_0_1_ships_no_code() -> None:
    """`airtel==0.0.1` (rivo2302/airtel_money_api) installs an empty `airtel/core.py`:
    there is no client to point at the simulator."""
    out = run_sdk(
        AIRTEL,
        "import json, airtel.core as m; "
        "print(json.dumps([n for n in dir(m) if not n.startswith('__')]))",
    )
    assert out == []

"""Fidelity: public Python M-Pesa SDKs, unchanged but for their base URL, against the simulator.

Each SDK runs in its own cached venv (`mmo_core.testing.run_sdk`) with the settings' sandbox
defaults (shortcode 174379, the public sandbox passkey, the simulator's consumer key and
secret): it gets a token, sends STK pushes for the documented sandbox MSISDN 254708374149 and
for shared test numbers that fail (…0001 insufficient funds -> ResultCode 1, …1032 cancelled
-> 1032), and queries them. We assert on what the SDK returns and on the simulator's ledger.

SDKs checked (see plugins/mpesa/README.md, "Fidelity"):
- mpesakit 2.2.0 (RafaelJohn9/mpesakit, the most complete and maintained one): base URL is the
  `http_client.base_url` attribute; its callback parser also reads the simulator's callbacks.
- mpesa-sdk 2.0.0 (the maintained successor of pympesa): base URL is the module constant
  `mpesa_sdk.urls.SANDBOX_BASE_URL`.
- pympesa 1.0.1 (the original, 2017): URLs in the module dict `pympesa.urls.URL`. Its
  `encode_password` concatenates `str`s and passes them to `base64.b64encode`, which only works
  on Python 2: on Python 3 it must be given bytes (done here); its timestamp is the machine's
  local time, not Nairobi time (the simulator does not check a timestamp's freshness).
- python-daraja 1.2.4: cannot complete a push against Daraja (a form body under a JSON
  Content-Type); its test shows what works (the token) and the envelope the push gets.
"""

from __future__ import annotations

import json

import httpx
import pytest
from mmo_core.testing import run_sdk, serve_app
from mmo_mpesa.settings import MpesaSettings
from mmo_mpesa.simulator import create_simulator

DELAY = 1.0  # long enough for the first query to find the prompt still open
SANDBOX_MSISDN = "254708374149"
INSUFFICIENT = "254712340001"
CANCELLED = "254712341032"

# Shared by every script: the configuration, a CallBackURL receiver on loopback (Daraja's
# callbacks, kept for the SDK's own parser), and a poll of STK query while "being processed".
PRELUDE = """
import json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = json.loads(os.environ["FIDELITY_CONFIG"])
BASE = CONFIG["base_url"]
KEY, SECRET = CONFIG["consumer_key"], CONFIG["consumer_secret"]
SHORTCODE, PASSKEY, PHONES = CONFIG["shortcode"], CONFIG["passkey"], CONFIG["phones"]
CALLBACKS = []

class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        CALLBACKS.append({"path": self.path, "type": self.headers.get("Content-Type"),
                          "body": json.loads(body)})
        answer = b'{"ResultCode": 0, "ResultDesc": "Accepted"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass

SERVER = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=SERVER.serve_forever, daemon=True).start()
CALLBACK = f"http://127.0.0.1:{SERVER.server_address[1]}/stk/callback"

def wait_callbacks(count, deadline=5.0):
    end = time.monotonic() + deadline
    while len(CALLBACKS) < count and time.monotonic() < end:
        time.sleep(0.05)
    return CALLBACKS

def poll(query, is_pending, deadline=8.0):
    first_error = None
    end = time.monotonic() + deadline
    while True:
        try:
            return query(), first_error
        except Exception as exc:
            if not is_pending(exc) or time.monotonic() > end:
                raise
            first_error = first_error or exc
            time.sleep(0.1)
"""


@pytest.fixture(scope="module")
def daraja():
    settings = MpesaSettings(callback_delay=DELAY)
    with serve_app(create_simulator(settings)) as simulator:
        yield settings, simulator.url


def _config(daraja, phones: list[str]) -> dict[str, str]:
    settings, url = daraja
    return {
        "FIDELITY_CONFIG": json.dumps(
            {
                "base_url": url,
                "consumer_key": settings.consumer_key,
                "consumer_secret": settings.consumer_secret,
                "shortcode": settings.shortcode,
                "passkey": settings.passkey,
                "phones": phones,
            }
        )
    }


def _ledger(url: str, checkout: str) -> dict:
    entries = httpx.get(f"{url}/_simulator/ledger").json()["entries"]
    return next(e for e in entries if e["id"] == checkout)


def _assert_outcomes(daraja, results: dict, expected: dict[str, str], *, amount: int) -> None:
    """The SDK saw ResponseCode 0 and the query's ResultCode; the ledger agrees."""
    _, url = daraja
    for phone, code in expected.items():
        push, query = results[phone]["push"], results[phone]["query"]
        assert str(push["ResponseCode"]) == "0"
        assert push["CheckoutRequestID"].startswith("ws_CO_")
        assert push["MerchantRequestID"]
        assert push["CustomerMessage"] == "Success. Request accepted for processing"
        assert query["CheckoutRequestID"] == push["CheckoutRequestID"]
        assert query["MerchantRequestID"] == push["MerchantRequestID"]
        assert str(query["ResponseCode"]) == "0"
        assert str(query["ResultCode"]) == code
        entry = _ledger(url, push["CheckoutRequestID"])
        assert entry["msisdn"] == phone and entry["amount"] == amount
        assert entry["result_code"] == code
        assert entry["status"] == ("completed" if code == "0" else "failed")


MPESAKIT = (
    PRELUDE
    + """
from mpesakit import MpesaClient
from mpesakit.errors import MpesaApiException

client = MpesaClient(consumer_key=KEY, consumer_secret=SECRET, environment="sandbox")
client.http_client.base_url = BASE  # the one change: the SDK's base URL
token = client.token_manager.get_token()

results = {}
for phone in reversed(PHONES):  # the first one queried is the last one pushed
    answer = client.stk_push(
        business_short_code=int(SHORTCODE), transaction_type="CustomerPayBillOnline",
        amount=10, party_a=phone, party_b=SHORTCODE, phone_number=phone,
        callback_url=CALLBACK, account_reference="INV42", transaction_desc="Order 42",
        passkey=PASSKEY,
    )
    results[phone] = {"push": answer.model_dump(mode="json")}
for phone in PHONES:
    checkout = results[phone]["push"]["CheckoutRequestID"]
    answer, pending = poll(
        lambda: client.stk_query(
            business_short_code=int(SHORTCODE), checkout_request_id=checkout, passkey=PASSKEY
        ),
        lambda exc: isinstance(exc, MpesaApiException)
        and "being processed" in (exc.error.error_message or ""),
    )
    results[phone]["query"] = answer.model_dump(mode="json")
    results[phone]["successful"] = answer.is_successful()
    results[phone]["pending"] = pending and {
        "code": pending.error.error_code, "status": pending.error.status_code,
        "raw": pending.error.raw_response,
    }
# The simulator's callbacks, read by the SDK's own parser.
callbacks = []
for received in wait_callbacks(len(PHONES)):
    parsed = client.process_stk_callback(received["body"])
    callbacks.append({
        "type": received["type"], "successful": parsed.is_successful,
        "checkout": parsed.Body.stkCallback.CheckoutRequestID,
        "code": parsed.Body.stkCallback.ResultCode,
        "amount": parsed.amount, "receipt": parsed.mpesa_receipt_number,
        "phone": parsed.phone_number, "date": parsed.transaction_date,
    })
print(json.dumps({"token": len(token), "results": results, "callbacks": callbacks}))
"""
)


MPESA_SDK = (
    PRELUDE
    + """
import mpesa_sdk.urls
mpesa_sdk.urls.SANDBOX_BASE_URL = BASE  # the one change: the SDK's base URL
from mpesa_sdk import (
    Mpesa, MpesaRequestError, generate_mpesa_express_password, generate_timestamp,
    oauth_generate_token,
)

token, status = oauth_generate_token(KEY, SECRET, env="sandbox")
api = Mpesa(token["access_token"], env="sandbox")
results = {}
for phone in reversed(PHONES):
    stamp = generate_timestamp()
    password = generate_mpesa_express_password(SHORTCODE, PASSKEY, stamp)
    push, _ = api.mpesa_express_payment({
        "BusinessShortCode": SHORTCODE, "Password": password, "Timestamp": stamp,
        "Amount": 1, "PartyA": phone, "PartyB": SHORTCODE, "PhoneNumber": phone,
        "CallBackURL": CALLBACK, "AccountReference": "INV42", "TransactionDesc": "Order 42",
    })
    results[phone] = {"push": push, "password": password, "stamp": stamp}
for phone in PHONES:
    entry = results[phone]
    (query, _), pending = poll(
        lambda: api.mpesa_express_query({
            "BusinessShortCode": SHORTCODE, "Password": entry["password"],
            "Timestamp": entry["stamp"],
            "CheckoutRequestID": entry["push"]["CheckoutRequestID"],
        }),
        lambda exc: isinstance(exc, MpesaRequestError) and "being processed" in str(exc),
    )
    entry["query"] = query
    entry["pending"] = pending and {"status": pending.status_code, "message": str(pending)}
print(json.dumps({"token": status, "expires_in": token["expires_in"], "results": results,
                  "callbacks": [c["body"] for c in wait_callbacks(len(PHONES))]}))
"""
)

PYMPESA = (
    PRELUDE
    + """
import pympesa
from pympesa.urls import URL
for name, url in URL["sandbox"]["v1"].items():  # the one change: the SDK's base URL
    URL["sandbox"]["v1"][name] = url.replace("https://sandbox.safaricom.co.ke", BASE)

token = pympesa.oauth_generate_token(KEY, SECRET, env="sandbox").json()["access_token"]
api = pympesa.Pympesa(token, env="sandbox")
results = {}
for phone in reversed(PHONES):
    stamp = pympesa.generate_timestamp()
    # encode_password is Python 2 code (str into b64encode): give it bytes.
    password = pympesa.encode_password(
        SHORTCODE.encode(), PASSKEY.encode(), stamp.encode()
    ).decode()
    push = api.lipa_na_mpesa_online_payment(
        BusinessShortCode=SHORTCODE, Password=password, Timestamp=stamp, Amount=1,
        PartyA=phone, PartyB=SHORTCODE, PhoneNumber=phone, CallBackURL=CALLBACK,
        AccountReference="INV42", TransactionDesc="Order 42",
    )
    results[phone] = {"push": push.json(), "status": push.status_code,
                      "password": password, "stamp": stamp}

class Pending(Exception):
    pass

def query(entry):
    answer = api.lipa_na_mpesa_online_query(
        BusinessShortCode=SHORTCODE, Password=entry["password"], Timestamp=entry["stamp"],
        CheckoutRequestID=entry["push"]["CheckoutRequestID"],
    )
    if answer.status_code != 200:
        raise Pending(answer.status_code, answer.json())
    return answer.json()

for phone in PHONES:
    entry = results[phone]
    entry["query"], pending = poll(lambda: query(entry), lambda exc: isinstance(exc, Pending))
    entry["pending"] = pending and list(pending.args)
print(json.dumps({"token": len(token), "results": results,
                  "callbacks": [c["body"] for c in wait_callbacks(len(PHONES))]}))
"""
)

PYTHON_DARAJA = (
    PRELUDE
    + """
import requests
from python_daraja import payment

class Redirect:  # the SDK writes its host into each call: rebase only the URL
    def request(self, method, url, **kwargs):
        url = url.replace("https://sandbox.safaricom.co.ke", BASE)
        kwargs["timeout"] = 10
        return requests.request(method, url, **kwargs)

payment.requests = Redirect()
payment.CONSUMER_KEY, payment.CONSUMER_SECRET = KEY, SECRET
payment.PASSKEY, payment.SHORT_CODE, payment.ACCOUNT_TYPE = PASSKEY, SHORTCODE, "PAYBILL"
token = payment._get_access_token()
push = payment.trigger_stk_push(int(PHONES[0]), 1, CALLBACK, "INV42", "Order 42")
print(json.dumps({"token": len(token), "push": push}))
"""
)


def test_mpesakit(daraja):
    """mpesakit 2.2.0: token, STK push and query, and its own parser on the callbacks."""
    phones = [SANDBOX_MSISDN, INSUFFICIENT, CANCELLED]
    out = run_sdk(("mpesakit==2.2.0",), MPESAKIT, env=_config(daraja, phones))
    assert out["token"] == 28
    results = out["results"]
    _assert_outcomes(daraja, results, dict(zip(phones, ("0", "1", "1032"))), amount=10)
    # ResponseCode "0" is "accepted", which the SDK reports as successful for all three.
    assert [results[p]["successful"] for p in phones] == [True, True, True]
    # The first query came while the prompt was open: Daraja's HTTP 500 envelope.
    pending = results[SANDBOX_MSISDN]["pending"]
    assert pending["status"] == 500 and pending["code"] == "HTTP_500"
    assert pending["raw"]["errorCode"] == "500.001.1001"
    assert pending["raw"]["errorMessage"] == "The transaction is being processed"
    # The SDK's callback parser reads every callback the simulator sent.
    callbacks = {c["checkout"]: c for c in out["callbacks"]}
    assert len(callbacks) == 3
    paid = callbacks[results[SANDBOX_MSISDN]["push"]["CheckoutRequestID"]]
    assert paid["successful"] and paid["code"] == 0 and paid["type"] == "application/json"
    assert paid["amount"] == 10 and paid["phone"] == SANDBOX_MSISDN
    assert paid["receipt"] == _ledger(daraja[1], paid["checkout"])["receipt"]
    assert len(paid["date"]) == 14
    for phone, code in ((INSUFFICIENT, 1), (CANCELLED, 1032)):
        failed = callbacks[results[phone]["push"]["CheckoutRequestID"]]
        assert not failed["successful"] and failed["code"] == code
        assert failed["amount"] is None and failed["receipt"] is None


def test_mpesa_sdk(daraja):
    """mpesa-sdk 2.0.0: its Nairobi timestamp and password helpers, push and query."""
    phones = [SANDBOX_MSISDN, CANCELLED]
    out = run_sdk(("mpesa-sdk==2.0.0",), MPESA_SDK, env=_config(daraja, phones))
    assert out["token"] == 200 and out["expires_in"] == "3599"
    results = out["results"]
    _assert_outcomes(daraja, results, dict(zip(phones, ("0", "1032"))), amount=1)
    assert results[SANDBOX_MSISDN]["pending"] == {
        "status": 500,
        "message": "The transaction is being processed",
    }
    bodies = {c["Body"]["stkCallback"]["CheckoutRequestID"]: c for c in out["callbacks"]}
    assert (
        "CallbackMetadata"
        in bodies[results[SANDBOX_MSISDN]["push"]["CheckoutRequestID"]]["Body"]["stkCallback"]
    )
    assert (
        "CallbackMetadata"
        not in bodies[results[CANCELLED]["push"]["CheckoutRequestID"]]["Body"]["stkCallback"]
    )


def test_pympesa(daraja):
    """pympesa 1.0.1: push and query through its module URL table."""
    phones = [SANDBOX_MSISDN, INSUFFICIENT]
    out = run_sdk(("pympesa==1.0.1",), PYMPESA, env=_config(daraja, phones))
    assert out["token"] == 28
    results = out["results"]
    assert {results[p]["status"] for p in phones} == {200}
    _assert_outcomes(daraja, results, dict(zip(phones, ("0", "1"))), amount=1)
    status, body = results[SANDBOX_MSISDN]["pending"]
    assert status == 500 and body["errorCode"] == "500.001.1001"
    assert len(out["callbacks"]) == 2


def test_python_daraja_sends_a_form_body_under_a_json_content_type(daraja):
    """python-daraja 1.2.4 cannot complete a push against Daraja: an SDK bug, not ours.

    It hard-codes `https://sandbox.safaricom.co.ke` inside each function, so the only way to
    rebase it is its module's `requests` attribute; and it posts `data=payload` (a form body)
    with `Content-Type: application/json`, which Daraja cannot read. Its token call works;
    the push gets Daraja's "Invalid Request Payload" envelope and nothing is charged.
    """
    before = httpx.get(f"{daraja[1]}/_simulator/ledger").json()["entries"]
    out = run_sdk(("python-daraja==1.2.4",), PYTHON_DARAJA, env=_config(daraja, [SANDBOX_MSISDN]))
    assert out["token"] == 28
    assert out["push"]["errorCode"] == "400.002.05"
    assert out["push"]["errorMessage"] == "Invalid Request Payload"
    assert httpx.get(f"{daraja[1]}/_simulator/ledger").json()["entries"] == before

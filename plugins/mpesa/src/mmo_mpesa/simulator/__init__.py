"""A simulator of Safaricom's Daraja sandbox, over real HTTP.

Same paths, methods, auth and error envelopes as Daraja (shared/providers/mpesa.md):
OAuth (`GET /oauth/v1/generate`), STK push and query, B2C v3, Transaction Status,
Reversal, Account Balance, C2B register URL and simulate (v1 and v2). Each product answers
an invalid token with its own code, a wrong method with `405.001`, each invalid field with
`400.002.02 Bad Request - Invalid <Field>`, a wrong STK Password with `500.001.1001 Wrong
credentials`, a body not declared `application/json` with Daraja's documented `400.002.02
Bad Request - Invalid BusinessShortCode`, an unknown path with `404.001.01 Resource not found`
(checked with public SDKs: tests/test_mpesa_fidelity.py). SecurityCredential is decrypted
with the simulator's own TEST key pair (`sandbox/simulator-key.pem`), whose certificate is
the plugin's sandbox default; a wrong initiator or password gives ResultCode 2001 in the
asynchronous Result, as on Daraja.

Outcomes follow the shared test numbers (last four digits) in Daraja's own ResultCodes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import re
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from litestar import Litestar, Request, Response, get, post, route
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from mmo_core.simulation import Simulation, scenario, simulator_routes

from mmo_mpesa.client import NAIROBI, RESULT_CODES, password
from mmo_mpesa.settings import MpesaSettings, bundled

SANDBOX_SHORTCODE = "174379"
STK_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")
B2C_COMMANDS = ("SalaryPayment", "BusinessPayment", "PromotionPayment")
BANNED_URL_WORDS = ("mpesa", "m-pesa", "safaricom", "exec", "exe", "cmd", "sql", "query")
WALLET = re.compile(r"^254[17]\d{8}$")
ACCEPTED = "Accept the service request successfully."
STK_ACCEPTED = "Success. Request accepted for processing"
OPENING_BALANCE = Decimal("1000000.00")

# The shared test numbers in Daraja's codes: STK push, and B2C.
STK_OUTCOMES = {
    "insufficient_funds": "1",
    "cancelled": "1032",
    "unreachable": "1037",
    "wrong_pin": "2001",
}
B2C_OUTCOMES = {
    "insufficient_funds": "1",
    "cancelled": "2040",
    "wrong_pin": "2001",
}
PRODUCT_PATHS = (
    "/mpesa/stkpush/v1/processrequest",
    "/mpesa/stkpushquery/v1/query",
    "/mpesa/b2c/v3/paymentrequest",
    "/mpesa/transactionstatus/v1/query",
    "/mpesa/reversal/v1/request",
    "/mpesa/accountbalance/v1/query",
    "/mpesa/c2b/v1/registerurl",
    "/mpesa/c2b/v2/registerurl",
    "/mpesa/c2b/v1/simulate",
    "/mpesa/c2b/v2/simulate",
)


class Invalid(Exception):
    """A Daraja error envelope to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _request_id() -> str:
    return f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-" + str(
        secrets.randbelow(10**12)
    )


def error(code: str, message: str) -> Response[Any]:
    """Daraja's envelope; the HTTP status is the first segment of the code."""
    return Response(
        {"requestId": _request_id(), "errorCode": code, "errorMessage": message},
        status_code=int(code.split(".")[0]),
    )


def receipt() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))


def conversation_id() -> str:
    return f"AG_{dt.datetime.now(tz=NAIROBI):%Y%m%d}_{secrets.token_hex(10)}"


def _json_content(request: Request) -> bool:
    """Daraja reads only `application/json` bodies (a charset parameter is fine)."""
    media = request.headers.get("content-type", "").partition(";")[0]
    return media.strip().lower() == "application/json"


def _bad(name: str) -> Invalid:
    return Invalid("400.002.02", f"Bad Request - Invalid {name}")


def _text(body: dict[str, Any], name: str, *, pattern: str = r".+", optional=False) -> str:
    value = body.get(name)
    if value is None and optional:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _bad(name)
    text = str(value)
    if not re.fullmatch(pattern, text):
        raise _bad(name)
    return text


def _amount(body: dict[str, Any], name: str = "Amount") -> int:
    value = body.get(name)
    if isinstance(value, bool):
        raise _bad(name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        raise _bad(name)
    return value


def _url(body: dict[str, Any], name: str) -> str:
    return _text(body, name, pattern=r"https?://\S+")


def _timestamp(body: dict[str, Any]) -> str:
    stamp = _text(body, "Timestamp", pattern=r"\d{14}")
    try:
        dt.datetime.strptime(stamp, "%Y%m%d%H%M%S")
    except ValueError:
        raise _bad("Timestamp") from None
    return stamp


def _number(value: Decimal | int) -> msgspec.Raw:
    """A JSON number written as Daraja writes it (`150.00`)."""
    return msgspec.Raw(f"{Decimal(value):.2f}".encode())


@dataclass
class StkPush:
    merchant_request_id: str
    checkout_request_id: str
    phone: str
    amount: int
    reference: str
    result_code: str
    done_at: float
    receipt: str = ""
    reversed: bool = False


@dataclass
class Transfer:
    """A B2C payment."""

    originator_id: str
    conversation_id: str
    phone: str
    amount: int
    result_code: str
    done_at: float
    receipt: str = field(default_factory=receipt)


def create_simulator(settings: MpesaSettings) -> Litestar:
    sim = Simulation()
    tokens: dict[str, float] = {}
    pushes: dict[str, StkPush] = {}
    transfers: dict[str, Transfer] = {}
    registered: dict[str, dict[str, str]] = {}
    tasks: set[asyncio.Task[None]] = set()
    private_key = serialization.load_pem_private_key(
        bundled("simulator-key.pem").encode(), password=None
    )

    def delay() -> float:
        return settings.callback_delay

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        expiry = tokens.get(header[7:])
        return expiry is not None and time.time() < expiry

    def credential_ok(body: dict[str, Any], name_field: str) -> bool:
        if body.get(name_field) != settings.initiator_name:
            return False
        try:
            plain = private_key.decrypt(  # type: ignore[union-attr]
                base64.b64decode(str(body.get("SecurityCredential", ""))), padding.PKCS1v15()
            )
        except ValueError:
            return False
        return plain.decode(errors="replace") == settings.initiator_password

    async def read(request: Request) -> dict[str, Any]:
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            raise Invalid("400.002.05", "Invalid Request Payload") from None
        if not isinstance(body, dict):
            raise Invalid("400.002.05", "Invalid Request Payload")
        return body

    async def product(
        request: Request, invalid_token: tuple[str, str], handler: Any
    ) -> Response[Any]:
        """Latency, auth, 5xx faults and field errors, shared by every product endpoint."""
        await sim.injector.latency()
        if not authorised(request):
            code, message = invalid_token
            return error(code, message)
        failure = sim.injector.error_status()
        if failure is not None:
            return error(f"{failure}.003.1001", "Internal Server Error")
        if not _json_content(request):
            # Daraja's documented answer to a wrong Content-Type, whatever the product.
            return error("400.002.02", "Bad Request - Invalid BusinessShortCode")
        try:
            answer = await handler(await read(request))
        except Invalid as exc:
            return error(exc.code, exc.message)
        await sim.injector.maybe_hang()
        return answer

    def schedule(url: str, payload: Any, *, wait: float | None = None, copies: int = 1) -> None:
        sim.callbacks.schedule(
            url,
            msgspec.json.encode(payload),
            delay=delay() if wait is None else wait,
            copies=copies,
        )

    def result(
        code: str,
        originator: str,
        conversation: str,
        transaction: str,
        parameters: list[dict[str, Any]] | None = None,
        desc: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ResultType": 0,
            "ResultCode": int(code) if code.isdigit() else code,
            "ResultDesc": desc or RESULT_CODES.get(code, "Failed"),
            "OriginatorConversationID": originator,
            "ConversationID": conversation,
            "TransactionID": transaction,
        }
        if parameters is not None and code == "0":
            body["ResultParameters"] = {"ResultParameter": parameters}
            body["ReferenceData"] = {
                "ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://sandbox/timeout"}
            }
        return {"Result": body}

    def ack(originator: str, conversation: str) -> Response[Any]:
        return Response(
            {
                "ConversationID": conversation,
                "OriginatorConversationID": originator,
                "ResponseCode": "0",
                "ResponseDescription": ACCEPTED,
            }
        )

    # -- OAuth --------------------------------------------------------------------------------

    @get("/oauth/v1/generate")
    async def generate(request: Request) -> Response[Any]:
        await sim.injector.latency()
        if request.query_params.get("grant_type") != "client_credentials":
            return error("400.008.02", "Invalid grant type passed")
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return error("400.008.01", "Invalid authentication type passed")
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, secret = "", ""
        if user != settings.consumer_key or secret != settings.consumer_secret:
            return error("400.008.01", "Invalid Authentication passed")
        value = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(28))
        tokens[value] = time.time() + 3599
        return Response({"access_token": value, "expires_in": "3599"})

    # -- M-Pesa Express -----------------------------------------------------------------------

    def stk_credentials(body: dict[str, Any]) -> str:
        shortcode = _text(body, "BusinessShortCode", pattern=r"\d{5,7}")
        stamp = _timestamp(body)
        secret = _text(body, "Password")
        if shortcode not in (settings.shortcode, SANDBOX_SHORTCODE):
            raise Invalid("500.001.1001", "Merchant does not exist")
        if secret != password(shortcode, settings.passkey, stamp):
            raise Invalid("500.001.1001", "Wrong credentials")
        return shortcode

    async def stk_push(body: dict[str, Any]) -> Response[Any]:
        _text(body, "BusinessShortCode", pattern=r"\d{5,7}")
        _timestamp(body)
        if body.get("TransactionType") not in STK_TYPES:
            raise _bad("TransactionType")
        amount = _amount(body)
        _text(body, "PartyA", pattern=WALLET.pattern)
        phone = _text(body, "PhoneNumber", pattern=WALLET.pattern)
        _text(body, "PartyB", pattern=r"\d{5,7}")
        callback = _url(body, "CallBackURL")
        reference = _text(body, "AccountReference", pattern=r".{1,12}")
        _text(body, "TransactionDesc", pattern=r".{0,13}", optional=True)
        stk_credentials(body)
        now = time.time()
        if any(p.phone == phone and p.done_at > now for p in pushes.values()):
            raise Invalid(
                "500.001.1001",
                "Unable to lock subscriber, a transaction is already in process for the "
                "current subscriber",
            )
        case = scenario(phone)
        code = STK_OUTCOMES.get(case, "0")
        push = StkPush(
            merchant_request_id=f"{uuid.uuid4().hex[:4]}-{uuid.uuid4().hex[:4]}-"
            f"{uuid.uuid4().hex[:4]}-{uuid.uuid4().hex[:20]}",
            checkout_request_id=f"ws_CO_{dt.datetime.now(tz=NAIROBI):%d%m%Y%H%M%S}"
            f"{secrets.randbelow(1000):03d}{phone[3:]}",
            phone=phone,
            amount=amount,
            reference=reference,
            result_code=code,
            done_at=now + delay(),
            receipt=receipt() if code == "0" else "",
        )
        pushes[push.checkout_request_id] = push
        sim.ledger.record(
            push.checkout_request_id,
            product="stk",
            amount=amount,
            msisdn=phone,
            reference=reference,
            result_code=code,
            receipt=push.receipt,
            status="completed" if code == "0" else "failed",
        )
        if case != "no_callback":
            schedule(
                callback,
                stk_callback(push),
                wait=delay() * (10 if case == "late_callback" else 1),
                copies=2 if case == "double_callback" else 1,
            )
        return Response(
            {
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResponseCode": "0",
                "ResponseDescription": STK_ACCEPTED,
                "CustomerMessage": STK_ACCEPTED,
            }
        )

    def stk_callback(push: StkPush) -> dict[str, Any]:
        callback: dict[str, Any] = {
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": push.checkout_request_id,
            "ResultCode": int(push.result_code),
            "ResultDesc": RESULT_CODES[push.result_code].rstrip("."),
        }
        if push.result_code == "0":
            callback["ResultDesc"] = RESULT_CODES["0"]
            callback["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": _number(push.amount)},
                    {"Name": "MpesaReceiptNumber", "Value": push.receipt},
                    {"Name": "Balance"},
                    {
                        "Name": "TransactionDate",
                        "Value": int(f"{dt.datetime.now(tz=NAIROBI):%Y%m%d%H%M%S}"),
                    },
                    {"Name": "PhoneNumber", "Value": int(push.phone)},
                ]
            }
        return {"Body": {"stkCallback": callback}}

    async def stk_query(body: dict[str, Any]) -> Response[Any]:
        stk_credentials(body)
        checkout = _text(body, "CheckoutRequestID")
        push = pushes.get(checkout)
        if push is None:
            raise Invalid("500.001.1001", "This transaction does not exist")
        if time.time() < push.done_at:
            raise Invalid("500.001.1001", "The transaction is being processed")
        return Response(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResultCode": push.result_code,
                "ResultDesc": RESULT_CODES[push.result_code].rstrip("."),
            }
        )

    # -- B2C ----------------------------------------------------------------------------------

    async def b2c(body: dict[str, Any]) -> Response[Any]:
        originator = _text(body, "OriginatorConversationID")
        _text(body, "InitiatorName")
        _text(body, "SecurityCredential")
        if body.get("CommandID") not in B2C_COMMANDS:
            raise _bad("CommandID")
        amount = _amount(body)
        _text(body, "PartyA", pattern=r"\d{5,7}")
        phone = _text(body, "PartyB", pattern=WALLET.pattern)
        _text(body, "Remarks", pattern=r".{2,100}")
        timeout_url = _url(body, "QueueTimeOutURL")
        result_url = _url(body, "ResultURL")
        if originator in transfers:
            raise Invalid("500.002.1001", "Duplicate OriginatorConversationID.")
        case = scenario(phone)
        if not credential_ok(body, "InitiatorName"):
            code = "2001"
        elif amount < 10:
            code = "2"
        elif case == "unreachable":
            code = "QueueTimeOut"
        else:
            code = B2C_OUTCOMES.get(case, "0")
        transfer = Transfer(
            originator_id=originator,
            conversation_id=conversation_id(),
            phone=phone,
            amount=amount,
            result_code=code,
            done_at=time.time() + delay(),
        )
        transfers[originator] = transfer
        sim.ledger.record(
            originator,
            product="b2c",
            conversation_id=transfer.conversation_id,
            amount=amount,
            msisdn=phone,
            result_code=code,
            receipt=transfer.receipt,
            status={"0": "completed", "QueueTimeOut": "expired"}.get(code, "failed"),
        )
        if code == "QueueTimeOut":
            payload = {
                "Result": {
                    "ResultType": 1,
                    "ResultCode": 1,
                    "ResultDesc": "The service request has timed out.",
                    "OriginatorConversationID": originator,
                    "ConversationID": transfer.conversation_id,
                }
            }
            schedule(timeout_url, payload)
        elif case != "no_callback":
            parameters = [
                {"Key": "TransactionAmount", "Value": amount},
                {"Key": "TransactionReceipt", "Value": transfer.receipt},
                {"Key": "ReceiverPartyPublicName", "Value": f"{phone} - Test Customer"},
                {
                    "Key": "TransactionCompletedDateTime",
                    "Value": f"{dt.datetime.now(tz=NAIROBI):%d.%m.%Y %H:%M:%S}",
                },
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": _number(utility())},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": _number(0)},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": _number(0)},
            ]
            payload = result(
                code, originator, transfer.conversation_id, transfer.receipt, parameters
            )
            schedule(
                result_url,
                payload,
                wait=delay() * (10 if case == "late_callback" else 1),
                copies=2 if case == "double_callback" else 1,
            )
        return ack(originator, transfer.conversation_id)

    def utility() -> Decimal:
        paid = sum(t.amount for t in transfers.values() if t.result_code == "0")
        return OPENING_BALANCE - paid

    # -- Transaction Status, Reversal, Account Balance -----------------------------------------

    def initiator_request(body: dict[str, Any], command: str) -> tuple[str, str, bool]:
        _text(body, "Initiator")
        _text(body, "SecurityCredential")
        if body.get("CommandID") != command:
            raise _bad("CommandID")
        return (
            _url(body, "ResultURL"),
            _url(body, "QueueTimeOutURL"),
            credential_ok(body, "Initiator"),
        )

    async def transaction_status(body: dict[str, Any]) -> Response[Any]:
        result_url, _, ok = initiator_request(body, "TransactionStatusQuery")
        _text(body, "PartyA", pattern=r"\d{5,12}")
        _text(body, "IdentifierType", pattern=r"[1-4]")
        wanted = str(body.get("TransactionID") or "")
        original = str(body.get("OriginalConversationID") or "")
        if not wanted and not original:
            raise _bad("TransactionID")
        conversation, originator = conversation_id(), str(uuid.uuid4())
        found: Any = transfers.get(original) or next(
            (t for t in (*transfers.values(), *pushes.values()) if wanted and t.receipt == wanted),
            None,
        )
        if not ok:
            payload = result("2001", originator, conversation, "")
        elif found is None:
            payload = result("R000002", originator, conversation, "")
        else:
            payload = result(
                "0", originator, conversation, receipt(), status_parameters(found), desc=None
            )
        schedule(result_url, payload)
        return ack(originator, conversation)

    def status_parameters(found: StkPush | Transfer) -> list[dict[str, Any]]:
        if time.time() < found.done_at:
            state = "Pending"
        elif found.result_code == "0":
            state = "Reversed" if getattr(found, "reversed", False) else "Completed"
        elif found.result_code in ("QueueTimeOut", "1037", "1019"):
            state = "Expired"
        else:
            state = "Failed"
        return [
            {"Key": "DebitPartyName", "Value": f"{settings.b2c_shortcode} - Sandbox Business"},
            {"Key": "CreditPartyName", "Value": f"{found.phone} - Test Customer"},
            {"Key": "TransactionStatus", "Value": state},
            {"Key": "Amount", "Value": str(found.amount)},
            {"Key": "ReceiptNo", "Value": found.receipt},
            {"Key": "ReasonType", "Value": found.result_code},
            {"Key": "TransactionReason", "Value": RESULT_CODES.get(found.result_code, state)},
        ]

    async def reversal(body: dict[str, Any]) -> Response[Any]:
        result_url, _, ok = initiator_request(body, "TransactionReversal")
        transaction = _text(body, "TransactionID")
        amount = _amount(body)
        _text(body, "ReceiverParty", pattern=r"\d{5,7}")
        if str(body.get("RecieverIdentifierType")) != "11":
            raise _bad("RecieverIdentifierType")
        _text(body, "Remarks", pattern=r".{2,100}")
        conversation, originator = conversation_id(), str(uuid.uuid4())
        push = next((p for p in pushes.values() if p.receipt and p.receipt == transaction), None)
        reversal_id = receipt()
        if not ok:
            payload = result("2001", originator, conversation, "")
        elif push is None:
            payload = result("R000002", originator, conversation, reversal_id)
        elif push.reversed:
            payload = result("R000001", originator, conversation, reversal_id)
        elif amount > push.amount:
            payload = result("3", originator, conversation, reversal_id)
        else:
            push.reversed = True
            sim.ledger.record(push.checkout_request_id, status="reversed", reversal=reversal_id)
            parameters = [
                {"Key": "Amount", "Value": _number(amount)},
                {"Key": "OriginalTransactionID", "Value": transaction},
                {"Key": "Charge", "Value": _number(0)},
                {"Key": "CreditPartyPublicName", "Value": f"{push.phone} - Test Customer"},
                {"Key": "DebitPartyPublicName", "Value": f"{settings.shortcode} - Sandbox"},
            ]
            payload = result("0", originator, conversation, reversal_id, parameters)
        schedule(result_url, payload)
        return ack(originator, conversation)

    async def account_balance(body: dict[str, Any]) -> Response[Any]:
        result_url, _, ok = initiator_request(body, "AccountBalance")
        _text(body, "PartyA", pattern=r"\d{5,7}")
        _text(body, "IdentifierType", pattern=r"[1-4]")
        conversation, originator = conversation_id(), str(uuid.uuid4())
        if not ok:
            payload = result("2001", originator, conversation, "")
        else:
            accounts = "&".join(
                (
                    "Working Account|KES|0.00|0.00|0.00|0.00",
                    f"Utility Account|KES|{utility():.2f}|{utility():.2f}|0.00|0.00",
                    "Charges Paid Account|KES|0.00|0.00|0.00|0.00",
                )
            )
            parameters = [
                {"Key": "AccountBalance", "Value": accounts},
                {"Key": "BOCompletedTime", "Value": f"{dt.datetime.now(tz=NAIROBI):%Y%m%d%H%M%S}"},
            ]
            payload = result("0", originator, conversation, "SGF0000000", parameters)
            payload["Result"]["ResultType"] = "0"
            payload["Result"]["ResultCode"] = "0"
        schedule(result_url, payload)
        return ack(originator, conversation)

    # -- C2B ----------------------------------------------------------------------------------

    async def register_url(body: dict[str, Any]) -> Response[Any]:
        shortcode = _text(body, "ShortCode", pattern=r"\d{5,7}")
        if body.get("ResponseType") not in ("Completed", "Cancelled"):
            raise _bad("ResponseType")
        urls = {}
        for name in ("ConfirmationURL", "ValidationURL"):
            url = _url(body, name)
            word = next((w for w in BANNED_URL_WORDS if w in url.lower()), None)
            if word is not None:
                raise Invalid(
                    "400.002.02", f"Bad Request - Invalid {name} - URL has the word {word.upper()}"
                )
            urls[name] = url
        registered[shortcode] = {**urls, "ResponseType": body["ResponseType"]}
        return Response(
            {
                "OriginatorCoversationID": _request_id(),
                "ResponseCode": "0",
                "ResponseDescription": "Success",
            }
        )

    async def c2b_simulate(body: dict[str, Any], version: str) -> Response[Any]:
        shortcode = _text(body, "ShortCode", pattern=r"\d{5,7}")
        command = body.get("CommandID")
        if command not in STK_TYPES:
            raise _bad("CommandID")
        amount = _amount(body)
        phone = _text(body, "Msisdn", pattern=WALLET.pattern)
        bill_ref = _text(body, "BillRefNumber", pattern=r".{0,20}", optional=True)
        urls = registered.get(shortcode)
        if urls is None:
            raise Invalid("500.003.1001", "No URLs registered for this ShortCode")
        masked = (
            hashlib.sha256(phone.encode()).hexdigest()
            if version == "v1"
            else f"{phone[:4]} ***** {phone[-3:]}"
        )
        transaction = {
            "TransactionType": "Pay Bill" if command == "CustomerPayBillOnline" else "Buy Goods",
            "TransID": receipt(),
            "TransTime": f"{dt.datetime.now(tz=NAIROBI):%Y%m%d%H%M%S}",
            "TransAmount": f"{amount:.2f}",
            "BusinessShortCode": shortcode,
            "BillRefNumber": bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": masked,
            "FirstName": "Test",
            "MiddleName": "",
            "LastName": "Customer",
        }
        task = asyncio.get_running_loop().create_task(c2b_deliver(transaction, urls, phone))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return Response(
            {
                "OriginatorCoversationID": _request_id(),
                "ResponseCode": "0",
                "ResponseDescription": ACCEPTED,
            }
        )

    async def c2b_deliver(transaction: dict[str, Any], urls: dict[str, str], phone: str) -> None:
        """Validation first (when enabled), then the confirmation unless it was refused."""
        await asyncio.sleep(delay())
        async with httpx.AsyncClient(timeout=8.0) as http:
            accepted = urls["ResponseType"] == "Completed"
            if settings.simulator_validation:
                try:
                    answer = await http.post(urls["ValidationURL"], json=transaction)
                    accepted = str(answer.json().get("ResultCode")) == "0"
                except (httpx.HTTPError, ValueError, AttributeError):
                    pass  # unreachable or unreadable: the registered ResponseType applies
            sim.ledger.record(
                transaction["TransID"],
                product="c2b",
                amount=transaction["TransAmount"],
                msisdn=phone,
                reference=transaction["BillRefNumber"],
                status="completed" if accepted else "rejected",
            )
            if not accepted:
                return
            confirmed = dict(transaction, OrgAccountBalance=f"{utility():.2f}")
            with contextlib.suppress(httpx.HTTPError):
                response = await http.post(urls["ConfirmationURL"], json=confirmed)
                sim.callbacks.sent.append(
                    {"url": urls["ConfirmationURL"].split("?")[0], "status": response.status_code}
                )

    # -- routes -------------------------------------------------------------------------------

    stk_token = ("404.001.03", "Invalid Access Token")

    def b2c_token(request: Request) -> tuple[str, str]:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        return ("401.002.01", f"Error Occurred - Invalid Access Token - {given}")

    other_token = ("400.003.01", "Invalid Access Token")

    @post("/mpesa/stkpush/v1/processrequest", status_code=200)
    async def stk_push_route(request: Request) -> Response[Any]:
        return await product(request, stk_token, stk_push)

    @post("/mpesa/stkpushquery/v1/query", status_code=200)
    async def stk_query_route(request: Request) -> Response[Any]:
        return await product(request, stk_token, stk_query)

    @post("/mpesa/b2c/v3/paymentrequest", status_code=200)
    async def b2c_route(request: Request) -> Response[Any]:
        return await product(request, b2c_token(request), b2c)

    @post("/mpesa/transactionstatus/v1/query", status_code=200)
    async def status_route(request: Request) -> Response[Any]:
        return await product(request, other_token, transaction_status)

    @post("/mpesa/reversal/v1/request", status_code=200)
    async def reversal_route(request: Request) -> Response[Any]:
        return await product(request, other_token, reversal)

    @post("/mpesa/accountbalance/v1/query", status_code=200)
    async def balance_route(request: Request) -> Response[Any]:
        return await product(request, b2c_token(request), account_balance)

    @post(["/mpesa/c2b/v1/registerurl", "/mpesa/c2b/v2/registerurl"], status_code=200)
    async def register_route(request: Request) -> Response[Any]:
        return await product(request, other_token, register_url)

    @post(["/mpesa/c2b/v1/simulate", "/mpesa/c2b/v2/simulate"], status_code=200)
    async def simulate_route(request: Request) -> Response[Any]:
        version = "v1" if "/v1/" in request.url.path else "v2"

        async def handler(body: dict[str, Any]) -> Response[Any]:
            return await c2b_simulate(body, version)

        return await product(request, other_token, handler)

    @route(list(PRODUCT_PATHS), http_method=["GET", "PUT", "PATCH", "DELETE"], status_code=405)
    async def wrong_method() -> Response[Any]:
        return error("405.001", "Method Not Allowed")

    def not_found(request: Request, exc: Exception) -> Response[Any]:
        return error("404.001.01", "Resource not found")

    def not_allowed(request: Request, exc: Exception) -> Response[Any]:
        return error("405.001", "Method Not Allowed")

    async def shutdown() -> None:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await sim.callbacks.close()

    app = Litestar(
        route_handlers=[
            generate,
            stk_push_route,
            stk_query_route,
            b2c_route,
            status_route,
            reversal_route,
            balance_route,
            register_route,
            simulate_route,
            wrong_method,
            *simulator_routes(sim),
        ],
        exception_handlers={NotFoundException: not_found, MethodNotAllowedException: not_allowed},
        on_shutdown=[shutdown],
        openapi_config=None,
    )
    app.state.simulation = sim
    app.state.tokens = tokens
    return app

"""What every Daraja product shares: the error envelope, the field checks, the product
gate (latency, token, injected 5xx, content type, body), and the asynchronous Result."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response

from mmo_mpesa.client import NAIROBI, RESULT_CODES

if TYPE_CHECKING:
    from mmo_mpesa.simulator.state import Book, MpesaSandbox

WALLET = re.compile(r"^254[17]\d{8}$")
ACCEPTED = "Accept the service request successfully."
STK_TOKEN = ("404.001.03", "Invalid Access Token")
OTHER_TOKEN = ("400.003.01", "Invalid Access Token")

# a product's handler: the sandbox, the app whose token came, the request body
Product = Callable[["MpesaSandbox", "Book", dict[str, Any]], Awaitable[Response[Any]]]


class Invalid(Exception):
    """A Daraja error envelope to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ForeignShortcode(Exception):
    """The token's app used a shortcode of another app: answered as an invalid token."""


def own(sandbox: MpesaSandbox, book: Book, shortcode: str) -> str:
    """The shortcode, when the token's app may use it."""
    if sandbox.foreign(book, shortcode):
        raise ForeignShortcode(shortcode)
    return shortcode


def request_id() -> str:
    return f"{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-" + str(
        secrets.randbelow(10**12)
    )


def error(code: str, message: str) -> Response[Any]:
    """Daraja's envelope; the HTTP status is the first segment of the code."""
    return Response(
        {"requestId": request_id(), "errorCode": code, "errorMessage": message},
        status_code=int(code.split(".")[0]),
    )


def receipt() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))


def conversation_id() -> str:
    return f"AG_{dt.datetime.now(tz=NAIROBI):%Y%m%d}_{secrets.token_hex(10)}"


def now_stamp() -> str:
    return f"{dt.datetime.now(tz=NAIROBI):%Y%m%d%H%M%S}"


def b2c_token(request: Request) -> tuple[str, str]:
    """B2C and Account Balance echo the token they refused."""
    given = request.headers.get("authorization", "").removeprefix("Bearer ")
    return ("401.002.01", f"Error Occurred - Invalid Access Token - {given}")


# -- field checks ----------------------------------------------------------------------------


def bad(name: str) -> Invalid:
    return Invalid("400.002.02", f"Bad Request - Invalid {name}")


def text(body: dict[str, Any], name: str, *, pattern: str = r".+", optional=False) -> str:
    value = body.get(name)
    if value is None and optional:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise bad(name)
    found = str(value)
    if not re.fullmatch(pattern, found):
        raise bad(name)
    return found


def amount(body: dict[str, Any], name: str = "Amount") -> int:
    value = body.get(name)
    if isinstance(value, bool):
        raise bad(name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        raise bad(name)
    return value


def url(body: dict[str, Any], name: str) -> str:
    return text(body, name, pattern=r"https?://\S+")


def timestamp(body: dict[str, Any]) -> str:
    stamp = text(body, "Timestamp", pattern=r"\d{14}")
    try:
        dt.datetime.strptime(stamp, "%Y%m%d%H%M%S")
    except ValueError:
        raise bad("Timestamp") from None
    return stamp


def number(value: Decimal | int) -> msgspec.Raw:
    """A JSON number written as Daraja writes it (`150.00`)."""
    return msgspec.Raw(f"{Decimal(value):.2f}".encode())


# -- the product gate ------------------------------------------------------------------------


def _json_content(request: Request) -> bool:
    """Daraja reads only `application/json` bodies (a charset parameter is fine)."""
    media = request.headers.get("content-type", "").partition(";")[0]
    return media.strip().lower() == "application/json"


async def _read(request: Request) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise Invalid("400.002.05", "Invalid Request Payload") from None
    if not isinstance(body, dict):
        raise Invalid("400.002.05", "Invalid Request Payload")
    return body


async def product(
    sandbox: MpesaSandbox, request: Request, invalid_token: tuple[str, str], handler: Product
) -> Response[Any]:
    """Latency, auth, 5xx faults and field errors, shared by every product endpoint."""
    book = sandbox.authorised(request)
    refused = await sandbox.gate(
        lambda: None if book is not None else error(*invalid_token),
        lambda status: error(f"{status}.003.1001", "Internal Server Error"),
    )
    if refused is not None or book is None:
        return refused or error(*invalid_token)
    if not _json_content(request):
        # Daraja's documented answer to a wrong Content-Type, whatever the product.
        return error("400.002.02", "Bad Request - Invalid BusinessShortCode")
    try:
        answer = await handler(sandbox, book, await _read(request))
    except Invalid as exc:
        return error(exc.code, exc.message)
    except ForeignShortcode:
        return error(*invalid_token)
    await sandbox.hang()
    return answer


# -- the asynchronous Result (B2C, Transaction Status, Reversal, Account Balance) -------------


def result(
    code: str,
    originator: str,
    conversation: str,
    transaction: str,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": int(code) if code.isdigit() else code,
        "ResultDesc": RESULT_CODES.get(code, "Failed"),
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


def initiator_request(
    sandbox: MpesaSandbox, book: Book, body: dict[str, Any], command: str
) -> tuple[str, str, bool]:
    """The fields of an initiator's request: (ResultURL, QueueTimeOutURL, credential ok)."""
    text(body, "Initiator")
    text(body, "SecurityCredential")
    if body.get("CommandID") != command:
        raise bad("CommandID")
    return (
        url(body, "ResultURL"),
        url(body, "QueueTimeOutURL"),
        sandbox.credential_ok(book, body, "Initiator"),
    )

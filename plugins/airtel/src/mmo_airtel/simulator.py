"""A simulator of the Airtel Africa Open API sandbox, over real HTTP.

Same paths (with their trailing slashes), headers (`Authorization: Bearer`, `X-Country`,
`X-Currency`), envelopes (`{data, status: {code, message, result_code, response_code,
success}}`, `status.code` a string) and codes as Airtel, refusals answered with HTTP 200
and `status.success=false`; OAuth errors as `{error, error_description}` and ROUTER errors
as `{status_code, status_message}`. Disbursement PINs are decrypted with the simulator's
own RSA key pair, served at `/v1/rsa/encryption-keys`. Callbacks
`{"transaction": {id, message, status_code, airtel_money_id}}` (with `hash` when callback
authentication is on) go to the `callback_url` setting, standing for the portal's
configuration, or to the `X-Callback-Url` header of the request.

Test numbers (shared/DESIGN.md), by the last four digits: 0001 not enough balance
(DP00800001007 / DP00900001007), 1032 refused (DP00800001008 / DP00900001013), 1037 timed
out (DP00800001024 / DP00900001005), 2001 wrong PIN (DP00800001002; for a disbursement,
ROUTER115), 9990 no callback, 9991 two callbacks, 9992 a late callback; 0404 is an unknown
user for the KYC enquiry.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from mmo_core.callbacks import constant_time_equals
from mmo_core.simulation import Simulation, scenario, simulator_routes

from mmo_airtel.client import aes_signature, callback_hash, signing_key_material
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.wire import (
    MARKETS,
    MSISDN_LENGTHS,
    WALLET_TYPES,
    DisbursementTransaction,
    PushTransaction,
)

TOKEN_LIFETIME = 180
START_BALANCE = Decimal(10_000_000)

COLLECTION_DECLINES: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("DP00800001007", "Not enough balance"),
    "cancelled": ("DP00800001008", "Transaction refused by the payer"),
    "unreachable": ("DP00800001024", "Transaction timed out"),
    "wrong_pin": ("DP00800001002", "Incorrect PIN entered"),
}
DISBURSEMENT_DECLINES: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("DP00900001007", "Insufficient funds"),
    "cancelled": ("DP00900001013", "Transaction refused"),
    "unreachable": ("DP00900001005", "Transaction failed: payee unreachable"),
}


class _Subscriber(msgspec.Struct):
    msisdn: str | int
    country: str | None = None
    currency: str | None = None


class _PushRequest(msgspec.Struct):
    """What the simulator reads of a push. `msisdn` may come as a JSON number (pyairtel
    0.1.1 sends `int("255...")`): Airtel reads its digits and answers a number with the
    country code by its length (ESB000033, notes section 13.2), not a field error."""

    reference: str
    subscriber: _Subscriber
    transaction: PushTransaction


class _Payee(msgspec.Struct):
    msisdn: str | int
    currency: str | None = None
    name: str | None = None
    wallet_type: str | None = None


class _DisbursementRequest(msgspec.Struct):
    payee: _Payee
    reference: str
    pin: str
    transaction: DisbursementTransaction


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _status(
    *,
    code: str = "200",
    message: str = "SUCCESS",
    result_code: str | None = "ESB000010",
    response_code: str | None = None,
    success: bool = True,
) -> dict[str, Any]:
    block: dict[str, Any] = {"code": code, "message": message}
    if result_code is not None:
        block["result_code"] = result_code
    if response_code is not None:
        block["response_code"] = response_code
    block["success"] = success
    return block


def _ok(data: Any, response_code: str | None = None, message: str = "SUCCESS") -> Response[Any]:
    return Response(
        {"data": data, "status": _status(response_code=response_code, message=message)},
        status_code=200,
    )


def _refuse(
    message: str,
    result_code: str | None,
    response_code: str | None = None,
    *,
    code: str = "400",
    data: Any = None,
) -> Response[Any]:
    """A business refusal as Airtel sends it: HTTP 200 and `status.success=false`."""
    body: dict[str, Any] = {
        "status": _status(
            code=code,
            message=message,
            result_code=result_code,
            response_code=response_code,
            success=False,
        )
    }
    if data is not None:
        body = {"data": data, **body}
    return Response(body, status_code=200)


def _router(code: str, message: str, http: int = 400) -> Response[Any]:
    return Response({"status_message": message, "status_code": code}, status_code=http)


def _invalid_token() -> Response[Any]:
    return Response(
        {
            "error_description": "The access token is invalid or has expired",
            "error": "invalid_token",
        },
        status_code=401,
    )


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.001")):
        return None
    return amount


def _json_amount(amount: Decimal) -> int | str:
    """A whole amount as a JSON number (the Go client's `int`), else its exact string."""
    return int(amount) if amount == amount.to_integral_value() else str(amount)


def create_simulator(settings: AirtelSettings) -> Litestar:
    sim = Simulation()
    private_key = rsa.generate_private_key(
        public_exponent=65537, key_size=1024 if settings.pin_encryption == "v1" else 2048
    )
    public_key = base64.b64encode(
        private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    tokens: dict[str, float] = {}
    transactions: dict[str, dict[str, Any]] = {}
    by_airtel_id: dict[str, str] = {}
    balances: dict[str, Decimal] = {}
    wallets: dict[tuple[str, str], Decimal] = {}  # (currency, DISB|COLL|...) for balance v2
    countries = {country for country, _ in MARKETS}

    # -- guards --------------------------------------------------------------------------

    async def guard(request: Request) -> Response[Any] | tuple[str, str]:
        """Token, injected faults, X-Country and X-Currency, in Airtel's order and words."""
        await sim.injector.latency()
        header = request.headers.get("authorization", "")
        expiry = tokens.get(header.removeprefix("Bearer ").strip())
        if not header.startswith("Bearer ") or expiry is None or expiry < time.monotonic():
            return _invalid_token()
        failure = sim.injector.error_status()
        if failure is not None:
            return Response(
                {
                    "status": _status(
                        code=str(failure),
                        message="Internal Server Error",
                        result_code="ESB000001",
                        success=False,
                    )
                },
                status_code=failure,
            )
        country = request.headers.get("x-country")
        if not country:
            return _router("ROUTER110", f"Partner {settings.client_id} not found")
        if len(country) != 2:
            return Response(
                {
                    "status": _status(
                        code="400",
                        message="Invalid Country Code",
                        result_code=None,
                        response_code="DP00900001013",
                        success=False,
                    )
                },
                status_code=400,
            )
        if country not in countries:
            return _refuse("Invalid Country Name", "ESB000034")
        currency = request.headers.get("x-currency")
        if not currency:
            return _refuse("Missing header parameter X-Currency", "ESB000008")
        if (country, currency) not in MARKETS:
            return _refuse("Invalid Currency Provided", "ESB000035")
        return country, currency

    def msisdn_ok(country: str, msisdn: str) -> bool:
        return msisdn.isdigit() and len(msisdn) in MSISDN_LENGTHS[country]

    def balance_of(currency: str) -> Decimal:
        return balances.setdefault(currency, START_BALANCE)

    def move(currency: str, wallet: str, delta: Decimal) -> None:
        """Move the v1 balance and the v2 wallet (COLL for collections and refunds, DISB
        for disbursements) by `delta`."""
        balances[currency] = balance_of(currency) + delta
        wallets[(currency, wallet)] = wallets.get((currency, wallet), START_BALANCE) + delta

    def check_signature(request: Request, raw: bytes, response_code: str) -> Response[Any] | None:
        """Message signing as Airtel checks it: RSA-decrypt `x-key` ("<b64key>:<b64iv>") with
        our private key, AES-256-CBC the received body again, compare with `x-signature`."""
        refused = _refuse(
            "Forbidden: x-signature and payload did not match",
            None,
            response_code,
            code="403",
        )
        x_signature = request.headers.get("x-signature", "")
        x_key = request.headers.get("x-key", "")
        if not x_signature or not x_key:
            return refused
        try:
            decrypted = private_key.decrypt(
                base64.b64decode(x_key, validate=True), padding.PKCS1v15()
            )
        except (ValueError, TypeError):
            return refused
        material = signing_key_material(decrypted)
        if material is None:
            return refused
        if not constant_time_equals(x_signature, aes_signature(raw, *material)):
            return refused
        return None

    def send_callback(url: str | None, record: dict[str, Any]) -> None:
        if not url:
            return
        case = scenario(record["msisdn"])
        if case == "no_callback":
            return
        transaction = {
            "id": record["id"],
            "message": record["message"],
            "status_code": record["status"],
            "airtel_money_id": record["airtel_money_id"],
        }
        raw = _compact({"transaction": transaction})
        if settings.callback_auth:
            digest = callback_hash(settings.callback_private_key, raw)
            raw = raw[:-1] + b',"hash":"' + digest.encode() + b'"}'
        sim.callbacks.schedule(
            url,
            raw,
            delay=settings.callback_delay * (10 if case == "late_callback" else 1),
            copies=2 if case == "double_callback" else 1,
        )

    def airtel_id(prefix: str) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%y%m%d.%H%M")
        return f"{prefix}{stamp}.{secrets.token_hex(3).upper()}"

    # -- OAuth ---------------------------------------------------------------------------

    @post("/auth/oauth2/token", status_code=200)
    async def token(request: Request) -> Response[Any]:
        await sim.injector.latency()
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if (
            not isinstance(body, dict)
            or body.get("client_id") != settings.client_id
            or body.get("client_secret") != settings.client_secret
            or body.get("grant_type") != "client_credentials"
        ):
            return Response(
                {"error_description": "Invalid client authentication", "error": "invalid_client"},
                status_code=400,
            )
        value = secrets.token_urlsafe(24)
        tokens[value] = time.monotonic() + TOKEN_LIFETIME
        return Response(
            {"access_token": value, "expires_in": str(TOKEN_LIFETIME), "token_type": "bearer"}
        )

    # -- collection ------------------------------------------------------------------------

    async def collect(request: Request, signed: bool) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        country, currency = checked
        raw = await request.body()
        if signed and (refused := check_signature(request, raw, "DP00800001026")):
            return refused
        try:
            body = msgspec.json.decode(raw, type=_PushRequest)
        except msgspec.MsgspecError as exc:
            return _refuse(f"Field validation failed: {exc}", "ESB000008")
        msisdn = str(body.subscriber.msisdn)
        if not msisdn_ok(country, msisdn):
            return _refuse("Invalid MSISDN Length", "ESB000033", "DP00800001005")
        amount = _amount(body.transaction.amount)
        if amount is None:
            return _refuse("Invalid amount", "ESB000008", "DP00800001004")
        tx_id = body.transaction.id
        if tx_id in transactions:
            return _refuse("External Transaction ID already exists", "ESB000041")
        case = scenario(msisdn)
        record: dict[str, Any] = {
            "id": tx_id,
            "kind": "collection",
            "amount": amount,
            "currency": currency,
            "msisdn": msisdn,
            "reference": body.reference,
            "created_at": int(time.time() * 1000),
            "airtel_money_id": airtel_id("MP"),
        }
        if case in COLLECTION_DECLINES:
            code, text = COLLECTION_DECLINES[case]
            record.update(status="TF", response_code=code, message=text)
        else:
            record.update(
                status="TS",
                response_code="DP00800001001",
                message=f"Paid {currency} {amount} to SIMULATED MERCHANT, "
                f"Trans ID {record['airtel_money_id']}.",
            )
            move(currency, "COLL", amount)
        transactions[tx_id] = record
        by_airtel_id[record["airtel_money_id"]] = tx_id
        sim.ledger.record(
            tx_id,
            kind="collection",
            amount=str(amount),
            currency=currency,
            status=record["status"],
            response_code=record["response_code"],
            airtel_money_id=record["airtel_money_id"],
            signed=signed,
        )
        send_callback(settings.callback_url or request.headers.get("x-callback-url"), record)
        await sim.injector.maybe_hang()
        return _ok({"transaction": {"id": tx_id, "status": "SUCCESS"}}, "DP00800001006")

    @post("/merchant/v1/payments/", status_code=200)
    async def push(request: Request) -> Response[Any]:
        return await collect(request, signed=False)

    @post("/merchant/v2/payments/", status_code=200)
    async def push_v2(request: Request) -> Response[Any]:
        return await collect(request, signed=True)

    @get("/standard/v1/payments/{transaction_id:str}")
    async def enquiry(request: Request, transaction_id: FromPath[str]) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        record = transactions.get(transaction_id)
        if record is None or record["kind"] != "collection":
            return _refuse(
                "No transaction found with provided id", "ESB000045", "DP00800001025", code="404"
            )
        return _enquiry_answer(record)

    def _enquiry_answer(record: dict[str, Any]) -> Response[Any]:
        transaction = {
            "airtel_money_id": record["airtel_money_id"],
            "id": record["id"],
            "message": record["message"],
            "status": record["status"],
        }
        if record["status"] == "TS":
            return _ok({"transaction": transaction}, record["response_code"])
        if record["status"] == "TF":
            return _refuse(
                "FAILED",
                "ESB000011",
                record["response_code"],
                code="200",
                data={"transaction": transaction},
            )
        return _ok({"transaction": transaction}, record["response_code"], "In process")

    async def do_refund(request: Request, signed: bool) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        raw = await request.body()
        if signed and (refused := check_signature(request, raw, "DP00800001026")):
            return refused
        try:
            body = json.loads(raw)
            airtel_money_id = str(body["transaction"]["airtel_money_id"])
        except (ValueError, KeyError, TypeError):
            return _router("ROUTER003", "Missing header/body params")
        record = transactions.get(by_airtel_id.get(airtel_money_id, ""))
        if (
            record is None
            or record["kind"] != "collection"
            or record["status"]
            not in (
                "TS",
                "REFUNDED",
            )
        ):
            return _refuse("No transaction found with provided id", "ESB000045", "DP00800001025")
        if record["status"] == "REFUNDED":
            return _refuse("Transaction already refunded", "ESB000011", "DP00800001009")
        record["status"] = "REFUNDED"
        move(record["currency"], "COLL", -record["amount"])
        sim.ledger.record(record["id"], status="REFUNDED")
        return Response(
            {
                "data": {"transaction": {"airtel_money_id": airtel_money_id, "status": "SUCCESS"}},
                "status": _status(),
            }
        )

    @post("/standard/v1/payments/refund", status_code=200)
    async def refund(request: Request) -> Response[Any]:
        return await do_refund(request, signed=False)

    @post("/standard/v2/payments/refund", status_code=200)
    async def refund_v2(request: Request) -> Response[Any]:
        return await do_refund(request, signed=True)

    # -- disbursement ----------------------------------------------------------------------

    def decrypt_pin(pin: str, version: str) -> str | None:
        if settings.pin_encryption == "v2" or version == "v3":
            scheme: Any = padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
            )
        else:
            scheme = padding.PKCS1v15()
        try:
            return private_key.decrypt(base64.b64decode(pin, validate=True), scheme).decode()
        except (ValueError, TypeError, UnicodeDecodeError):
            return None

    async def disburse(request: Request, version: str) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        country, currency = checked
        raw = await request.body()
        if version == "v3" and (refused := check_signature(request, raw, "DP00900001016")):
            return refused
        try:
            body = msgspec.json.decode(raw, type=_DisbursementRequest)
        except msgspec.MsgspecError:
            return _router("ROUTER003", "Missing header/body params")
        if decrypt_pin(body.pin, version) is None:
            return _router("ROUTER116", "Incorrect encrypted pin: re-check the encryption")
        msisdn = str(body.payee.msisdn)
        if scenario(msisdn) == "wrong_pin" or decrypt_pin(body.pin, version) != settings.pin:
            return _router("ROUTER115", "Incorrect PIN")
        if version != "v1" and body.transaction.type not in ("B2C", "B2B"):
            return _refuse("Invalid transaction type", "ESB000008", "DP00900001005")
        if not msisdn_ok(country, msisdn):
            lengths = "/".join(str(n) for n in MSISDN_LENGTHS[country])
            return _refuse(
                f"Invalid Msisdn Length. Msisdn Length should be {lengths}",
                "ESB000033",
                "DP00900001012",
            )
        amount = _amount(body.transaction.amount)
        if amount is None:
            return _refuse("Invalid amount", "ESB000008", "DP00900001004")
        tx_id = body.transaction.id
        if tx_id in transactions:
            return _refuse("Duplicate transaction id", "ESB000041", "DP00900001017")
        if balance_of(currency) < amount:
            return _refuse("Insufficient funds", "ESB000011", "DP00900001007")
        case = scenario(msisdn)
        record: dict[str, Any] = {
            "id": tx_id,
            "kind": "disbursement",
            "amount": amount,
            "currency": currency,
            "msisdn": msisdn,
            "reference": body.reference,
            "created_at": int(time.time() * 1000),
            "airtel_money_id": airtel_id("CI"),
            "reference_id": airtel_id("CI"),
        }
        if case in DISBURSEMENT_DECLINES:
            code, text = DISBURSEMENT_DECLINES[case]
            record.update(status="TF", response_code=code, message=text)
        else:
            move(currency, "DISB", -amount)
            record.update(
                status="TS",
                response_code="DP00900001001",
                message=f"You have sent {currency} {amount} to {msisdn}. "
                f"TID: {record['reference_id']}",
            )
        transactions[tx_id] = record
        sim.ledger.record(
            tx_id,
            kind="disbursement",
            amount=str(amount),
            currency=currency,
            status=record["status"],
            response_code=record["response_code"],
            airtel_money_id=record["airtel_money_id"],
            signed=version == "v3",
        )
        send_callback(settings.callback_url or request.headers.get("x-callback-url"), record)
        await sim.injector.maybe_hang()
        data = {
            "transaction": {
                "reference_id": record["reference_id"],
                "airtel_money_id": record["airtel_money_id"],
                "id": tx_id,
                "status": "TIP",
            }
        }
        return _ok(data, "DP00900001006", "Transaction is in process")

    @post("/standard/v1/disbursements/", status_code=200)
    async def disburse_v1(request: Request) -> Response[Any]:
        return await disburse(request, "v1")

    @post("/standard/v2/disbursements/", status_code=200)
    async def disburse_v2(request: Request) -> Response[Any]:
        return await disburse(request, "v2")

    @post("/standard/v3/disbursements", status_code=200)
    async def disburse_v3(request: Request) -> Response[Any]:
        return await disburse(request, "v3")

    async def disbursement_enquiry(request: Request, transaction_id: str) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        record = transactions.get(transaction_id)
        if record is None or record["kind"] != "disbursement":
            return _refuse("Transaction not found", "ESB000045", "DP00900001015", code="404")
        return _enquiry_answer(record)

    @get("/standard/v1/disbursements/{transaction_id:str}")
    async def disbursement_v1(request: Request, transaction_id: FromPath[str]) -> Response[Any]:
        return await disbursement_enquiry(request, transaction_id)

    @get("/standard/v2/disbursements/{transaction_id:str}")
    async def disbursement_v2(request: Request, transaction_id: FromPath[str]) -> Response[Any]:
        return await disbursement_enquiry(request, transaction_id)

    @get("/standard/v3/disbursements/{transaction_id:str}")
    async def disbursement_v3(request: Request, transaction_id: FromPath[str]) -> Response[Any]:
        return await disbursement_enquiry(request, transaction_id)

    # -- account -----------------------------------------------------------------------------

    @get("/standard/v1/users/balance")
    async def balance(request: Request) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        _, currency = checked
        return _ok(
            {
                "balance": f"{balance_of(currency):.2f}",
                "currency": currency,
                "account_status": "ACTIVE",
            }
        )

    @get("/standard/v2/users/balance")
    async def balance_v2(
        request: Request, wallet: Annotated[str | None, QueryParameter(name="type")] = None
    ) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        _, currency = checked
        if wallet not in WALLET_TYPES:
            return _refuse(f"Invalid type: expected one of {', '.join(WALLET_TYPES)}", "ESB000008")
        available = wallets.get((currency, wallet), START_BALANCE)
        return _ok(
            {"balance": f"{available:.2f}", "currency": currency, "account_status": "ACTIVE"}
        )

    @get("/merchant/v1/transactions")
    async def transaction_list(
        request: Request,
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        end: Annotated[str | None, QueryParameter(name="to")] = None,
        limit: Annotated[str | None, QueryParameter(name="limit")] = None,
        offset: Annotated[str | None, QueryParameter(name="offset")] = None,
    ) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        _, currency = checked
        try:
            low, high = int(start or 0), int(end or 2**62)
            size, skip = int(limit or 20), int(offset or 0)
        except ValueError:
            return _refuse("Field validation failed: from, to, limit, offset", "ESB000008")
        if size < 1 or skip < 0:
            return _refuse("Field validation failed: limit, offset", "ESB000008")
        found = [
            r
            for r in transactions.values()
            if r["currency"] == currency and low <= r["created_at"] <= high
        ]
        page = found[skip : skip + size]
        return _ok({"count": len(found), "transactions": [summary_entry(r) for r in page]})

    def summary_entry(record: dict[str, Any]) -> dict[str, Any]:
        party = {"currency": record["currency"], "msisdn": record["msisdn"], "name": "JOHN DOE"}
        merchant = {"currency": record["currency"], "msisdn": "", "name": "SIMULATED MERCHANT"}
        collection = record["kind"] == "collection"
        return {
            "charges": {"service": 0},
            "payee": merchant if collection else party,
            "payer": party if collection else merchant,
            "service": {"type": "MERCHANT_PAYMENT" if collection else "B2C"},
            "transaction": {
                "airtel_money_id": record["airtel_money_id"],
                "amount": _json_amount(record["amount"]),
                "created_at": record["created_at"],
                "id": record["id"],
                "reference_number": record["reference"],
                "status": record["status"],
            },
        }

    @get("/standard/v1/users/{msisdn:str}")
    async def user(request: Request, msisdn: FromPath[str]) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        country, _ = checked
        if not msisdn_ok(country, msisdn):
            return _refuse("Invalid MSISDN Length", "ESB000033", "DP02200000000")
        if msisdn.endswith("0404"):
            return _refuse("User not found", "ESB000011", "DP02200000002", code="200")
        data = {
            "first_name": "JOHN",
            "last_name": "DOE",
            "grade": "SUBS",
            "is_barred": scenario(msisdn) == "cancelled",
            "is_pin_set": True,
            "msisdn": msisdn,
            "reg_status": "SUBS",
            "registered_id": "*****" + msisdn[-4:],
        }
        return _ok(data, "DP02200000001")

    @get("/v1/rsa/encryption-keys")
    async def encryption_keys(request: Request) -> Response[Any]:
        checked = await guard(request)
        if isinstance(checked, Response):
            return checked
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        return Response(
            {
                "data": {
                    "key_id": 100,
                    "key": public_key,
                    "valid_upto": until.strftime("%d-%m-%Y %H:%M:%S"),
                },
                "status": _status(message="Success", response_code="DP02010001001"),
            }
        )

    return Litestar(
        route_handlers=[
            token,
            push,
            push_v2,
            enquiry,
            refund,
            refund_v2,
            disburse_v1,
            disburse_v2,
            disburse_v3,
            disbursement_v1,
            disbursement_v2,
            disbursement_v3,
            balance,
            balance_v2,
            transaction_list,
            user,
            encryption_keys,
            *simulator_routes(sim),
        ],
        on_shutdown=[sim.callbacks.close],
        openapi_config=None,
    )

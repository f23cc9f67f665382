"""The Airtel sandbox's state: its RSA key pair, tokens, transactions (by our id, by
Airtel's id, by currency), balances; the guard every product call passes."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from litestar import Request, Response
from litestar.di import NamedDependency
from mmo_core.callbacks import constant_time_equals
from mmo_core.simulation import Simulation, scenario

from mmo_airtel.client import aes_signature, callback_hash, signing_key_material
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator.envelope import compact, invalid_token, refuse, router, status
from mmo_airtel.wire import MARKETS, MSISDN_LENGTHS

START_BALANCE = Decimal(10_000_000)
COUNTRIES = {country for country, _ in MARKETS}


def _country_refusal(settings: AirtelSettings, request: Request) -> Response[Any] | None:
    country = request.headers.get("x-country")
    if not country:
        return router("ROUTER110", f"Partner {settings.client_id} not found")
    if len(country) != 2:
        return Response(
            {
                "status": status(
                    code="400",
                    message="Invalid Country Code",
                    result_code=None,
                    response_code="DP00900001013",
                    success=False,
                )
            },
            status_code=400,
        )
    if country not in COUNTRIES:
        return refuse("Invalid Country Name", "ESB000034")
    currency = request.headers.get("x-currency")
    if not currency:
        return refuse("Missing header parameter X-Currency", "ESB000008")
    if (country, currency) not in MARKETS:
        return refuse("Invalid Currency Provided", "ESB000035")
    return None


def _fault(failure: int) -> Response[Any]:
    return Response(
        {
            "status": status(
                code=str(failure),
                message="Internal Server Error",
                result_code="ESB000001",
                success=False,
            )
        },
        status_code=failure,
    )


class AirtelSandbox(Simulation):
    def __init__(self, settings: AirtelSettings) -> None:
        super().__init__()
        self.settings = settings
        self.private_key = rsa.generate_private_key(
            public_exponent=65537, key_size=1024 if settings.pin_encryption == "v1" else 2048
        )
        self.public_key = base64.b64encode(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode()
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.transactions: dict[str, dict[str, Any]] = {}  # by our transaction id
        self.by_airtel_id: dict[str, str] = {}  # airtel_money_id -> our id (collections)
        self.by_currency: dict[str, list[dict[str, Any]]] = {}  # the transaction list
        self.balances: dict[str, Decimal] = {}
        # (currency, DISB|COLL|...) for balance v2
        self.wallets: dict[tuple[str, str], Decimal] = {}

    # -- guards --------------------------------------------------------------------------

    def _token_refusal(self, request: Request) -> Response[Any] | None:
        header = request.headers.get("authorization", "")
        expiry = self.tokens.get(header.removeprefix("Bearer ").strip())
        if not header.startswith("Bearer ") or expiry is None or expiry < time.monotonic():
            return invalid_token()
        return None

    async def guard(self, request: Request) -> Response[Any] | tuple[str, str]:
        """Token, injected faults, X-Country and X-Currency, in Airtel's order and words."""
        refused = await self.gate(lambda: self._token_refusal(request), _fault)
        if refused is None:
            refused = _country_refusal(self.settings, request)
        if refused is not None:
            return refused
        return request.headers["x-country"], request.headers["x-currency"]

    def msisdn_ok(self, country: str, msisdn: str) -> bool:
        return msisdn.isdigit() and len(msisdn) in MSISDN_LENGTHS[country]

    def check_signature(
        self, request: Request, raw: bytes, response_code: str
    ) -> Response[Any] | None:
        """Message signing as Airtel checks it: RSA-decrypt `x-key` ("<b64key>:<b64iv>") with
        our private key, AES-256-CBC the received body again, compare with `x-signature`."""
        refused = refuse(
            "Forbidden: x-signature and payload did not match", None, response_code, code="403"
        )
        x_signature = request.headers.get("x-signature", "")
        x_key = request.headers.get("x-key", "")
        if not x_signature or not x_key:
            return refused
        try:
            decrypted = self.private_key.decrypt(
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

    def decrypt_pin(self, pin: str, version: str) -> str | None:
        if self.settings.pin_encryption == "v2" or version == "v3":
            scheme: Any = padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
            )
        else:
            scheme = padding.PKCS1v15()
        try:
            return self.private_key.decrypt(base64.b64decode(pin, validate=True), scheme).decode()
        except (ValueError, TypeError, UnicodeDecodeError):
            return None

    # -- money ---------------------------------------------------------------------------

    def balance_of(self, currency: str) -> Decimal:
        return self.balances.setdefault(currency, START_BALANCE)

    def move(self, currency: str, wallet: str, delta: Decimal) -> None:
        """Move the v1 balance and the v2 wallet (COLL for collections and refunds, DISB
        for disbursements) by `delta`."""
        self.balances[currency] = self.balance_of(currency) + delta
        self.wallets[(currency, wallet)] = (
            self.wallets.get((currency, wallet), START_BALANCE) + delta
        )

    def add(self, record: dict[str, Any]) -> None:
        self.transactions[record["id"]] = record
        self.by_currency.setdefault(record["currency"], []).append(record)
        if record["kind"] == "collection":
            self.by_airtel_id[record["airtel_money_id"]] = record["id"]

    # -- callbacks -----------------------------------------------------------------------

    def send_callback(self, url: str | None, record: dict[str, Any]) -> None:
        if not url:
            return
        transaction = {
            "id": record["id"],
            "message": record["message"],
            "status_code": record["status"],
            "airtel_money_id": record["airtel_money_id"],
        }
        raw = compact({"transaction": transaction})
        if self.settings.callback_auth:
            digest = callback_hash(self.settings.callback_private_key, raw)
            raw = raw[:-1] + b',"hash":"' + digest.encode() + b'"}'
        self.notify(url, raw, case=scenario(record["msisdn"]), delay=self.settings.callback_delay)


def airtel_id(prefix: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%y%m%d.%H%M")
    return f"{prefix}{stamp}.{secrets.token_hex(3).upper()}"


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[AirtelSandbox]

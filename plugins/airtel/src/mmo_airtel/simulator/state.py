"""The Airtel sandbox's state: its RSA key pair, the applications (accounts) it serves,
tokens, transactions (by account and our id, by Airtel's id, by account and currency),
balances; the guard every product call passes.

Every account is one Airtel application: its client id and secret get tokens of that
application only, and everything it creates belongs to it. Another application's token
finds none of it: an enquiry answers "no transaction found" (ESB000045 with DP00800001025
or DP00900001015), a refund of its `airtel_money_id` the same, as Airtel answers an id
it does not hold for the caller; a token used with an X-Country its application is not
enabled for (`countries`) gets ROUTER007."""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import secrets
import time
from decimal import Decimal
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from litestar import Request, Response
from litestar.di import NamedDependency
from mmo_core import phones
from mmo_core.callbacks import constant_time_equals
from mmo_core.errors import InvalidRequest
from mmo_core.simulation import Simulation, scenario

from mmo_airtel.client import aes_signature, callback_hash, signing_key_material
from mmo_airtel.settings import AirtelSettings
from mmo_airtel.simulator.envelope import compact, invalid_token, refuse, router, status
from mmo_airtel.wire import MARKETS, MSISDN_LENGTHS

START_BALANCE = Decimal(10_000_000)
COUNTRIES = {country for country, _ in MARKETS}


class Call(NamedTuple):
    """Who is calling (the token's account and its settings) and for which market."""

    account: str
    settings: AirtelSettings
    country: str
    currency: str


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
    served = settings.application_countries()
    if served and country not in served:
        return router("ROUTER007", "Not authorised for country")
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
    def __init__(
        self, settings: AirtelSettings, accounts: dict[str, AirtelSettings] | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.accounts: dict[str, AirtelSettings] = dict(accounts or {"default": settings})
        self.by_client: dict[str, str] = {}  # client_id -> account
        for name, account in self.accounts.items():
            if self.by_client.setdefault(account.client_id, name) != name:
                raise ValueError(
                    f"accounts {name!r} and {self.by_client[account.client_id]!r}"
                    " share a client_id: Airtel issues one per application"
                )
        self.private_key = rsa.generate_private_key(
            public_exponent=65537,
            key_size=2048
            if any(a.pin_encryption == "v2" for a in self.accounts.values())
            else 1024,
        )
        self.public_key = base64.b64encode(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).decode()
        # access token -> (account, expiry on the monotonic clock)
        self.tokens: dict[str, tuple[str, float]] = {}
        # (account, our transaction id) -> record
        self.transactions: dict[tuple[str, str], dict[str, Any]] = {}
        # airtel_money_id -> (account, our id), collections
        self.by_airtel_id: dict[str, tuple[str, str]] = {}
        # (account, currency) -> records in `created_at` order, the transaction list
        self.by_currency: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.balances: dict[tuple[str, str], Decimal] = {}  # (account, currency)
        # (account, currency, DISB|COLL|...) for balance v2
        self.wallets: dict[tuple[str, str, str], Decimal] = {}

    # -- guards --------------------------------------------------------------------------

    def account_of(self, client_id: Any, client_secret: Any) -> str | None:
        """The account whose application has these credentials, else None."""
        name = self.by_client.get(client_id) if isinstance(client_id, str) else None
        if name is None or not isinstance(client_secret, str):
            return None
        if not constant_time_equals(client_secret, self.accounts[name].client_secret):
            return None
        return name

    def issue_token(self, account: str, lifetime: float) -> str:
        value = secrets.token_urlsafe(24)
        self.tokens[value] = (account, time.monotonic() + lifetime)
        return value

    def _token_account(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        held = self.tokens.get(header.removeprefix("Bearer ").strip())
        if not header.startswith("Bearer ") or held is None or held[1] < time.monotonic():
            return None
        return held[0]

    async def guard(self, request: Request) -> Response[Any] | Call:
        """Token, injected faults, X-Country and X-Currency, in Airtel's order and words;
        the call is the token's account's."""
        account = self._token_account(request)
        refused = await self.gate(lambda: None if account else invalid_token(), _fault)
        if refused is None and account is not None:
            refused = _country_refusal(self.accounts[account], request)
        if refused is not None or account is None:
            return refused or invalid_token()
        return Call(
            account,
            self.accounts[account],
            request.headers["x-country"],
            request.headers["x-currency"],
        )

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

    def decrypt_pin(self, settings: AirtelSettings, pin: str, version: str) -> str | None:
        if settings.pin_encryption == "v2" or version == "v3":
            scheme: Any = padding.OAEP(
                mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
            )
        else:
            scheme = padding.PKCS1v15()
        try:
            plain = self.private_key.decrypt(base64.b64decode(pin, validate=True), scheme).decode()
        except (ValueError, TypeError, UnicodeDecodeError):
            return None
        # OpenSSL's implicit rejection answers garbage PKCS#1 v1.5 input with random bytes
        # instead of an error: what is not a PIN (4 to 6 digits) was not encrypted right
        return plain if plain.isascii() and plain.isdigit() and 4 <= len(plain) <= 6 else None

    # -- money ---------------------------------------------------------------------------

    def balance_of(self, account: str, currency: str) -> Decimal:
        return self.balances.setdefault((account, currency), START_BALANCE)

    def wallet_of(self, account: str, currency: str, wallet: str) -> Decimal:
        return self.wallets.get((account, currency, wallet), START_BALANCE)

    def move(self, account: str, currency: str, wallet: str, delta: Decimal) -> None:
        """Move the account's v1 balance and v2 wallet (COLL for collections and refunds,
        DISB for disbursements) by `delta`."""
        self.balances[(account, currency)] = self.balance_of(account, currency) + delta
        self.wallets[(account, currency, wallet)] = (
            self.wallet_of(account, currency, wallet) + delta
        )

    def listed(
        self, account: str, currency: str, low: int, high: int
    ) -> tuple[list[dict[str, Any]], int, int]:
        """The account's transaction list in `currency` and the slice of it made from
        `low` to `high` (milliseconds, both included), found by bisection, not a scan."""
        records = self.by_currency.get((account, currency), [])
        start = bisect.bisect_left(records, low, key=_created)
        end = bisect.bisect_right(records, high, key=_created)
        return records, start, end

    def find(self, account: str, transaction_id: str) -> dict[str, Any] | None:
        """The account's transaction of this id: another account's is not found."""
        return self.transactions.get((account, transaction_id))

    def find_by_airtel_id(self, account: str, airtel_money_id: str) -> dict[str, Any] | None:
        held = self.by_airtel_id.get(airtel_money_id)
        return self.transactions.get(held) if held and held[0] == account else None

    def add(self, record: dict[str, Any]) -> None:
        key = (record["account"], record["id"])
        self.transactions[key] = record
        listed = self.by_currency.setdefault((record["account"], record["currency"]), [])
        bisect.insort(listed, record, key=_created)  # at the end, unless the clock stepped back
        if record["kind"] == "collection":
            self.by_airtel_id[record["airtel_money_id"]] = key

    @staticmethod
    def international(country: str, national: str) -> str:
        """The wallet's number in international digits (`2547...`), as the ledger keeps it
        (Airtel's bodies carry the national number and the country apart)."""
        try:
            return phones.international_digits(phones.to_e164(national, country))
        except InvalidRequest:
            return national

    def record(self, record: dict[str, Any], **entry: Any) -> None:
        """The ledger entry of a transaction, keyed by account and id, naming both."""
        account = record["account"]
        key = record["id"] if account == "default" else f"{account}:{record['id']}"
        self.ledger.record(key, id=record["id"], account=account, **entry)

    # -- callbacks -----------------------------------------------------------------------

    def send_callback(self, url: str | None, record: dict[str, Any]) -> None:
        """The callback of the record's application: its URL (the portal's `callback_url`,
        else `url`), its callback authentication and private key."""
        settings = self.accounts[record["account"]]
        url = settings.callback_url or url
        if not url:
            return
        transaction = {
            "id": record["id"],
            "message": record["message"],
            "status_code": record["status"],
            "airtel_money_id": record["airtel_money_id"],
        }
        raw = compact({"transaction": transaction})
        if settings.callback_auth:
            digest = callback_hash(settings.callback_private_key, raw)
            raw = raw[:-1] + b',"hash":"' + digest.encode() + b'"}'
        self.notify(url, raw, case=scenario(record["msisdn"]), delay=settings.callback_delay)


def airtel_id(prefix: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%y%m%d.%H%M")
    return f"{prefix}{stamp}.{secrets.token_hex(3).upper()}"


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[AirtelSandbox]


def _created(record: dict[str, Any]) -> int:
    return record["created_at"]

"""The Orange sandbox's state, for its three API families and every account: tokens (each
of one family and of the accounts whose credentials asked for it), WebPay payments by
pay_token, Cameroon payments by payToken, Sonatel transactions by id, each of the account
that created it."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from litestar.di import NamedDependency
from mmo_core.simulation import Simulation

from mmo_orange.settings import OrangeSettings
from mmo_orange.wire import (
    MpPay,
    SonatelMerchantCallback,
    SonatelParty,
    SonatelTransaction,
    WebPayment,
)


@dataclass
class Grant:
    """A bearer token: of one family, for the accounts whose credentials asked for it (two
    accounts may share an application's credentials; then its token serves both)."""

    family: str
    accounts: tuple[str, ...]
    expiry: float


@dataclass
class WebTxn:
    account: str
    pay_token: str
    notif_token: str
    body: WebPayment
    cc: str
    created: float
    status: str = "INITIATED"
    txnid: str | None = None
    final: str | None = None
    final_at: float = 0.0
    payer: str | None = None


@dataclass
class MpTxn:
    account: str
    pay_token: str
    kind: str
    used: bool = False
    body: MpPay | None = None
    txnid: str | None = None
    final: tuple[str, str | None, str] | None = None
    final_at: float = 0.0
    pushes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SonatelTxn:
    account: str
    transaction_id: str
    kind: str
    body: SonatelTransaction
    status: str
    description: str | None = None
    final: tuple[str, str | None] | None = None
    final_at: float = 0.0


def settle_at(delay: float) -> float:
    """When a payment reads final: a little before its notification leaves, so a status
    query made on receipt of the notification (as the gateway does) already agrees."""
    return time.time() + max(delay - 0.02, delay * 0.5)


def credentials(settings: OrangeSettings, family: str) -> tuple[str, str]:
    """The client credentials of one family of an account."""
    if family == "webpay":
        return settings.client_id, settings.client_secret
    if family == "cameroon":
        return settings.cameroon_consumer_key, settings.cameroon_consumer_secret
    return settings.sonatel_client_id, settings.sonatel_client_secret


class OrangeSandbox(Simulation):
    def __init__(
        self, settings: OrangeSettings, accounts: dict[str, OrangeSettings] | None = None
    ) -> None:
        super().__init__()
        # the simulator's own switches (delay, auto-pay, OTP) are the first account's
        self.settings = settings
        self.accounts = dict(accounts or {"default": settings})
        # (family, client id, secret) -> the accounts holding them, for token requests
        self.clients: dict[tuple[str, str, str], tuple[str, ...]] = {}
        for name, account in self.accounts.items():
            for family in ("webpay", "cameroon", "sonatel"):
                key = (family, *credentials(account, family))
                self.clients[key] = (*self.clients.get(key, ()), name)
        self.tokens: dict[str, Grant] = {}  # bearer -> its grant
        self.web: dict[str, WebTxn] = {}  # by pay_token
        self.orders: set[tuple[str, str]] = set()  # (merchant_key, order_id) used
        self.mp: dict[str, MpTxn] = {}  # by payToken
        self.sonatel: dict[str, SonatelTxn] = {}  # by transactionId
        # (account, merchant code) -> its registered callback
        self.merchant_callbacks: dict[tuple[str, str], SonatelMerchantCallback] = {}
        self.retailer_balance = {name: 10_000_000 for name in self.accounts}
        self.autopay = settings.sim_autopay
        # seconds before a payment settles and notifies: `callback_delay`, changeable at run
        # time (POST /_simulator/orange/delay) so a test can keep a payment pending a while
        self.delay = settings.callback_delay
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def holders(self, family: str, user: str, password: str) -> tuple[str, ...]:
        """The accounts whose `family` credentials these are (none: refused)."""
        return self.clients.get((family, user, password), ())

    def new_token(self, lifetime: int, family: str, accounts: tuple[str, ...]) -> dict[str, Any]:
        value = secrets.token_urlsafe(24)
        self.tokens[value] = Grant(family, accounts, time.time() + lifetime)
        return {"token_type": "Bearer", "access_token": value, "expires_in": lifetime}

    def grant(self, header: str, family: str) -> Grant | None:
        """The grant of a `Bearer` header's token for `family`; None when unknown, not a
        bearer, or another family's (each family is its own host and token server)."""
        found = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        return found if found is not None and found.family == family else None

    def holder(self, grant: Grant, test: Callable[[OrangeSettings], bool]) -> str | None:
        """The first account of `grant` whose settings pass `test`, or None."""
        return next((name for name in grant.accounts if test(self.accounts[name])), None)

    def record(self, key: str, account: str, **entry: Any) -> None:
        """A ledger entry of `account` (GET /_simulator/ledger?account= filters on it)."""
        self.ledger.record(key, account=account, **entry)

    def pin_ok(self, party: SonatelParty, account: OrangeSettings) -> bool:
        """A Sonatel retailer's PIN, RSA-decrypted with the simulator's key."""
        if not party.encryptedPinCode:
            return False
        try:
            clear = self.private_key.decrypt(
                base64.b64decode(party.encryptedPinCode), padding.PKCS1v15()
            )
        except (ValueError, binascii.Error):
            return False
        return secrets.compare_digest(clear, account.sonatel_pin.encode())


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[OrangeSandbox]

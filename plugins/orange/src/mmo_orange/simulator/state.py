"""The Orange sandbox's state, for its three API families: tokens (shared), WebPay
payments by pay_token, Cameroon payments by payToken, Sonatel transactions by id."""

from __future__ import annotations

import base64
import binascii
import secrets
import time
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
class WebTxn:
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


class OrangeSandbox(Simulation):
    def __init__(self, settings: OrangeSettings) -> None:
        super().__init__()
        self.settings = settings
        self.tokens: dict[str, float] = {}  # bearer -> expiry (every family)
        self.web: dict[str, WebTxn] = {}  # by pay_token
        self.orders: set[tuple[str, str]] = set()  # (merchant_key, order_id) used
        self.mp: dict[str, MpTxn] = {}  # by payToken
        self.sonatel: dict[str, SonatelTxn] = {}  # by transactionId
        self.merchant_callbacks: dict[str, SonatelMerchantCallback] = {}  # by merchant code
        self.retailer_balance = 10_000_000
        self.autopay = settings.sim_autopay
        # seconds before a payment settles and notifies: `callback_delay`, changeable at run
        # time (POST /_simulator/orange/delay) so a test can keep a payment pending a while
        self.delay = settings.callback_delay
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def new_token(self, lifetime: int) -> dict[str, Any]:
        value = secrets.token_urlsafe(24)
        self.tokens[value] = time.time() + lifetime
        return {"token_type": "Bearer", "access_token": value, "expires_in": lifetime}

    def token_expiry(self, header: str) -> float | None:
        """The expiry of a `Bearer` header's token, None when unknown or not a bearer."""
        return self.tokens.get(header[7:]) if header.startswith("Bearer ") else None

    def pin_ok(self, party: SonatelParty) -> bool:
        """A Sonatel retailer's PIN, RSA-decrypted with the simulator's key."""
        if not party.encryptedPinCode:
            return False
        try:
            clear = self.private_key.decrypt(
                base64.b64decode(party.encryptedPinCode), padding.PKCS1v15()
            )
        except (ValueError, binascii.Error):
            return False
        return secrets.compare_digest(clear, self.settings.sonatel_pin.encode())


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[OrangeSandbox]

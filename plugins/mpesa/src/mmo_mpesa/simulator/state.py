"""The Daraja sandbox's state: tokens, STK pushes, B2C payments, C2B URLs, indexed by
what each product looks them up by."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from litestar import Request
from litestar.di import NamedDependency
from mmo_core.simulation import Scenario, Simulation

from mmo_mpesa.settings import MpesaSettings, bundled
from mmo_mpesa.simulator.daraja import receipt

OPENING_BALANCE = Decimal("1000000.00")


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
class C2BPayment:
    """A payment a customer made to a paybill or till on their own (C2B), once accepted."""

    phone: str
    amount: int
    receipt: str
    reference: str
    result_code: str = "0"
    done_at: float = 0.0


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


class MpesaSandbox(Simulation):
    def __init__(self, settings: MpesaSettings) -> None:
        super().__init__()
        self.settings = settings
        self.tokens: dict[str, float] = {}  # access token -> expiry
        self.pushes: dict[str, StkPush] = {}  # by CheckoutRequestID
        self.push_receipts: dict[str, StkPush] = {}  # by MpesaReceiptNumber
        # phone -> when its latest STK push ends: Daraja locks a subscriber meanwhile
        self.busy_until: dict[str, float] = {}
        self.transfers: dict[str, Transfer] = {}  # by OriginatorConversationID
        self.transfer_receipts: dict[str, Transfer] = {}  # by TransactionReceipt
        self.c2b_receipts: dict[str, C2BPayment] = {}  # by TransID
        self.paid_out = Decimal(0)  # successful B2C payments, for the utility account
        self.registered: dict[str, dict[str, str]] = {}  # C2B URLs by ShortCode
        self.private_key = serialization.load_pem_private_key(
            bundled("simulator-key.pem").encode(), password=None
        )

    @property
    def delay(self) -> float:
        return self.settings.callback_delay

    # -- credentials ---------------------------------------------------------------------

    def authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        expiry = self.tokens.get(header[7:])
        return expiry is not None and time.time() < expiry

    def credential_ok(self, body: dict[str, Any], name_field: str) -> bool:
        """The initiator's name, and its password decrypted from SecurityCredential."""
        if body.get(name_field) != self.settings.initiator_name:
            return False
        try:
            plain = self.private_key.decrypt(  # type: ignore[union-attr]
                base64.b64decode(str(body.get("SecurityCredential", ""))), padding.PKCS1v15()
            )
        except ValueError:
            return False
        return plain.decode(errors="replace") == self.settings.initiator_password

    # -- STK pushes and B2C payments -----------------------------------------------------

    def in_flight(self, phone: str, now: float) -> bool:
        """Whether an STK push to this phone is still being processed."""
        return self.busy_until.get(phone, 0.0) > now

    def add_push(self, push: StkPush) -> None:
        self.pushes[push.checkout_request_id] = push
        if push.receipt:
            self.push_receipts.setdefault(push.receipt, push)
        self.busy_until[push.phone] = max(self.busy_until.get(push.phone, 0.0), push.done_at)

    def add_transfer(self, transfer: Transfer) -> None:
        self.transfers[transfer.originator_id] = transfer
        self.transfer_receipts.setdefault(transfer.receipt, transfer)
        if transfer.result_code == "0":
            self.paid_out += transfer.amount

    def by_receipt(self, receipt_number: str) -> StkPush | Transfer | C2BPayment | None:
        """A B2C payment, an STK push or a C2B payment, by its M-Pesa receipt number."""
        if not receipt_number:
            return None
        return (
            self.transfer_receipts.get(receipt_number)
            or self.push_receipts.get(receipt_number)
            or self.c2b_receipts.get(receipt_number)
        )

    def utility(self) -> Decimal:
        """The B2C utility account's balance."""
        return OPENING_BALANCE - self.paid_out

    # -- callbacks -----------------------------------------------------------------------

    def send(
        self, url: str, payload: Any, *, case: Scenario = "success", wait: float | None = None
    ) -> None:
        """A callback, `callback_delay` (or `wait`) seconds later, as the scenario wants."""
        self.notify(
            url,
            msgspec.json.encode(payload),
            case=case,
            delay=self.delay if wait is None else wait,
        )


# How a route handler asks for the state: `sandbox: Sandbox` (Litestar's named dependency).
Sandbox = NamedDependency[MpesaSandbox]

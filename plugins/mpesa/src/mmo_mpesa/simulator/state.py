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


class Book:
    """What one Daraja app (an account of the gateway) holds: its STK pushes, B2C
    payments, C2B payments and C2B URLs, indexed. Nothing in one book is seen through
    another account's token."""

    def __init__(self, name: str, settings: MpesaSettings) -> None:
        self.name = name
        self.settings = settings
        self.pushes: dict[str, StkPush] = {}  # by CheckoutRequestID
        self.push_receipts: dict[str, StkPush] = {}  # by MpesaReceiptNumber
        self.transfers: dict[str, Transfer] = {}  # by OriginatorConversationID
        self.transfer_receipts: dict[str, Transfer] = {}  # by TransactionReceipt
        self.c2b_receipts: dict[str, C2BPayment] = {}  # by TransID
        self.paid_out = Decimal(0)  # successful B2C payments, for the utility account
        self.registered: dict[str, dict[str, str]] = {}  # C2B URLs by ShortCode

    @property
    def shortcodes(self) -> set[str]:
        """The shortcodes (and till) this app may use."""
        s = self.settings
        codes = (s.shortcode, s.b2c_shortcode, s.c2b_shortcode, s.till_number)
        return {code for code in codes if code}

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


class MpesaSandbox(Simulation):
    def __init__(
        self, settings: MpesaSettings, accounts: dict[str, MpesaSettings] | None = None
    ) -> None:
        super().__init__()
        accounts = accounts or {"default": settings}
        self.settings = settings  # the first account's: callback delay, C2B validation
        self.books = {name: Book(name, account) for name, account in accounts.items()}
        # (consumer key, consumer secret) -> account: each app's credentials get its tokens
        self.apps = {
            (book.settings.consumer_key, book.settings.consumer_secret): book
            for book in self.books.values()
        }
        # shortcode -> the accounts (apps) it belongs to
        self.owners: dict[str, set[str]] = {}
        for book in self.books.values():
            for code in book.shortcodes:
                self.owners.setdefault(code, set()).add(book.name)
        self.tokens: dict[str, tuple[Book, float]] = {}  # access token -> (its app, expiry)
        # phone -> when its latest STK push ends: Daraja locks a subscriber meanwhile,
        # whichever app pushed
        self.busy_until: dict[str, float] = {}
        self.private_key = serialization.load_pem_private_key(
            bundled("simulator-key.pem").encode(), password=None
        )

    @property
    def delay(self) -> float:
        return self.settings.callback_delay

    # -- credentials ---------------------------------------------------------------------

    def issue(self, book: Book, value: str, lifetime: float) -> None:
        self.tokens[value] = (book, time.time() + lifetime)

    def authorised(self, request: Request) -> Book | None:
        """The app whose live token the request carries."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        found = self.tokens.get(header[7:])
        if found is None or time.time() >= found[1]:
            return None
        return found[0]

    def foreign(self, book: Book, shortcode: str) -> bool:
        """Whether `shortcode` belongs to other apps only: Daraja refuses an app's token on
        a shortcode not linked to that app as an invalid token (see the README)."""
        owners = self.owners.get(shortcode)
        return owners is not None and book.name not in owners

    def credential_ok(self, book: Book, body: dict[str, Any], name_field: str) -> bool:
        """The app's initiator name, and its password decrypted from SecurityCredential."""
        if body.get(name_field) != book.settings.initiator_name:
            return False
        try:
            plain = self.private_key.decrypt(  # type: ignore[union-attr]
                base64.b64decode(str(body.get("SecurityCredential", ""))), padding.PKCS1v15()
            )
        except ValueError:
            return False
        return plain.decode(errors="replace") == book.settings.initiator_password

    # -- STK pushes and B2C payments -----------------------------------------------------

    def in_flight(self, phone: str, now: float) -> bool:
        """Whether an STK push to this phone is still being processed."""
        return self.busy_until.get(phone, 0.0) > now

    def add_push(self, book: Book, push: StkPush) -> None:
        book.pushes[push.checkout_request_id] = push
        if push.receipt:
            book.push_receipts.setdefault(push.receipt, push)
        self.busy_until[push.phone] = max(self.busy_until.get(push.phone, 0.0), push.done_at)

    def add_transfer(self, book: Book, transfer: Transfer) -> None:
        book.transfers[transfer.originator_id] = transfer
        book.transfer_receipts.setdefault(transfer.receipt, transfer)
        if transfer.result_code == "0":
            book.paid_out += transfer.amount

    def record(self, book: Book, key: str, **entry: Any) -> None:
        """A ledger entry of the app's account (`GET /_simulator/ledger?account=`)."""
        self.ledger.record(key, account=book.name, **entry)

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

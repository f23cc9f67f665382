"""Applying what an operator reported about a payment: the one function every path uses.

A callback (`callbacks`), a status poll (`worker`), reconciliation (`reconcile`) and the
resend of a never-received payment all end in `apply`:

1. compare the reported amount and phone number with the payment's: a mismatch is not
   applied (`mismatch`);
2. confirm an unauthenticated report of a final status with the operator's status API,
   when the provider's `confirm_callbacks` setting asks for it (`unconfirmed` when the
   status API does not say the same);
3. a report that the payment is `reversed` goes to `reversals.reported_by_operator`, which
   counts the money; anything else to `payments.apply_transition`.

It returns the payment afterwards and a flag: None (applied), `duplicate` (it already had
that status), `conflict` (it contradicts a final status), `mismatch` or `unconfirmed`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from mmo_core import money
from mmo_core.types import Failure, PaymentUpdate, StatusReport

from mmo_host import operator, payments, reversals
from mmo_host.gateway import Gateway
from mmo_host.records import PaymentRecord

log = logging.getLogger("mmo.reports")


@dataclass(frozen=True)
class Applied:
    row: PaymentRecord
    flag: str | None
    changed: bool
    # the status API's answer when the report was confirmed with it
    confirmed_by: StatusReport | None = None


def _matches(row: PaymentRecord, amount: Decimal | None, msisdn: str | None) -> bool:
    if amount is not None and money.to_minor(amount, row.currency) != row.amount_minor:
        return False
    return msisdn is None or msisdn == row.msisdn


async def confirm(
    gateway: Gateway,
    row: PaymentRecord,
    provider_reference: str | None,
    provider_transaction_id: str | None = None,
) -> StatusReport | None:
    """What the operator's status API says of the payment now (None: it did not say).

    The identifiers a report named are handed to the status hook as candidates where the
    payment has none (a lost initiate answer; a receipt only a callback told): the hook
    asks the operator by them and returns only what the operator confirms.
    """
    payment = await payments.core_payment(row)
    candidates: dict[str, Any] = {}
    if payment.provider_reference is None and provider_reference:
        candidates["provider_reference"] = provider_reference
    if payment.provider_transaction_id is None and provider_transaction_id:
        candidates["provider_transaction_id"] = provider_transaction_id
    if candidates:
        payment = msgspec.structs.replace(payment, **candidates)
    answer = await operator.ask(gateway, row, "status", expect=StatusReport, payment=payment)
    if not answer.ok:
        log.warning("could not confirm payment %s: %s", row.id, answer.describe())
        return None
    report: StatusReport = answer.value
    return report


@dataclass(frozen=True)
class Identifiers:
    provider_reference: str | None
    provider_transaction_id: str | None
    # the identifiers that disagreed with the payment's (or belong to another payment)
    conflicts: tuple[str, ...] = ()


async def identifiers(
    gateway: Gateway, row: PaymentRecord, said: PaymentUpdate | StatusReport | None
) -> Identifiers:
    """The operator identifiers to record from `said` (a trusted report, or the status
    answer that confirmed one): none that differs from what the payment holds, none that
    another payment of the provider already holds (a receipt is one payment's)."""
    if said is None:
        return Identifiers(None, None)
    kept: dict[str, str | None] = {}
    conflicts = []
    for name in ("provider_reference", "provider_transaction_id"):
        value = getattr(said, name)
        current = getattr(row, name)
        if value is None or value == current:
            kept[name] = None
        elif current is not None or await payments.held_by_another(row, name, value):
            conflicts.append(name)
            kept[name] = None
        else:
            kept[name] = value
    return Identifiers(
        kept["provider_reference"], kept["provider_transaction_id"], tuple(conflicts)
    )


async def apply(
    gateway: Gateway,
    row: PaymentRecord,
    report: PaymentUpdate | StatusReport,
    *,
    source: str,
    authenticated: bool,
    callback_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> Applied:
    """Apply an operator's report to the payment `row` (see the module's steps)."""
    msisdn = report.msisdn if isinstance(report, PaymentUpdate) else None
    if not _matches(row, report.amount, msisdn):
        log.warning("payment %s: a %s report disagrees on amount or phone", row.id, source)
        return Applied(row, "mismatch", False)
    detail = dict(detail or {})
    failure: Failure | None = report.failure
    confirmed: StatusReport | None = None
    required = gateway.context(row.provider, row.account).settings.confirm_callbacks
    # what vouches for the identifiers: the report itself, or the status API's answer
    vouched: PaymentUpdate | StatusReport | None = report if authenticated or not required else None
    if not authenticated and payments.is_final(report.status):
        detail["confirmation"] = "required" if required else "off"
        if required:
            confirmed = await confirm(
                gateway, row, report.provider_reference, report.provider_transaction_id
            )
            detail["confirmed_by_status"] = confirmed.status if confirmed else None
            if (
                confirmed is None
                or confirmed.status != report.status
                or not _matches(row, confirmed.amount, None)
            ):
                return Applied(row, "unconfirmed", False, confirmed)
            # the status API's failure is the operator's fuller account (its own code)
            failure = confirmed.failure or failure
            vouched = confirmed
    if report.status == "reversed":
        # the identifiers of a reversal are the reversal's (its own operator transaction)
        as_status = StatusReport(
            status="reversed",
            provider_reference=vouched.provider_reference if vouched else None,
            provider_transaction_id=vouched.provider_transaction_id if vouched else None,
            provider_data=report.provider_data,
        )
        transition = await reversals.reported_by_operator(
            gateway, row, as_status, source=source, callback_id=callback_id
        )
        flag = None if transition.changed else "duplicate"
        return Applied(transition.row, flag, transition.changed, confirmed)
    ids = await identifiers(gateway, row, vouched)
    if ids.conflicts:
        detail["identifier_conflict"] = list(ids.conflicts)
        log.warning("payment %s: a %s report names other %s", row.id, source, ids.conflicts)
    transition = await payments.apply_transition(
        gateway,
        row.id,
        report.status,
        source=source,
        provider_reference=ids.provider_reference,
        provider_transaction_id=ids.provider_transaction_id,
        provider_data=report.provider_data or None,
        failure=failure,
        callback_id=callback_id,
        detail=detail,
    )
    flag = None
    if ids.conflicts:
        flag = "identifier_conflict"
    elif not transition.changed:
        flag = "duplicate" if transition.previous == report.status else "conflict"
    return Applied(transition.row, flag, transition.changed, confirmed)


__all__ = ["Applied", "Identifiers", "apply", "confirm", "identifiers"]

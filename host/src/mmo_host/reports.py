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
    gateway: Gateway, row: PaymentRecord, provider_reference: str | None
) -> StatusReport | None:
    """What the operator's status API says of the payment now (None: it did not say)."""
    payment = await payments.core_payment(row)
    if payment.provider_reference is None and provider_reference:
        # the initiate answer was lost (timeout): the callback tells the operator's reference
        payment = msgspec.structs.replace(payment, provider_reference=provider_reference)
    answer = await operator.ask(gateway, row, "status", expect=StatusReport, payment=payment)
    if not answer.ok:
        log.warning("could not confirm payment %s: %s", row.id, answer.describe())
        return None
    return answer.value


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
    if not authenticated and payments.is_final(report.status):
        required = gateway.context(row.provider).settings.confirm_callbacks
        detail["confirmation"] = "required" if required else "off"
        if required:
            confirmed = await confirm(gateway, row, report.provider_reference)
            detail["confirmed_by_status"] = confirmed.status if confirmed else None
            if confirmed is None or confirmed.status != report.status:
                return Applied(row, "unconfirmed", False, confirmed)
            # the status API's failure is the operator's fuller account (its own code)
            failure = confirmed.failure or failure
    if report.status == "reversed":
        as_status = StatusReport(
            status="reversed",
            provider_reference=report.provider_reference,
            provider_transaction_id=report.provider_transaction_id,
            provider_data=report.provider_data,
        )
        transition = await reversals.reported_by_operator(
            gateway, row, as_status, source=source, callback_id=callback_id
        )
    else:
        transition = await payments.apply_transition(
            gateway,
            row.id,
            report.status,
            source=source,
            provider_reference=report.provider_reference,
            provider_transaction_id=report.provider_transaction_id,
            provider_data=report.provider_data or None,
            failure=failure,
            callback_id=callback_id,
            detail=detail,
        )
    flag = None
    if not transition.changed:
        flag = "duplicate" if transition.previous == report.status else "conflict"
    return Applied(transition.row, flag, transition.changed, confirmed)


__all__ = ["Applied", "apply", "confirm"]

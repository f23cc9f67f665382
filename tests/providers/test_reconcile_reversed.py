"""Reconciliation agrees with every operator about a fully reversed payment.

A reversal is its own operator transaction at most operators (a refund, a B2C back, a
Reversal API call), so the original payment's status may still read "succeeded" after it
is reversed: `mmo reconcile` must not call that a disagreement. Each payment is reversed
in full through the API (MTN in two parts), and reconciliation then checks it against
the operator's status API exactly as the `mmo reconcile` command does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from mmo_host import payments
from mmo_host.reconcile import reconcile

from tests import fake_provider
from tests.conftest import wait_for_status

PAYMENTS: dict[str, dict[str, Any]] = {
    "mpesa": {"amount": "150", "currency": "KES", "msisdn": "+254712345678"},
    "mtn_momo": {"amount": "150", "currency": "EUR", "msisdn": "+46701234567"},
    "airtel": {"amount": "5000", "currency": "UGX", "msisdn": "+256752605678"},
    "fake": {"amount": "1000", "currency": "TZS", "msisdn": "+255712345678"},
}
# MoMo refunds in parts: the host tells the plugin which refunds make the whole
IN_PARTS = {"mtn_momo": ("50", None)}


async def _reverse(api: Any, payment_id: str, amount: str | None) -> Any:
    body: dict[str, Any] = {"reason": "Order cancelled"}
    if amount is not None:
        body["amount"] = amount
    return await api.post(
        f"/api/v1/payments/{payment_id}/reversal",
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


@pytest.mark.parametrize("provider", sorted(PAYMENTS))
async def test_a_fully_reversed_payment_is_no_disagreement(api, host, provider: str) -> None:
    started = dt.datetime.now(dt.UTC)
    response = await api.post(
        "/api/v1/payments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": "collection",
            "provider": provider,
            "reference": "REC" + uuid.uuid4().hex[:6].upper(),
            **PAYMENTS[provider],
        },
    )
    assert response.status_code == 202, response.text
    created = response.json()
    if provider == "fake":
        # the fake operator sends no callback: its answer is applied as a callback would be
        fake_provider.OPERATOR[created["provider_reference"]]["status"] = "succeeded"
        await payments.apply_transition(
            host.gateway, uuid.UUID(created["id"]), "succeeded", source="callback"
        )
    done = await wait_for_status(api, created["id"], {"succeeded", "failed", "expired"})
    assert done["status"] == "succeeded", done
    for amount in IN_PARTS.get(provider, (None,)):
        reversed_ = await _reverse(api, created["id"], amount)
        assert reversed_.status_code in (200, 202), reversed_.text
    final = await wait_for_status(api, created["id"], {"reversed"}, timeout=20)
    assert final["amount_reversed"] == final["amount"]

    report = await reconcile(host.gateway, since=started)
    mine = [d for d in report.disagreements if d["id"] == created["id"]]
    errors = [e for e in report.errors if e["id"] == created["id"]]
    assert mine == [] and errors == [], (mine, errors)

"""Orange Money through the real host: WebPay and Orange Cameroon against the simulator."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.conftest import wait_for_status

SIM = "/_sim/orange"


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def create(api: httpx.AsyncClient, msisdn: str, currency: str, **extra: Any) -> dict:
    body = {
        "type": "collection",
        "amount": "1500",
        "currency": currency,
        "msisdn": msisdn,
        "provider": "orange",
        "reference": "ORD-" + uuid.uuid4().hex[:8],
    } | extra
    response = await api.post("/api/v1/payments", json=body, headers=key())
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


async def ledger(host) -> list[dict]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{host.url}{SIM}/_simulator/ledger")
    return response.json()["entries"]


async def autopay(host, on: bool) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{host.url}{SIM}/_simulator/orange/webpay", json={"autopay": on}
        )
    assert response.json() == {"autopay": on}


async def test_webpay_collection_redirects_and_succeeds(api, host):
    payment = await create(api, "+2250701234567", "XOF")
    assert payment["next_action"]["type"] == "redirect"
    assert f"{SIM}/payment/pay_token/" in payment["next_action"]["url"]
    done = await wait_for_status(api, payment["id"], {"succeeded"})
    assert done["provider_transaction_id"].startswith("MP")
    pay_token = payment["next_action"]["url"].rsplit("/", 1)[-1]
    entry = next(e for e in await ledger(host) if e["id"] == pay_token)
    assert entry["status"] == "SUCCESS"
    assert entry["amount"] == 1500 and entry["currency"] == "OUV"


async def test_webpay_declined_number_fails_with_orange_status(api, host):
    payment = await create(api, "+2250701230001", "XOF")
    done = await wait_for_status(api, payment["id"], {"failed"})
    assert done["failure"]["provider_code"] == "FAILED"
    pay_token = payment["next_action"]["url"].rsplit("/", 1)[-1]
    entry = next(e for e in await ledger(host) if e["id"] == pay_token)
    assert entry["status"] == "FAILED"


async def test_webpay_payment_page_submitted_by_the_payer(api, host):
    await autopay(host, False)
    try:
        payment = await create(api, "+2250701234567", "XOF")
        url = payment["next_action"]["url"]
        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
            assert page.status_code == 200 and 'name="otp"' in page.text
            await asyncio.sleep(0.2)
            still = (await api.get(f"/api/v1/payments/{payment['id']}")).json()
            assert still["status"] == "pending"
            wrong = await browser.post(url, data={"msisdn": "0701234567", "otp": "000000"})
            assert wrong.status_code == 400 and "OTP incorrect" in wrong.text
            sent = await browser.post(
                url, data={"msisdn": "0701234567", "otp": "123456", "action": "confirm"}
            )
        assert sent.status_code == 303
        assert sent.headers["location"].startswith("https://merchant.example/orange/return")
        done = await wait_for_status(api, payment["id"], {"succeeded"})
        assert done["status"] == "succeeded"
    finally:
        await autopay(host, True)


async def test_webpay_notification_with_wrong_notif_token_changes_nothing(api, host):
    await autopay(host, False)
    try:
        payment = await create(api, "+2250701234567", "XOF")
    finally:
        await autopay(host, True)
    url = host.gateway.context("orange").callback_url("callback")
    forged = {"status": "SUCCESS", "notif_token": "0" * 32, "txnid": "MP000000.0000.A00000"}
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=forged)
        assert response.status_code == 200
        bad_url = await client.post(url.replace("token=", "token=x"), json=forged)
        assert bad_url.status_code == 401
    await asyncio.sleep(0.3)
    after = (await api.get(f"/api/v1/payments/{payment['id']}")).json()
    assert after["status"] == "pending"


async def test_cameroon_collection_succeeds_through_the_notification(api, host):
    payment = await create(api, "+237690010000", "XAF")
    assert payment["next_action"] is None
    done = await wait_for_status(api, payment["id"], {"succeeded"})
    pay_token = done["provider_reference"]
    assert pay_token.startswith("MP")
    entry = next(e for e in await ledger(host) if e["id"] == pay_token)
    assert entry["status"] == "SUCCESSFULL" and entry["amount"] == "1500"


async def test_cameroon_insufficient_funds_fails_with_60019(api, host):
    payment = await create(api, "+237690010001", "XAF")
    done = await wait_for_status(api, payment["id"], {"failed"})
    assert done["failure"]["provider_code"] == "60019"
    assert "insuffisant" in done["failure"]["message"]


async def test_cameroon_cancelled_and_wrong_pin_fail(api, host):
    cancelled = await create(api, "+237690011032", "XAF")
    wrong_pin = await create(api, "+237690012001", "XAF")
    first = await wait_for_status(api, cancelled["id"], {"failed"})
    second = await wait_for_status(api, wrong_pin["id"], {"failed"})
    assert first["failure"]["provider_code"] == "CANCELLED"
    assert second["failure"]["provider_code"] == "60011"


async def test_cameroon_cashin_disbursement_succeeds(api, host):
    payment = await create(api, "+237655123456", "XAF", type="disbursement")
    done = await wait_for_status(api, payment["id"], {"succeeded"})
    assert done["provider_reference"].startswith("CI")
    entry = next(e for e in await ledger(host) if e["id"] == done["provider_reference"])
    assert entry["kind"] == "cashin"


async def test_webpay_refuses_disbursement(api):
    body = {
        "type": "disbursement",
        "amount": "1500",
        "currency": "XOF",
        "msisdn": "+2250701234567",
        "provider": "orange",
        "reference": "ORD-pay",
    }
    response = await api.post("/api/v1/payments", json=body, headers=key())
    assert response.status_code == 422


# -- Senegal (Sonatel) ----------------------------------------------------------------------


async def sonatel_setup(host) -> None:
    """`mmo setup orange`: register the merchant callback URL and apiKey with Sonatel."""
    provider = host.gateway.registry.providers["orange"]
    report = await provider.call("setup", context=host.gateway.context("orange"))
    assert "registered" in report.lines[0]


async def test_senegal_payment_and_cashin_succeed_through_notifications(api, host):
    await sonatel_setup(host)
    payment = await create(api, "+221771234567", "XOF")
    cashin = await create(api, "+221781234567", "XOF", type="disbursement")
    done = await wait_for_status(api, payment["id"], {"succeeded"})
    paid = await wait_for_status(api, cashin["id"], {"succeeded"})
    assert done["provider_reference"].startswith("MP")
    assert paid["provider_reference"].startswith("CI")
    entries = {e["id"]: e for e in await ledger(host)}
    assert entries[done["provider_reference"]]["status"] == "SUCCESS"
    assert entries[done["provider_reference"]]["kind"] == "payment"
    assert entries[done["provider_reference"]]["reference"] == payment["id"]
    assert entries[paid["provider_reference"]]["kind"] == "cashin"
    assert entries[paid["provider_reference"]]["amount"] == 1500


async def test_senegal_declines_keep_sonatel_codes(api, host):
    await sonatel_setup(host)
    poor = await create(api, "+221770010001", "XOF")
    cancelled = await create(api, "+221770011032", "XOF")
    first = await wait_for_status(api, poor["id"], {"failed"})
    second = await wait_for_status(api, cancelled["id"], {"failed"})
    assert (
        first["failure"]["provider_code"] == "2011" and "insuffisant" in first["failure"]["message"]
    )
    assert second["failure"]["provider_code"] == "CANCELLED"


async def test_senegal_callback_with_a_wrong_api_key_changes_nothing(api, host):
    await sonatel_setup(host)
    payment = await create(api, "+221770019990", "XOF")  # succeeds, never notified
    pending = (await api.get(f"/api/v1/payments/{payment['id']}")).json()
    assert pending["status"] == "pending"
    forged = {
        "apiKey": "not-the-key",
        "transactionId": pending["provider_reference"],
        "status": "FAILED",
        "reference": payment["id"],
        "amount": {"unit": "XOF", "value": 1500},
        "type": "MERCHANT_PAYMENT",
    }
    url = host.gateway.context("orange").callback_url("callback")
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=forged)
    assert response.status_code == 401
    await asyncio.sleep(0.3)
    after = (await api.get(f"/api/v1/payments/{payment['id']}")).json()
    assert after["status"] == "pending"

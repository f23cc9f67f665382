"""Airtel Money through the real host with message signing on: v2 collections and v3
disbursements end by the simulator's real callbacks after it checked `x-signature` /
`x-key`; balance v2 through the gateway's own context; the ledger agrees."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for_status
from tests.providers.test_airtel_flows_host import create


@pytest.fixture
def signing(host: Any) -> Iterator[Any]:
    """v2 collection / refund, v3 disbursement and balance v2 for the plugin; the mounted
    simulator shares the settings and checks signatures on those paths."""
    settings = host.gateway.settings["airtel"]
    saved = (
        settings.collection_version,
        settings.disbursement_version,
        settings.balance_version,
        settings.balance_types,
    )
    settings.collection_version = "v2"
    settings.disbursement_version = "v3"
    settings.balance_version = "v2"
    settings.balance_types = "COLL,DISB"
    try:
        yield settings
    finally:
        (
            settings.collection_version,
            settings.disbursement_version,
            settings.balance_version,
            settings.balance_types,
        ) = saved


async def ledger(host: Any, payment_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        entries = (await http.get(f"{host.url}/_sim/airtel/_simulator/ledger")).json()["entries"]
    return next(e for e in entries if e["id"] == payment_id)


async def balances(host: Any) -> dict[str, Decimal]:
    provider = host.gateway.registry.get("airtel")
    report = await provider.call("balance", context=host.gateway.context("airtel"))
    return {b.account: b.available for b in report.balances}


async def test_signed_collection_and_disbursement_end_by_callback(api, host, signing) -> None:
    before = await balances(host)
    assert set(before) == {"UG COLL", "UG DISB"}
    collected = await create(api)
    assert collected["status"] == "pending"
    done = await wait_for_status(api, collected["id"], {"succeeded"})
    entry = await ledger(host, collected["id"])
    assert (entry["kind"], entry["status"], entry["signed"]) == ("collection", "TS", True)
    assert done["provider_transaction_id"] == entry["airtel_money_id"]

    paid_out = await create(api, type="disbursement", amount="2500", reference="Payout42")
    done = await wait_for_status(api, paid_out["id"], {"succeeded"})
    entry = await ledger(host, paid_out["id"])
    assert (entry["kind"], entry["status"], entry["amount"]) == ("disbursement", "TS", "2500")
    assert entry["signed"] is True  # came in on /standard/v3/disbursements
    assert done["provider_transaction_id"] == entry["airtel_money_id"]

    after = await balances(host)
    assert after["UG COLL"] == before["UG COLL"] + 5000
    assert after["UG DISB"] == before["UG DISB"] - 2500


async def test_signed_collection_declined_by_test_number(api, host, signing) -> None:
    created = await create(api, msisdn="+256752600001")
    failed = await wait_for_status(api, created["id"], {"failed"})
    entry = await ledger(host, created["id"])
    assert (entry["status"], entry["response_code"], entry["signed"]) == (
        "TF",
        "DP00800001007",
        True,
    )
    assert failed["failure"]["provider_code"] in ("TF", "DP00800001007")

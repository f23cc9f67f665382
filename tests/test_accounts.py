"""Several accounts per provider through the public API: each payment reaches the right
account of the right simulator, callbacks are verified per account, a breaker opened on
one account leaves the others serving (and the same operator's other account takes over).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from mmo_core.testing import serving
from mmo_host.app import create_app
from mmo_host.config import HostConfig

from tests.conftest import API_KEY, _free_port, host_environ

HEADERS = {"Authorization": f"Bearer {API_KEY}"}

# Example Pay (the template provider): two accounts with their own credentials
EXAMPLE_TOML = """
[providers.example.accounts.east]
client_id = "east-client"
client_secret = { env = "EAST_SECRET" }
webhook_secret = { env = "EAST_WEBHOOK" }
markets = ["KE", "UG"]
priority = 10
callback_delay = 0.05

[providers.example.accounts.west]
client_id = "west-client"
client_secret = { env = "WEST_SECRET" }
webhook_secret = { env = "WEST_WEBHOOK" }
markets = ["KE", "GH/GHS", "CI"]
callback_delay = 0.05
"""
EXAMPLE_SECRETS = {
    "EAST_SECRET": "east-client-secret-value",
    "EAST_WEBHOOK": "east-webhook-secret-value",
    "WEST_SECRET": "west-client-secret-value",
    "WEST_WEBHOOK": "west-webhook-secret-value",
}


@contextlib.asynccontextmanager
async def gateway_with(
    dsn: str, tmp_path: Path, toml: str, providers: str, **environ: str
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """A host on its own port with `toml` as its mmo.toml."""
    config_file = tmp_path / "mmo.toml"
    config_file.write_text(toml)
    port = _free_port()
    config = HostConfig.from_env(
        host_environ(
            dsn,
            MMO_PUBLIC_URL=f"http://127.0.0.1:{port}",
            MMO_PORT=str(port),
            MMO_CONFIG=str(config_file),
            MMO_ENABLED_PROVIDERS=providers,
            **environ,
        )
    )
    app = create_app(config)
    async with (
        serving(app, port=port) as served,
        httpx.AsyncClient(base_url=served.url, headers=HEADERS, timeout=20) as client,
    ):
        yield app.state.gateway, client


async def pay(client: httpx.AsyncClient, msisdn: str, currency: str, **extra: Any) -> dict:
    response = await client.post(
        "/api/v1/payments",
        json={
            "type": "collection",
            "amount": "150",
            "currency": currency,
            "msisdn": msisdn,
            "reference": "ACC-" + uuid.uuid4().hex[:8],
        }
        | extra,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return response.json()


async def final(client: httpx.AsyncClient, payment_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = (await client.get(f"/api/v1/payments/{payment_id}")).json()
        if body["status"] not in ("new", "pending", "unknown"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"payment {payment_id} stayed {body['status']}")
        await asyncio.sleep(0.05)


async def ledger(client: httpx.AsyncClient, provider: str, account: str) -> list[dict]:
    response = await client.get(f"/_sim/{provider}/_simulator/ledger", params={"account": account})
    response.raise_for_status()
    return list(response.json()["entries"])


async def open_breaker(gateway: Any, key: str) -> None:
    for _ in range(gateway.config.breaker_threshold):
        await gateway.breakers.failure(key)
    assert (await gateway.breakers.state(key)).state == "open"


async def test_example_accounts_route_verify_and_fall_back(migrated_db, clean_db, tmp_path):
    async with gateway_with(migrated_db, tmp_path, EXAMPLE_TOML, "example", **EXAMPLE_SECRETS) as (
        gateway,
        client,
    ):
        assert sorted(gateway.accounts.get("example", {})) == ["east", "west"], (
            gateway.configuration_errors
        )
        # by priority where both serve, by market where one does, as named when named
        kenyan = await pay(client, "+254712345678", "KES", provider="example")
        ghanaian = await pay(client, "+233244345678", "GHS", provider="example")
        named = await pay(client, "+254712345678", "KES", provider="example", account="west")
        assert [p["account"] for p in (kenyan, ghanaian, named)] == ["east", "west", "west"]
        assert kenyan["routing"]["account"] == "east"
        for payment in (kenyan, ghanaian, named):
            assert (await final(client, payment["id"]))["status"] == "succeeded"
        # Example Pay's reference is our payment id
        east = {e["reference"] for e in await ledger(client, "example", "east")}
        west = {e["reference"] for e in await ledger(client, "example", "west")}
        assert east == {kenyan["id"]}
        assert west == {ghanaian["id"], named["id"]}

        # a callback made for one account is refused on another
        row = await _callback_of(kenyan["id"])
        assert row["account"] == "east" and row["verified"] is True
        crossed = await client.post(
            row["path"],
            params={**row["query"], "account": "west"},
            content=bytes(row["body"]),
            headers={k: v for k, v in row["headers"].items() if k.startswith("x-example")},
        )
        assert crossed.status_code == 401, crossed.text
        unknown = await client.post(
            row["path"], params={**row["query"], "account": "north"}, content=b"{}"
        )
        assert unknown.status_code == 404

        # an account that does not exist, or does not serve the payment: 422 saying so
        for extra, code in (({"account": "north"}, "unknown_account"),):
            refused = await client.post(
                "/api/v1/payments",
                json={
                    "type": "collection",
                    "amount": "150",
                    "currency": "KES",
                    "msisdn": "+254712345678",
                    "reference": "ACC-bad",
                    "provider": "example",
                }
                | extra,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            assert refused.status_code == 422 and refused.json()["error"]["code"] == code
        refused = await client.post(
            "/api/v1/payments",
            json={
                "type": "collection",
                "amount": "150",
                "currency": "GHS",
                "msisdn": "+233244345678",
                "reference": "ACC-bad",
                "provider": "example",
                "account": "east",
            },
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "account_not_serving"

        # east's breaker open: west, the same operator's other account, takes KE payments
        await open_breaker(gateway, "example/east")
        fallback = await pay(client, "+254712345678", "KES", provider="example")
        assert fallback["account"] == "west"
        assert fallback["routing"]["reason"] == "fallback"
        assert fallback["routing"]["fallback_from"] == "east"
        assert (await final(client, fallback["id"]))["status"] == "succeeded"
        # and an account that alone serves a market is not touched by east's breaker
        assert (await pay(client, "+233244345678", "GHS", provider="example"))["account"] == "west"

        # the catalogue lists the accounts, each with its own breaker, never a secret
        catalogue = (await client.get("/api/v1/providers")).json()["data"]
        example = next(p for p in catalogue if p["name"] == "example")
        shown = {a["name"]: a for a in example["accounts"]}
        assert shown["east"]["markets"] == ["KE", "UG"] and shown["east"]["up"] is False
        assert shown["west"]["up"] is True and example["up"] is True
        text = str(catalogue)
        assert not any(secret in text for secret in EXAMPLE_SECRETS.values())


async def test_an_ambiguous_configuration_disables_the_provider_and_says_why(migrated_db, tmp_path):
    toml = '[providers.example.accounts.a]\nmarkets = ["KE"]\n[providers.example.accounts.b]\n'
    (tmp_path / "mmo.toml").write_text(toml)
    config = HostConfig.from_env(
        host_environ(
            migrated_db, MMO_CONFIG=str(tmp_path / "mmo.toml"), MMO_ENABLED_PROVIDERS="example"
        )
    )
    app = create_app(config)
    errors = app.state.gateway.configuration_errors
    assert "example" not in app.state.gateway.registry.providers
    assert "a and b both take KE/KES collection" in errors["example"]


async def _callback_of(payment_id: str) -> dict[str, Any]:
    from mmo_host import db
    from mmo_host.records import CallbackRecord

    row = await db.fetchrow_as(
        CallbackRecord,
        "SELECT * FROM callbacks WHERE payment_id = $1 ORDER BY received_at LIMIT 1",
        uuid.UUID(payment_id),
    )
    assert row is not None, "no callback kept for the payment"
    return {f: getattr(row, f) for f in row.__struct_fields__}

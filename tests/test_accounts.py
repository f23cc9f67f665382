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


# -- the real operators: MTN Uganda and Ghana, Airtel Kenya and Uganda, two M-Pesa paybills

OPERATOR_SECRETS = {
    "MTN_UG_COLL_KEY": "ug0c11ec710c74fbd9e4bd0a1c2b3d4e5",
    "MTN_UG_COLL_API_KEY": "ug1b2c3d4e5f60718293a4b5c6d7e8f90",
    "MTN_UG_DISB_KEY": "ug5b0125e3e64c1f8a7b6c5d4e3f2a10",
    "MTN_UG_DISB_API_KEY": "ug2c3d4e5f60718293a4b5c6d7e8f90a1",
    "MTN_UG_REMIT_KEY": "ug7e3175ce9a2b4c6d8e0f1a2b3c4d5e6f",
    "MTN_UG_REMIT_API_KEY": "ug3d4e5f60718293a4b5c6d7e8f90a1b2",
    "MTN_GH_REMIT_KEY": "gh7e3175ce9a2b4c6d8e0f1a2b3c4d5e6f",
    "MTN_GH_REMIT_API_KEY": "gh3d4e5f60718293a4b5c6d7e8f90a1b2",
    "MTN_GH_COLL_KEY": "gh0c11ec710c74fbd9e4bd0a1c2b3d4e5",
    "MTN_GH_COLL_API_KEY": "gh1b2c3d4e5f60718293a4b5c6d7e8f90",
    "MTN_GH_DISB_KEY": "gh5b0125e3e64c1f8a7b6c5d4e3f2a10",
    "MTN_GH_DISB_API_KEY": "gh2c3d4e5f60718293a4b5c6d7e8f90a1",
    "AIRTEL_KE_SECRET": "airtel-kenya-client-secret",
    "AIRTEL_UG_SECRET": "airtel-uganda-client-secret",
    "MPESA_A_SECRET": "paybill-a-consumer-secret",
    "MPESA_A_PASSKEY": "a1" * 32,
    "MPESA_B_SECRET": "paybill-b-consumer-secret",
    "MPESA_B_PASSKEY": "b2" * 32,
}


def _mtn(name: str, country: str, env: str, users: tuple[str, str, str]) -> str:
    up = country.upper()
    return f"""
[providers.mtn_momo.accounts.{name}]
target_environment = "{env}"
markets = ["{up}"]
collection_api_user = "{users[0]}"
collection_subscription_key = {{ env = "MTN_{up}_COLL_KEY" }}
collection_api_key = {{ env = "MTN_{up}_COLL_API_KEY" }}
disbursement_api_user = "{users[1]}"
disbursement_subscription_key = {{ env = "MTN_{up}_DISB_KEY" }}
disbursement_api_key = {{ env = "MTN_{up}_DISB_API_KEY" }}
remittance_api_user = "{users[2]}"
remittance_subscription_key = {{ env = "MTN_{up}_REMIT_KEY" }}
remittance_api_key = {{ env = "MTN_{up}_REMIT_API_KEY" }}
callback_delay = 0.05
"""


OPERATORS_TOML = (
    _mtn(
        "uganda",
        "ug",
        "mtnuganda",
        (
            "3e1c7a52-5f3e-4d8a-9c61-2e7f3a4b5c6d",
            "4c2d8b63-6a4f-4e9b-8d72-3f8a4b5c6d7e",
            "7a3e9c74-7b5a-4fac-9e83-4a9b5c6d7e8f",
        ),
    )
    + _mtn(
        "ghana",
        "gh",
        "mtnghana",
        (
            "5f1c7a52-5f3e-4d8a-9c61-2e7f3a4b5c6d",
            "6d2d8b63-6a4f-4e9b-8d72-3f8a4b5c6d7e",
            "8b3e9c74-7b5a-4fac-9e83-4a9b5c6d7e8f",
        ),
    )
    + """
[providers.airtel.accounts.kenya]
client_id = "airtel-kenya-client"
client_secret = { env = "AIRTEL_KE_SECRET" }
country = "KE"
currency = "KES"
countries = "KE"
markets = ["KE"]
callback_delay = 0.05

[providers.airtel.accounts.uganda]
client_id = "airtel-uganda-client"
client_secret = { env = "AIRTEL_UG_SECRET" }
country = "UG"
currency = "UGX"
countries = "UG"
markets = ["UG"]
callback_delay = 0.05

[providers.mpesa.accounts.paybill-a]
consumer_key = "paybill-a-consumer-key"
consumer_secret = { env = "MPESA_A_SECRET" }
shortcode = "600100"
passkey = { env = "MPESA_A_PASSKEY" }
operations = ["collection"]
priority = 10
callback_delay = 0.05

[providers.mpesa.accounts.paybill-b]
consumer_key = "paybill-b-consumer-key"
consumer_secret = { env = "MPESA_B_SECRET" }
shortcode = "600200"
passkey = { env = "MPESA_B_PASSKEY" }
b2c_shortcode = "600997"
operations = ["collection", "disbursement"]
callback_delay = 0.05
"""
)

# (type, number, currency) -> (provider, account) it must reach, with nothing named
EXPECTED = [
    ("collection", "+256772345678", "UGX", "mtn_momo", "uganda"),
    ("collection", "+233244345678", "GHS", "mtn_momo", "ghana"),
    ("collection", "+254733345678", "KES", "airtel", "kenya"),
    ("collection", "+256702345678", "UGX", "airtel", "uganda"),
    ("collection", "+254712345678", "KES", "mpesa", "paybill-a"),
    ("disbursement", "+254712345678", "KES", "mpesa", "paybill-b"),
]
OTHER = {
    ("mtn_momo", "uganda"): "ghana",
    ("mtn_momo", "ghana"): "uganda",
    ("airtel", "kenya"): "uganda",
    ("airtel", "uganda"): "kenya",
    ("mpesa", "paybill-a"): "paybill-b",
    ("mpesa", "paybill-b"): "paybill-a",
}


def _holds(entries: list[dict], payment: dict) -> bool:
    """Whether one of the ledger's entries is this payment (by any of its identifiers)."""
    ids = {payment["id"], payment.get("provider_reference"), payment.get("provider_transaction_id")}
    ids.discard(None)
    return any(
        str(value) in ids or str(value).rsplit(":", 1)[-1] in ids
        for entry in entries
        for value in entry.values()
    )


async def test_every_account_of_every_operator_serves_its_own_payments(
    migrated_db, clean_db, tmp_path
):
    from tests.conftest import LOG_SCAN

    LOG_SCAN.secrets.update(OPERATOR_SECRETS.values())
    async with gateway_with(
        migrated_db, tmp_path, OPERATORS_TOML, "mtn_momo,airtel,mpesa", **OPERATOR_SECRETS
    ) as (gateway, client):
        assert gateway.configuration_errors == {}
        paid = []
        for kind, msisdn, currency, provider, account in EXPECTED:
            created = await pay(client, msisdn, currency, type=kind)
            assert (created["provider"], created["account"]) == (provider, account), created
            paid.append(created)
        for created in paid:
            done = await final(client, created["id"], timeout=30)
            assert done["status"] == "succeeded", done
            # in its own account's ledger, and not in the other account's
            mine = await ledger(client, done["provider"], done["account"])
            other = await ledger(
                client, done["provider"], OTHER[(done["provider"], done["account"])]
            )
            assert _holds(mine, done), (done["provider"], done["account"])
            assert not _holds(other, done), (done["provider"], done["account"])

        # every callback was verified with its own account's secret; replayed to another
        # account of the same operator, it is refused
        for created in paid:
            row = await _callback_of(created["id"])
            assert row["account"] == created["account"] and row["verified"] is True
            other = OTHER[(created["provider"], created["account"])]
            crossed = await client.request(
                row["method"],
                row["path"],
                params={**row["query"], "account": other},
                content=bytes(row["body"]),
                headers={"content-type": row["headers"].get("content-type", "application/json")},
            )
            assert crossed.status_code == 401, (created["provider"], crossed.text)

        # balances are per account; an account the provider lacks is a 422
        for account in ("uganda", "ghana"):
            balance = await client.get(
                "/api/v1/admin/providers/mtn_momo/balance", params={"account": account}
            )
            assert balance.status_code == 200, balance.text
            assert balance.json()["provider_account"] == account
        currencies = {
            account: {
                b["currency"]
                for b in (
                    await client.get(
                        "/api/v1/admin/providers/airtel/balance", params={"account": account}
                    )
                ).json()["data"]
            }
            for account in ("kenya", "uganda")
        }
        assert currencies == {"kenya": {"KES"}, "uganda": {"UGX"}}, currencies
        missing = await client.get(
            "/api/v1/admin/providers/mtn_momo/balance", params={"account": "kenya"}
        )
        assert missing.status_code == 422 and missing.json()["error"]["code"] == "unknown_account"

        # a breaker open on one account leaves the others serving
        provider = gateway.registry.get("mtn_momo")
        from mmo_host.breaker import breaker_key

        await open_breaker(gateway, breaker_key(provider, "UG", "uganda"))
        ghana = await pay(client, "+233244345678", "GHS")
        assert ghana["account"] == "ghana"
        assert (await final(client, ghana["id"], timeout=30))["status"] == "succeeded"
        airtel = gateway.registry.get("airtel")
        await open_breaker(gateway, breaker_key(airtel, "KE", "kenya"))
        ugandan = await pay(client, "+256702345678", "UGX")
        assert ugandan["account"] == "uganda"
        assert (await final(client, ugandan["id"], timeout=30))["status"] == "succeeded"
        # and where another account of the same operator serves the payment, it takes over
        await open_breaker(gateway, breaker_key(gateway.registry.get("mpesa"), "KE", "paybill-a"))
        moved = await pay(client, "+254712345678", "KES")
        assert moved["account"] == "paybill-b"
        assert moved["routing"]["reason"] == "fallback"
        done = await final(client, moved["id"], timeout=30)
        assert done["status"] == "succeeded"
        assert _holds(await ledger(client, "mpesa", "paybill-b"), done)


def test_the_documented_mmo_toml_loads_every_account(tmp_path):
    """docs/configuration.md's example, its secrets given as it says: every account loads."""
    import re

    from mmo_host.app import build_registry
    from mmo_host.gateway import Gateway

    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert example is not None
    text = example.group(1).replace("/run/secrets/", f"{tmp_path}/")
    for name in re.findall(r'file = "[^"]*/([^"/]+)"', text):
        (tmp_path / name).write_text(f"{name}-value\n")
    environ = {name: f"{name.lower()}-value" for name in re.findall(r'env = "(\w+)"', text)}
    (tmp_path / "mmo.toml").write_text(text)
    config = HostConfig.from_env(
        environ
        | {
            "MMO_CONFIG": str(tmp_path / "mmo.toml"),
            "MMO_ENABLED_PROVIDERS": "mtn_momo,airtel,mpesa,orange",
        }
    )
    gateway = Gateway(config, build_registry(config))
    assert gateway.configuration_errors == {}
    loaded = {f"{p}/{a}" for p, accounts in gateway.accounts.items() for a in accounts}
    assert loaded == {
        "mtn_momo/uganda",
        "mtn_momo/ghana",
        "airtel/kenya",
        "airtel/uganda",
        "mpesa/paybill-a",
        "mpesa/paybill-b",
        "orange/ivory-coast",
    }
    assert gateway.accounts["mtn_momo"]["ghana"].settings.collection_api_key == (
        "mtn_gh_collection_api_key-value"
    )

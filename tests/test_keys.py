"""Clients and keys: hashed keys with scopes, rotation, revocation, the environment's keys.

Through HTTP against the suite's gateway, and `mmo keys` as a real process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from mmo_core.testing import serving
from mmo_host import auth, db, keys
from mmo_host.app import build_registry, create_app
from mmo_host.config import HostConfig

from tests.conftest import API_KEY, OTHER_KEY, _free_port, host_environ, wait_for_status

MMO = [sys.executable, "-m", "mmo_host.cli"]
WRITE_READ = ["payments:write", "payments:read"]


def body(**overrides):
    payment = {
        "type": "collection",
        "amount": "150",
        "currency": "KES",
        "msisdn": "+254712345678",
        "provider": "example",
        "reference": "INV-KEYS",
    }
    payment.update(overrides)
    return payment


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_for(host, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=host.url, headers=bearer(key), timeout=20)


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def new_key(scopes=WRITE_READ, client: str | None = None, **options) -> keys.IssuedKey:
    return await keys.create(
        client or f"client-{uuid.uuid4().hex[:8]}", scopes, live=False, **options
    )


# -- one client, many keys ---------------------------------------------------------------------


async def test_a_rotated_key_replays_the_first_answer_and_sees_earlier_payments(api, host):
    first_key = await new_key()
    idempotency = {"Idempotency-Key": str(uuid.uuid4())}
    async with client_for(host, first_key.key) as old:
        first = await old.post("/api/v1/payments", json=body(), headers=idempotency)
        assert first.status_code == 202, first.text
    new, previous = await keys.rotate(first_key.id, expire_old_in=3600)
    assert (new.client, new.scopes) == (first_key.client, first_key.scopes)
    assert previous.state == "expiring" and new.key != first_key.key
    async with client_for(host, new.key) as rotated:
        again = await rotated.post("/api/v1/payments", json=body(), headers=idempotency)
        assert (again.status_code, again.json()) == (202, first.json())
        read = await rotated.get(f"/api/v1/payments/{first.json()['id']}")
        assert read.status_code == 200
        listed = (await rotated.get("/api/v1/payments")).json()["data"]
        assert [p["id"] for p in listed] == [first.json()["id"]]
    async with client_for(host, first_key.key) as old:  # in its grace period
        assert (await old.get(f"/api/v1/payments/{first.json()['id']}")).status_code == 200
    async with client_for(host, OTHER_KEY) as other:  # another client still sees nothing
        assert (await other.get(f"/api/v1/payments/{first.json()['id']}")).status_code == 404
    assert len(await db.fetch("SELECT id FROM payments")) == 1


async def test_every_key_of_the_environment_is_one_client(migrated_db, clean_db):
    """Comma-separated MMO_API_KEYS are rotation: both keys see one set of payments.
    MMO_ADMIN_KEYS alone reach the admin routes, and only those."""
    first, second = "sk_env_first_0123456789abcdef", "sk_env_second_0123456789abcde"
    admin = "sk_env_admin_0123456789abcdefg"
    port = _free_port()
    config = HostConfig.from_env(
        host_environ(
            migrated_db,
            MMO_API_KEYS=f"{first},{second}",
            MMO_ADMIN_KEYS=admin,
            MMO_PORT=str(port),
            MMO_PUBLIC_URL=f"http://127.0.0.1:{port}",
            MMO_ENABLED_PROVIDERS="example",
        )
    )
    app = create_app(config, build_registry(config))
    async with serving(app, port=port) as served, httpx.AsyncClient(base_url=served.url) as http:
        idempotency = {"Idempotency-Key": str(uuid.uuid4())}
        created = await http.post(
            "/api/v1/payments", json=body(), headers=bearer(first) | idempotency
        )
        assert created.status_code == 202, created.text
        replay = await http.post(
            "/api/v1/payments", json=body(), headers=bearer(second) | idempotency
        )
        assert replay.json() == created.json()
        read = await http.get(f"/api/v1/payments/{created.json()['id']}", headers=bearer(second))
        assert read.status_code == 200
        for key in (first, second):
            assert_error(
                await http.get("/api/v1/admin/providers", headers=bearer(key)), 403, "forbidden"
            )
        assert (await http.get("/api/v1/admin/providers", headers=bearer(admin))).status_code == 200
        assert_error(await http.get("/api/v1/payments", headers=bearer(admin)), 403, "forbidden")
    assert [r["client_id"] for r in await db.fetch("SELECT client_id FROM payments")] == ["env"]


def test_environment_keys_and_their_scopes():
    sandbox = HostConfig.from_env({})
    assert sandbox.admin_keys == ("sk_sandbox_mmo",)  # the README's admin calls work
    principal = keys.Keyring(sandbox).env_principal("sk_sandbox_mmo")
    assert principal == keys.Principal("env", frozenset(keys.SCOPES))
    both = HostConfig.from_env({"MMO_API_KEYS": "a,b", "MMO_ADMIN_KEYS": "b,c"})
    ring = keys.Keyring(both)
    assert ring.env_principal("a").scopes == keys.PAYMENT_SCOPES
    assert ring.env_principal("b").scopes == frozenset(keys.SCOPES)
    assert ring.env_principal("c").scopes == {"admin"}
    assert ring.env_principal("d") is None
    assert {ring.env_principal(k).client_id for k in "abc"} == {"env"}
    production = {
        "MMO_ENV": "production",
        "MMO_API_KEYS": "k" * 32,
        "MMO_CALLBACK_SECRET": "s" * 32,
        "MMO_PUBLIC_URL": "https://gw.example.com",
        "DATABASE_URL": "postgresql://u@h/db",
    }
    assert HostConfig.from_env(production).admin_keys == ()
    from mmo_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="MMO_ADMIN_KEYS"):
        HostConfig.from_env({**production, "MMO_ADMIN_KEYS": "short"})


# -- refused keys ------------------------------------------------------------------------------


async def test_a_revoked_key_is_refused(api, host, monkeypatch):
    issued = await new_key()
    async with client_for(host, issued.key) as client:
        assert (await client.get("/api/v1/payments")).status_code == 200
        revoked = await keys.revoke(issued.id)
        assert revoked.state == "revoked" and revoked.revoked_at is not None
        # the host keeps a found key `ttl` seconds; then the revocation holds
        monkeypatch.setattr(host.gateway.keys, "ttl", 0.2)
        await asyncio.sleep(0.3)
        response = await client.get("/api/v1/payments")
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        never_used = await new_key()
        await keys.revoke(never_used.id)
        client.headers.update(bearer(never_used.key))
        assert_error(await client.post("/api/v1/payments", json=body()), 401, "unauthorized")
    assert (await keys.revoke(issued.id)).revoked_at == revoked.revoked_at  # twice: no change


async def test_an_expired_key_is_refused(api, host, monkeypatch):
    expired = await new_key(expires_in=0)
    async with client_for(host, expired.key) as client:
        assert_error(await client.get("/api/v1/payments"), 401, "unauthorized")
    old = await new_key()
    async with client_for(host, old.key) as client:
        assert (await client.get("/api/v1/payments")).status_code == 200  # now cached
        monkeypatch.setattr(host.gateway.keys, "ttl", 0.2)
        new, _ = await keys.rotate(old.id, expire_old_in=1)
        assert (await client.get("/api/v1/payments")).status_code == 200  # its grace period
        await asyncio.sleep(1.1)
        assert_error(await client.get("/api/v1/payments"), 401, "unauthorized")
        client.headers.update(bearer(new.key))
        assert (await client.get("/api/v1/payments")).status_code == 200
    from mmo_core.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="expired"):
        await keys.rotate(old.id)


async def test_scopes_are_enforced_per_route(api, host):
    payments_key = await new_key()
    read_only = await new_key(["payments:read"])
    admin_only = await new_key(["admin"])
    created = await api.post(
        "/api/v1/payments", json=body(), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    pid = created.json()["id"]
    async with client_for(host, payments_key.key) as client:
        for path in (
            "/api/v1/admin/providers",
            "/api/v1/admin/providers/fake/balance",
            "/api/v1/admin/providers/fake/accounts/+255712345678",
            "/api/v1/admin/breakers",
        ):
            assert_error(await client.get(path), 403, "forbidden")
        assert_error(
            await client.post(f"/api/v1/admin/events/{uuid.uuid4()}/resend"), 403, "forbidden"
        )
    async with client_for(host, read_only.key) as client:
        assert (await client.get("/api/v1/payments")).status_code == 200
        refused = await client.post(
            "/api/v1/payments", json=body(), headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert_error(refused, 403, "forbidden")
        assert "payments:write" in refused.json()["error"]["message"]
        assert_error(
            await client.post(f"/api/v1/payments/{pid}/reversal", json={"reason": "x"}),
            403,
            "forbidden",
        )
        assert_error(await client.post(f"/api/v1/payments/{pid}/resend-prompt"), 403, "forbidden")
    async with client_for(host, admin_only.key) as client:
        assert (await client.get("/api/v1/admin/providers")).status_code == 200
        assert_error(await client.get("/api/v1/payments"), 403, "forbidden")
    assert len(await db.fetch("SELECT id FROM payments")) == 1


# POST routes that only read: the provider a number would get (a body, like pawaPay's)
READ_ONLY_POSTS = frozenset({"/api/v1/providers/predict"})


def test_every_api_route_declares_its_scope():
    app = create_app(HostConfig.from_env({"MMO_ENABLED_PROVIDERS": "example"}))
    seen = 0
    for route in app.routes:
        # operators' webhooks take no API key: their URL token or signature is checked
        if not route.path.startswith("/api/v1") or route.path.startswith("/api/v1/webhooks"):
            continue
        for handler in getattr(route, "route_handlers", []):
            scopes = {g.scope for g in handler.resolve_guards() if isinstance(g, auth.ScopeGuard)}
            methods = set(handler.http_methods) - {"HEAD", "OPTIONS"}
            if not methods:  # Litestar's own OPTIONS answers
                continue
            if route.path.startswith("/api/v1/admin"):
                expected = {"admin"}
            elif route.path in READ_ONLY_POSTS:  # a question with a body, nothing written
                expected = {"payments:read"}
            else:
                expected = {"payments:read"} if methods == {"GET"} else {"payments:write"}
            assert scopes == expected, (route.path, methods, scopes)
            seen += 1
    assert seen >= 15


# -- what is kept and what is logged --------------------------------------------------------------


async def test_the_plain_key_is_never_stored_nor_logged(api, host, caplog):
    caplog.set_level(logging.DEBUG)
    issued = await new_key()
    async with client_for(host, issued.key) as client:
        created = await client.post(
            "/api/v1/payments", json=body(), headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        await wait_for_status(client, created.json()["id"], {"succeeded"})
        client.headers.update(bearer(issued.key + "x"))
        assert_error(await client.get("/api/v1/payments"), 401, "unauthorized")
    new, _ = await keys.rotate(issued.id, expire_old_in=10)
    await keys.revoke(new.id)
    rows = await db.fetch("SELECT * FROM api_keys WHERE id = ANY($1::text[])", [issued.id, new.id])
    assert len(rows) == 2
    for row in rows:
        stored = json.dumps(dict(row), default=str)
        assert issued.key not in stored and new.key not in stored
        assert issued.key[12:] not in stored and new.key[12:] not in stored
    first = next(r for r in rows if r["id"] == issued.id)
    assert first["hash"] == hashlib.sha256(issued.key.encode()).hexdigest()
    assert first["prefix"] == issued.key[:12] and first["prefix"].startswith("sk_test_")
    assert first["last_used_at"] is not None
    logged = caplog.text
    assert issued.id in logged  # the key's id is logged, never the key
    for secret in (issued.key, new.key, issued.key[12:], API_KEY, OTHER_KEY):
        assert secret not in logged
    assert all(k.prefix and not hasattr(k, "hash") for k in await keys.list_keys())


async def test_last_used_is_written_at_most_once_a_minute(api, host):
    issued = await new_key()
    async with client_for(host, issued.key) as client:
        assert (await client.get("/api/v1/payments")).status_code == 200
        [first] = await db.fetch("SELECT last_used_at FROM api_keys WHERE id = $1", issued.id)
        host.gateway.keys.forget()
        for _ in range(3):
            assert (await client.get("/api/v1/payments")).status_code == 200
        [later] = await db.fetch("SELECT last_used_at FROM api_keys WHERE id = $1", issued.id)
    assert first["last_used_at"] is not None and later["last_used_at"] == first["last_used_at"]


async def test_keys_are_checked_on_create(clean_db):
    from mmo_core.errors import InvalidRequest

    for scopes in ([], ["payments:delete"]):
        with pytest.raises(InvalidRequest, match="Scopes"):
            await new_key(scopes)
    with pytest.raises(InvalidRequest, match="24 characters"):
        await new_key(plain_key="short")
    with pytest.raises(keys.KeyNotFound):
        await keys.revoke("key_nobody")
    with pytest.raises(keys.KeyNotFound):
        await keys.rotate("key_nobody")
    live = await keys.create("live-client", ["admin"], live=True)
    assert live.key.startswith("sk_live_") and len(live.key) >= 40
    assert (await keys.rotate(live.id))[0].key.startswith("sk_live_")
    assert keys.parse_duration("24h") == 86400 and keys.parse_duration("90") == 90
    with pytest.raises(InvalidRequest):
        keys.parse_duration("soon")


# -- upgrading from per-key clients ----------------------------------------------------------------


async def test_payments_of_the_old_per_key_clients_move_to_env(api, host):
    """Before clients existed each key was its own client; at start-up the environment's
    keys' payments become `env`'s, and a clash of Idempotency-Keys keeps the oldest."""
    old_key = "sk_old_rotated_away_0123456789ab"
    idempotency = {"Idempotency-Key": str(uuid.uuid4())}
    first = (await api.post("/api/v1/payments", json=body(), headers=idempotency)).json()
    async with client_for(host, OTHER_KEY) as other:
        second = (await other.post("/api/v1/payments", json=body(), headers=idempotency)).json()
    await db.fetch(
        "UPDATE payments SET client_id = $1 WHERE id = $2::uuid",
        keys.legacy_client_id(API_KEY),
        first["id"],
    )
    await db.fetch(
        "UPDATE payments SET client_id = $1 WHERE id = $2::uuid",
        keys.legacy_client_id(old_key),
        second["id"],
    )
    assert (await api.get(f"/api/v1/payments/{first['id']}")).status_code == 404
    config = HostConfig.from_env({"MMO_API_KEYS": f"{API_KEY},{old_key}"})
    assert await keys.adopt_env_payments(config) == 2
    assert await keys.adopt_env_payments(config) == 0  # idempotent
    for payment in (first, second):
        assert (await api.get(f"/api/v1/payments/{payment['id']}")).status_code == 200
    replay = await api.post("/api/v1/payments", json=body(), headers=idempotency)
    assert replay.json()["id"] == first["id"]
    [moved] = await db.fetch(
        "SELECT idempotency_key FROM payments WHERE id = $1::uuid", second["id"]
    )
    assert moved["idempotency_key"] == f"{idempotency['Idempotency-Key']}:moved:{second['id']}"


# -- mmo keys ----------------------------------------------------------------------------------


def mmo(dsn: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMO_", "DATABASE_URL"))}
    env["DATABASE_URL"] = dsn
    return subprocess.run(
        [*MMO, "keys", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.fixture
async def cli_host(host, clean_db) -> AsyncIterator:
    yield host
    host.gateway.keys.forget()


async def test_mmo_keys_end_to_end(cli_host, migrated_db):
    host = cli_host
    name = f"cli-{uuid.uuid4().hex[:8]}"
    run = lambda *args: asyncio.to_thread(mmo, migrated_db, *args)  # noqa: E731

    created = await run("create", "--client", name, "--scope", "payments:read", "--json")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["key"].startswith("sk_test_") and issued["scopes"] == ["payments:read"]
    assert issued["key"] not in created.stderr
    async with client_for(host, issued["key"]) as client:
        assert (await client.get("/api/v1/payments")).status_code == 200
        refused = await client.post(
            "/api/v1/payments", json=body(), headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert_error(refused, 403, "forbidden")

    listed = await run("list", "--client", name, "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert (entry["id"], entry["state"], entry["prefix"]) == (
        issued["id"],
        "active",
        issued["key"][:12],
    )
    assert issued["key"] not in listed.stdout and "hash" not in entry
    text = await run("list")
    assert issued["id"] in text.stdout and f"{issued['key'][:12]}…" in text.stdout

    rotated = await run("rotate", issued["id"], "--expire-old-in", "1h", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["scopes"] == ["payments:read"] and new["client"] == name
    assert f"{issued['id']} expires" in rotated.stderr
    [old, _] = json.loads((await run("list", "--client", name, "--json")).stdout)
    assert old["state"] == "expiring"
    async with client_for(host, new["key"]) as client:
        assert (await client.get("/api/v1/payments")).status_code == 200

    revoked = await run("revoke", new["id"])
    assert revoked.returncode == 0 and f"{new['id']} revoked" in revoked.stdout
    host.gateway.keys.forget()  # the command ran in another process
    async with client_for(host, new["key"]) as client:
        assert_error(await client.get("/api/v1/payments"), 401, "unauthorized")
    for output in (created, listed, rotated, revoked):
        assert new["key"] not in output.stderr and issued["key"] not in output.stderr

    missing = await run("revoke", "key_nobody")
    assert missing.returncode == 2 and "No key 'key_nobody'" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = await run("create", "--client", name, "--scope", "everything")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

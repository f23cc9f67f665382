"""Health, admin, OpenAPI, configuration and the shared token store."""

from __future__ import annotations

import httpx
import pytest
from mmo_core.errors import ConfigurationError
from mmo_core.tokens import AccessToken, TokenCache
from mmo_host.app import build_registry, create_app
from mmo_host.config import HostConfig
from mmo_host.gateway import Gateway

from tests.conftest import host_environ


async def test_liveness_and_readiness(host):
    async with httpx.AsyncClient(base_url=host.url) as client:
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["database"] == "ok" and body["pending_migrations"] == []
        assert {"example", "fake"} <= set(body["providers"])


async def test_openapi_schema_is_served(host):
    async with httpx.AsyncClient(base_url=host.url) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/payments" in schema["paths"]
    assert "/api/v1/webhooks/{segment}/{kind}" in schema["paths"]
    assert not any(path.startswith("/_sim") for path in schema["paths"])


async def test_admin_lists_providers_and_their_health(api):
    providers = (await api.get("/api/v1/admin/providers")).json()
    names = {p["name"]: p for p in providers["data"]}
    assert names["example"]["countries"] == ["KE", "UG", "GH", "CI"]
    assert names["fake"]["webhook_path"] == "fake-money"
    health = (await api.get("/api/v1/admin/providers/health")).json()["data"]
    by_name = {h["name"]: h for h in health}
    assert by_name["example"]["ok"] and by_name["fake"]["ok"]
    assert by_name["example"]["breaker"]["state"] == "closed"


def test_production_requires_its_essentials():
    with pytest.raises(ConfigurationError) as info:
        HostConfig.from_env({"MMO_ENV": "production"})
    for name in ("MMO_API_KEYS", "MMO_CALLBACK_SECRET", "MMO_PUBLIC_URL", "DATABASE_URL"):
        assert name in info.value.message
    with pytest.raises(ConfigurationError, match="MMO_ENV"):
        HostConfig.from_env({"MMO_ENV": "staging"})
    with pytest.raises(ConfigurationError, match="24 characters"):
        HostConfig.from_env(
            {
                "MMO_ENV": "production",
                "MMO_API_KEYS": "short",
                "MMO_CALLBACK_SECRET": "x",
                "MMO_PUBLIC_URL": "https://gw",
                "DATABASE_URL": "postgresql://db/mmo",
            }
        )
    with pytest.raises(ConfigurationError):
        HostConfig.from_env({"MMO_PORT": "eighty"})
    with pytest.raises(ConfigurationError):
        HostConfig.from_env({"MMO_AUTO_MIGRATE": "maybe"})


def production_env(**extra):
    env = {
        "MMO_ENV": "production",
        "MMO_API_KEYS": "k" * 32,
        "MMO_CALLBACK_SECRET": "s" * 32,
        "MMO_PUBLIC_URL": "https://gw.example",
        "DATABASE_URL": "postgresql://db/mmo",
    }
    env.update(extra)
    return env


def test_production_names_a_providers_missing_credential():
    config = HostConfig.from_env(production_env(MMO_ENABLED_PROVIDERS="example"))
    with pytest.raises(ConfigurationError) as info:
        create_app(config)
    assert "MMO_EXAMPLE_CLIENT_ID" in info.value.message
    assert "MMO_EXAMPLE_BASE_URL" in info.value.message


def test_sandbox_disables_a_misconfigured_provider_and_says_why():
    config = HostConfig.from_env({"MMO_EXAMPLE_CALLBACK_DELAY": "soon"})
    gateway = Gateway(config, build_registry(config))
    assert "example" not in gateway.registry.providers
    assert "MMO_EXAMPLE_CALLBACK_DELAY" in gateway.configuration_errors["example"]


def test_defaults_need_no_configuration():
    config = HostConfig.from_env({})
    assert config.sandbox and config.database_url is None and config.auto_migrate
    assert config.api_keys == ("sk_sandbox_mmo",)
    assert config.simulator_url("example") == "http://127.0.0.1:8000/_sim/example"
    assert HostConfig.from_env({"MMO_HOST": "0.0.0.0"}).base_public_url == "http://127.0.0.1:8000"


async def test_tokens_are_shared_between_processes_through_redis(redis_url):
    from litestar.stores.redis import RedisStore

    stores = [RedisStore.with_client(url=redis_url, namespace="mmo-test") for _ in range(2)]
    try:
        first, second = (TokenCache(s.with_namespace("tokens")) for s in stores)

        async def fetch():
            return AccessToken.lasting("from-redis", 600)

        async def never():
            raise AssertionError("the second process must reuse the token in Redis")

        assert await first.get("op:key", fetch) == "from-redis"
        assert await second.get("op:key", never) == "from-redis"
        await first.invalidate("op:key")
        assert await stores[1].with_namespace("tokens").get("op:key") is None
    finally:
        for store in stores:
            await store._redis.aclose(close_connection_pool=True)


async def test_gateway_uses_redis_when_configured(migrated_db, redis_url):
    config = HostConfig.from_env(host_environ(migrated_db, REDIS_URL=redis_url))
    gateway = Gateway(config, build_registry(config))
    await gateway.open()
    try:
        assert gateway.store is not None
        await gateway.tokens.get("probe", lambda: _token())
        assert await gateway.store.with_namespace("tokens").get("probe") is not None
        await gateway.breakers.failure("probe-provider")
        assert (await gateway.breakers.state("probe-provider")).failures == 1
    finally:
        await gateway.close()


async def _token():
    return AccessToken.lasting("probe-token", 60)


def test_host_secrets_may_come_from_files(tmp_path):
    keys = tmp_path / "api_keys"
    keys.write_text("sk_file_0123456789abcdefghijkl,sk_file_second_0123456789abcd\n")
    secret = tmp_path / "callback_secret"
    secret.write_text("cb-secret-from-file")
    config = HostConfig.from_env(
        {"MMO_API_KEYS_FILE": str(keys), "MMO_CALLBACK_SECRET_FILE": str(secret)}
    )
    assert config.api_keys == ("sk_file_0123456789abcdefghijkl", "sk_file_second_0123456789abcd")
    assert config.callback_secret == "cb-secret-from-file"

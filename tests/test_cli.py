"""The `mmo` command, run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import httpx
import pytest

MMO = [sys.executable, "-m", "mmo_host.cli"]


def run(*args, env=None, timeout=60):
    return subprocess.run(
        [*MMO, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_providers_json_lists_the_example_provider():
    result = run("providers", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)["providers"]}
    example = listed["example"]
    assert example["version"] == "0.1.0"
    assert example["countries"] and example["currencies"] and "collection" in example["operations"]


def test_providers_text_and_disabled():
    assert "Example Pay" in run("providers").stdout
    result = run("providers", env={"MMO_DISABLED_PROVIDERS": "example"})
    assert "Example Pay" not in result.stdout


def test_unknown_provider_and_no_setup_are_clear():
    result = run("simulate", "nobody")
    assert result.returncode != 0 and "unknown provider 'nobody'" in result.stderr
    assert "needs no setup" in run("setup", "example").stdout


def test_bad_configuration_is_a_message_not_a_trace():
    result = run("providers", env={"MMO_ENV": "staging"})
    assert result.returncode == 2
    assert "MMO_ENV" in result.stderr and "Traceback" not in result.stderr


def test_migrate_against_a_database(migrated_db):
    result = run("migrate", env={"DATABASE_URL": migrated_db})
    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s)" in result.stdout


def test_simulate_serves_the_simulator_alone():
    port = free_port()
    process = subprocess.Popen(
        [*MMO, "simulate", "example", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ledger = wait_http(f"http://127.0.0.1:{port}/_simulator/ledger")
        assert ledger.json()["entries"] == []
        token = httpx.post(f"http://127.0.0.1:{port}/oauth/token", auth=("sandbox-client", "wrong"))
        assert token.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_serve_with_defaults_takes_a_payment_end_to_end():
    """The README's first payment: `mmo serve` with nothing configured, embedded Postgres."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="mmo-serve-")
    os.chmod(data_dir, 0o755)  # as root, the embedded server's own user must enter it
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MMO_", "DATABASE_URL", "REDIS_URL"))
    }
    # the defaults but admission by loop lag: the suite's neighbours make any loop late
    env.update({"MMO_DATA_DIR": data_dir, "MMO_PORT": str(port), "MMO_MAX_LOOP_LAG_MS": "0"})
    process = subprocess.Popen(
        [*MMO, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert wait_http(f"http://127.0.0.1:{port}/health/ready", timeout=90).status_code == 200
        created = subprocess.run(
            [
                "curl",
                "-s",
                "-X",
                "POST",
                f"http://127.0.0.1:{port}/api/v1/payments",
                "-H",
                "Authorization: Bearer sk_sandbox_mmo",
                "-H",
                f"Idempotency-Key: {uuid.uuid4()}",
                "-H",
                "Content-Type: application/json",
                "-d",
                '{"type": "collection", "amount": "150", "currency": "KES", '
                '"msisdn": "+254712345678", "provider": "example", "reference": "INV-2041"}',
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        payment = json.loads(created.stdout)
        assert payment["status"] == "pending"
        deadline = time.monotonic() + 20
        while True:
            seen = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/payments/{payment['id']}",
                headers={"Authorization": "Bearer sk_sandbox_mmo"},
            ).json()
            if seen["status"] == "succeeded" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert seen["status"] == "succeeded"
        # the README's first payment names no provider: the number's network chooses M-Pesa
        readme = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/payments",
            headers={
                "Authorization": "Bearer sk_sandbox_mmo",
                "Idempotency-Key": str(uuid.uuid4()),
            },
            json={
                "type": "collection",
                "amount": "150",
                "currency": "KES",
                "msisdn": "+254712345678",
                "reference": "INV-2041",
            },
            timeout=30,
        ).json()
        assert readme["routing"] == {
            "network": "safaricom",
            "provider": "mpesa",
            "account": "default",
            "reason": "network",
        }, readme
        deadline = time.monotonic() + 30
        while readme["status"] != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.2)
            readme = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/payments/{readme['id']}",
                headers={"Authorization": "Bearer sk_sandbox_mmo"},
            ).json()
        assert readme["status"] == "succeeded", readme
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert "sk_sandbox_mmo" in output  # the sandbox key is announced
    assert "token=" not in output  # callback URL tokens never reach the logs
    assert "+254712345678" not in output  # nor full phone numbers


def test_env_example_as_is_configures_every_provider():
    """A newcomer who copies .env.example unchanged gets a working sandbox."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / ".env.example"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMO_")}
    for line in example.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    from mmo_host.app import build_registry
    from mmo_host.config import HostConfig
    from mmo_host.gateway import Gateway

    config = HostConfig.from_env(env)
    gateway = Gateway(config, build_registry(config))
    assert gateway.configuration_errors == {}
    assert {"mpesa", "mtn_momo", "airtel", "orange", "example"} <= set(gateway.registry.providers)


def test_env_example_lists_every_provider_setting():
    """Every operator-specific `MMO_<PROVIDER>_*` variable is in .env.example (the common
    ones, BASE_URL, TIMEOUT and so on, are explained once, for the example provider)."""
    from pathlib import Path

    import msgspec
    from mmo_core.settings import ProviderSettings, env_var
    from mmo_host.app import build_registry
    from mmo_host.config import HostConfig

    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    listed = {line.partition("=")[0].strip() for line in example.splitlines() if "=" in line}
    registry = build_registry(HostConfig.from_env({}))
    common = {field.name for field in msgspec.structs.fields(ProviderSettings)}
    missing = [
        env_var(name, field.name)
        for name, provider in registry.providers.items()
        if name != "fake"
        for field in msgspec.structs.fields(provider.settings_type)
        if field.name not in common and env_var(name, field.name) not in listed
    ]
    assert missing == []

"""The host's settings, read once from the environment.

Every setting is an environment variable (see .env.example and docs/configuration.md).
With none set, the host runs the `sandbox` environment on an embedded Postgres, keeps
shared state in memory and points every provider at its simulator. In `production`,
missing essentials stop start-up with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmo_core.accounts import read_config_file
from mmo_core.errors import ConfigurationError
from mmo_core.settings import ENVIRONMENTS, read_variable

SANDBOX_API_KEY = "sk_sandbox_mmo"
SANDBOX_CALLBACK_SECRET = "sandbox-callback-secret-not-for-production"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"Expected true or false, got {value!r}")


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def default_data_dir() -> Path:
    """`~/.local/share/mmo` for a user; /var/lib/mmo for root (whose home is private, and
    whose embedded PostgreSQL runs as another user that must reach the data)."""
    if os.name == "posix" and os.geteuid() == 0:
        return Path("/var/lib/mmo")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mmo"


def read_log_format(env: Mapping[str, str]) -> str:
    """MMO_LOG_FORMAT: `json` (production's default) or `console` (the sandbox's)."""
    default = "console" if env.get("MMO_ENV", "sandbox").strip() in ("", "sandbox") else "json"
    value = (env.get("MMO_LOG_FORMAT") or default).strip().lower()
    if value not in ("json", "console"):
        raise ConfigurationError(f"MMO_LOG_FORMAT must be json or console, not {value!r}")
    return value


# settings that hold secrets (or URLs with passwords): each may be given as NAME_FILE
SECRET_SETTINGS = (
    "MMO_API_KEYS",
    "MMO_ADMIN_KEYS",
    "MMO_CALLBACK_SECRET",
    "MMO_EVENT_SECRETS",
    "DATABASE_URL",
    "REDIS_URL",
)


@dataclass(frozen=True)
class HostConfig:
    environment: str = "sandbox"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = field(default_factory=default_data_dir)
    api_keys: tuple[str, ...] = (SANDBOX_API_KEY,)
    # keys with the `admin` scope; in the sandbox, without MMO_ADMIN_KEYS, the api_keys
    admin_keys: tuple[str, ...] = (SANDBOX_API_KEY,)
    callback_secret: str = SANDBOX_CALLBACK_SECRET
    auto_migrate: bool = True
    mount_simulators: bool = True
    provider_priority: tuple[str, ...] = ()
    # MMO_NETWORK_PREFIXES: "KE:25475=airtel,..." (country, number prefix, network), read
    # as-is here; mmo_host.routing parses and checks it
    network_prefixes: str = ""
    # MMO_ROUTING_POLICY: "KE/collection=mpesa:fail_fast,..." (mmo_host.routing)
    routing_policy: str = ""
    # proxies whose X-Forwarded-For is believed (host/sources.py); none by default
    trusted_proxies: str = ""
    operator_timeout: float = 30.0
    max_webhook_bytes: int = 256 * 1024
    # requests per second per API client / per webhook source address (0: off)
    rate_limit_api: int = 200
    rate_limit_webhooks: int = 100
    # requests in flight per process before `503 overloaded` (mmo_host.admission; 0: off):
    # the API's, and the operators' webhooks' own share
    max_in_flight: int = 64
    max_in_flight_webhooks: int = 128
    # API requests are refused while the event loop runs this late (ms, smoothed; 0: off)
    max_loop_lag_ms: float = 20.0
    run_worker: bool = True
    worker_concurrency: int = 10
    job_lease: float = 120.0
    poll_after: float | None = None
    poll_max_delay: float = 600.0
    resolve_after: float | None = None
    queue_for: float = 900.0
    reconcile_every: float = 3600.0
    breaker_threshold: int = 5
    breaker_window: float = 30.0
    breaker_cooldown: float = 30.0
    event_urls: tuple[str, ...] = ()
    event_secrets: tuple[str, ...] = ()
    event_stream: str = "mmo:events"
    # GET /metrics (MMO_METRICS) and the log lines' format (MMO_LOG_FORMAT: json|console)
    metrics: bool = True
    log_format: str = "console"
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    # the parsed configuration file (MMO_CONFIG, mmo.toml): the providers' accounts
    config_file: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def sandbox(self) -> bool:
        return self.environment == "sandbox"

    @property
    def base_public_url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host  # noqa: S104
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")

    def simulator_url(self, provider: str) -> str:
        return f"{self.base_public_url}/_sim/{provider}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> HostConfig:
        env = dict(os.environ if environ is None else environ)
        for name in SECRET_SETTINGS:  # each may come from a file: NAME_FILE
            value = read_variable(env, name)
            if value is not None:
                env[name] = value
        environment = env.get("MMO_ENV", "sandbox").strip() or "sandbox"
        if environment not in ENVIRONMENTS:
            raise ConfigurationError(
                f"MMO_ENV must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}"
            )
        production = environment == "production"
        missing = [
            name
            for name in ("MMO_API_KEYS", "MMO_CALLBACK_SECRET", "MMO_PUBLIC_URL", "DATABASE_URL")
            if production and not env.get(name)
        ]
        if missing:
            raise ConfigurationError(f"Missing setting(s) for production: {', '.join(missing)}")
        api_keys = _list(env.get("MMO_API_KEYS")) or (SANDBOX_API_KEY,)
        admin_keys = _list(env.get("MMO_ADMIN_KEYS")) or (() if production else api_keys)
        for name, keys in (("MMO_API_KEYS", api_keys), ("MMO_ADMIN_KEYS", admin_keys)):
            if production and any(len(key) < 24 for key in keys):
                raise ConfigurationError(f"{name}: each key must have at least 24 characters")
        secret = env.get("MMO_CALLBACK_SECRET") or SANDBOX_CALLBACK_SECRET
        event_urls = _list(env.get("MMO_EVENT_URLS"))
        event_secrets = _list(env.get("MMO_EVENT_SECRETS"))
        if event_urls and not event_secrets:
            raise ConfigurationError("MMO_EVENT_URLS needs MMO_EVENT_SECRETS to sign the events")
        try:
            port = int(env.get("MMO_PORT", "8000"))
            timeout = float(env.get("MMO_OPERATOR_TIMEOUT", "30"))
            max_webhook = int(env.get("MMO_MAX_WEBHOOK_BYTES", str(256 * 1024)))
            numbers: dict[str, int | float | None] = {
                "worker_concurrency": int(env.get("MMO_WORKER_CONCURRENCY", "10")),
                "job_lease": float(env.get("MMO_JOB_LEASE", "120")),
                "poll_after": float(env["MMO_POLL_AFTER"]) if env.get("MMO_POLL_AFTER") else None,
                "resolve_after": (
                    float(env["MMO_RESOLVE_AFTER"]) if env.get("MMO_RESOLVE_AFTER") else None
                ),
                "queue_for": float(env.get("MMO_QUEUE_FOR", "900")),
                "poll_max_delay": float(env.get("MMO_POLL_MAX_DELAY", "600")),
                "reconcile_every": float(env.get("MMO_RECONCILE_EVERY", "3600")),
                "breaker_threshold": int(env.get("MMO_BREAKER_THRESHOLD", "5")),
                "breaker_window": float(env.get("MMO_BREAKER_WINDOW", "30")),
                "breaker_cooldown": float(env.get("MMO_BREAKER_COOLDOWN", "30")),
                "rate_limit_api": int(env.get("MMO_RATE_LIMIT_API", "200")),
                "rate_limit_webhooks": int(env.get("MMO_RATE_LIMIT_WEBHOOKS", "100")),
                "max_in_flight": int(env.get("MMO_MAX_IN_FLIGHT", "64")),
                "max_in_flight_webhooks": int(env.get("MMO_MAX_IN_FLIGHT_WEBHOOKS", "128")),
                "max_loop_lag_ms": float(env.get("MMO_MAX_LOOP_LAG_MS", "20")),
            }
        except ValueError as exc:
            raise ConfigurationError(f"Invalid number in settings: {exc}") from None
        for name in ("max_in_flight", "max_in_flight_webhooks", "max_loop_lag_ms"):
            if (numbers[name] or 0) < 0:
                raise ConfigurationError(f"MMO_{name.upper()} must be 0 (off) or more")
        values: dict[str, object] = {
            "environment": environment,
            "host": env.get("MMO_HOST", "127.0.0.1"),
            "port": port,
            "public_url": env.get("MMO_PUBLIC_URL", ""),
            "database_url": env.get("DATABASE_URL") or None,
            "redis_url": env.get("REDIS_URL") or None,
            "data_dir": Path(env["MMO_DATA_DIR"])
            if env.get("MMO_DATA_DIR")
            else default_data_dir(),
            "api_keys": api_keys,
            "admin_keys": admin_keys,
            "callback_secret": secret,
            "auto_migrate": _flag(env.get("MMO_AUTO_MIGRATE"), not production),
            "mount_simulators": _flag(env.get("MMO_MOUNT_SIMULATORS"), not production),
            "provider_priority": _list(env.get("MMO_PROVIDER_PRIORITY")),
            "network_prefixes": env.get("MMO_NETWORK_PREFIXES", ""),
            "routing_policy": env.get("MMO_ROUTING_POLICY", ""),
            "trusted_proxies": env.get("MMO_TRUSTED_PROXIES", ""),
            "operator_timeout": timeout,
            "max_webhook_bytes": max_webhook,
            "run_worker": _flag(env.get("MMO_RUN_WORKER"), True),
            "event_urls": event_urls,
            "event_secrets": event_secrets,
            "event_stream": env.get("MMO_EVENT_STREAM", "mmo:events"),
            "metrics": _flag(env.get("MMO_METRICS"), True),
            "log_format": read_log_format(env),
            "environ": env,
            "config_file": read_config_file(env.get("MMO_CONFIG")),
            **numbers,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

"""The app factory: `create_app()` returns the Litestar app with everything wired.

The wiring lives in `GatewayPlugin.on_app_init`, in named steps; shared resources (the
database pool, the providers' HTTP clients, Redis) are opened and closed in the lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import swagger_ui
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPluginProtocol
from litestar.static_files import create_static_files_router
from mmo_core.registry import ProviderRegistry

from mmo_host import dashboard, logs, metrics, simulators
from mmo_host.admission import AdmissionMiddleware, LoopLag
from mmo_host.config import HostConfig
from mmo_host.controllers.admin import AdminController
from mmo_host.controllers.admin_audit import AdminAuditController
from mmo_host.controllers.admin_callbacks import AdminCallbacksController
from mmo_host.controllers.admin_providers import AdminProvidersController
from mmo_host.controllers.admin_transactions import AdminTransactionsController
from mmo_host.controllers.attention import AttentionController
from mmo_host.controllers.batches import BatchController
from mmo_host.controllers.health import HealthController
from mmo_host.controllers.operations import OperationsController
from mmo_host.controllers.payments import PaymentController
from mmo_host.controllers.providers import ProviderController
from mmo_host.controllers.webhooks import WebhookController
from mmo_host.errors import EXCEPTION_HANDLERS
from mmo_host.gateway import Gateway
from mmo_host.hygiene import API_MAX_BODY, HygieneMiddleware
from mmo_host.ratelimit import RateLimits
from mmo_host.runtime import open_gateway
from mmo_host.worker import Worker

log = logging.getLogger("mmo.app")

# where /schema's Swagger UI scripts are served from (no CDN: it renders offline)
SCHEMA_ASSETS = "/schema/assets"


def build_registry(config: HostConfig) -> ProviderRegistry:
    registry = ProviderRegistry(environ=config.environ)
    registry.load_entrypoints()
    return registry


class GatewayPlugin(InitPluginProtocol):
    def __init__(self, gateway: Gateway) -> None:
        self.loop_lag = LoopLag(0)  # set from the configuration with the middleware
        self.gateway = gateway
        self.simulators: list[Any] = []

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        self._configure_state(app_config)
        self._configure_routes(app_config)
        self._configure_simulators(app_config)
        self._configure_errors(app_config)
        self._configure_hygiene(app_config)
        self._configure_rate_limits(app_config)
        self._configure_openapi(app_config)
        self._configure_dashboard(app_config)
        self._configure_observability(app_config)
        self._configure_admission(app_config)
        self._configure_lifespan(app_config)
        return app_config

    def _configure_state(self, app_config: AppConfig) -> None:
        app_config.state["gateway"] = self.gateway

    def _configure_routes(self, app_config: AppConfig) -> None:
        # this app's webhook body limit, on a router of its own (no shared class changed)
        webhooks = Router(
            path="/",
            route_handlers=[WebhookController],
            request_max_body_size=self.gateway.config.max_webhook_bytes,
        )
        app_config.route_handlers.extend(
            [PaymentController, ProviderController, webhooks, HealthController, AdminController]
        )
        app_config.route_handlers.extend([OperationsController, AttentionController])
        app_config.route_handlers.append(BatchController)  # payouts (mmo_host.batches)
        # the admin API, one controller per resource under /api/v1/admin/mmo (docs/admin.md)
        app_config.route_handlers.extend(
            [
                AdminProvidersController,
                AdminTransactionsController,
                AdminCallbacksController,
                AdminAuditController,
            ]
        )

    def _configure_simulators(self, app_config: AppConfig) -> None:
        """In the sandbox, serve each provider's simulator under /_sim/<name>."""
        config = self.gateway.config
        if not (config.sandbox and config.mount_simulators):
            return
        for name, provider in self.gateway.registry.providers.items():
            # one simulator serves every account of the provider that has no base URL
            simulated = {
                account.name: account.settings
                for account in self.gateway.accounts[name].values()
                if not account.settings.base_url
            }
            if not provider.implements("simulator_app") or not simulated:
                continue
            simulator = provider.call_sync(
                "simulator_app", settings=next(iter(simulated.values())), accounts=simulated
            )
            self.simulators.append(simulator)
            app_config.route_handlers.append(simulators.mount(f"/_sim/{name}", simulator, name))

    def _configure_errors(self, app_config: AppConfig) -> None:
        app_config.exception_handlers.update(EXCEPTION_HANDLERS)

    def _configure_hygiene(self, app_config: AppConfig) -> None:
        """Body limits, JSON and text checks before any handler (mmo_host.hygiene)."""
        app_config.middleware.append(
            HygieneMiddleware(webhook_max_body=self.gateway.config.max_webhook_bytes)
        )
        app_config.request_max_body_size = API_MAX_BODY

    def _configure_rate_limits(self, app_config: AppConfig) -> None:
        """Per API client and per webhook source address (mmo_host.ratelimit); a hook of
        the app, so it runs after the API key guard has named the client."""
        app_config.before_request = RateLimits(self.gateway).before_request

    def _configure_openapi(self, app_config: AppConfig) -> None:
        """`/schema`: Swagger UI with its scripts served by the host itself (from the
        swagger-ui-py package), so it renders with no internet; `/schema/openapi.json`."""
        app_config.openapi_config = OpenAPIConfig(
            title="Mobile-money gateway",
            version="0.1.0",
            description="One API over M-Pesa, MTN MoMo, Airtel Money and Orange Money.",
            path="/schema",
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/",
                    js_url=f"{SCHEMA_ASSETS}/swagger-ui-bundle.js",
                    css_url=f"{SCHEMA_ASSETS}/swagger-ui.css",
                    standalone_preset_js_url=f"{SCHEMA_ASSETS}/swagger-ui-standalone-preset.js",
                    favicon=f"<link rel='icon' href='{SCHEMA_ASSETS}/favicon-32x32.png'>",
                ),
                JsonRenderPlugin(path="/openapi.json"),
            ],
        )
        app_config.route_handlers.append(
            create_static_files_router(
                path=SCHEMA_ASSETS,
                directories=[Path(swagger_ui.__file__).parent / "static"],
                name="schema-assets",
                include_in_schema=False,
            )
        )

    def _configure_dashboard(self, app_config: AppConfig) -> None:
        """`/dashboard`: the operations pages (mmo_host.dashboard), server-rendered."""
        app_config.route_handlers.extend(dashboard.routes())
        app_config.template_config = dashboard.template_config()

    def _configure_observability(self, app_config: AppConfig) -> None:
        """Request ids and HTTP counts around every route (outermost, so refusals count
        too), and `GET /metrics` unless MMO_METRICS is off (mmo_host.metrics, logs)."""
        enabled = self.gateway.config.metrics
        app_config.middleware.insert(
            0, metrics.ObserveMiddleware(metrics.of(self.gateway), count=enabled)
        )
        if enabled:
            app_config.route_handlers.append(metrics.metrics_endpoint)

    def _configure_admission(self, app_config: AppConfig) -> None:
        """Requests in flight per process, API and webhooks apart (mmo_host.admission):
        right inside the observer, so refusals are counted and logged, and before hygiene
        reads a body."""
        config = self.gateway.config
        self.loop_lag = LoopLag(config.max_loop_lag_ms)
        app_config.middleware.insert(
            1,
            AdmissionMiddleware(
                config.max_in_flight,
                config.max_in_flight_webhooks,
                metrics.of(self.gateway),
                lag=self.loop_lag,
            ),
        )

    def _configure_lifespan(self, app_config: AppConfig) -> None:
        app_config.lifespan.append(self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        config = self.gateway.config
        async with AsyncExitStack() as stack:
            # what is counted without a gateway at hand (callbacks the worker rematches)
            stack.enter_context(metrics.use(metrics.of(self.gateway)))
            await stack.enter_async_context(open_gateway(self.gateway, migrate=config.auto_migrate))
            for simulator in self.simulators:
                await stack.enter_async_context(simulators.lifespan(simulator))
            if config.run_worker:
                await stack.enter_async_context(running_worker(self.gateway))
            self.loop_lag.start()
            stack.push_async_callback(self.loop_lag.stop)
            log.info(
                "gateway ready (%s) with providers: %s",
                config.environment,
                ", ".join(sorted(self.gateway.registry.providers)) or "none",
            )
            yield


@asynccontextmanager
async def running_worker(gateway: Gateway) -> AsyncIterator[None]:
    """A worker inside the host process (`mmo serve`), stopped with it."""
    worker = Worker(
        gateway, concurrency=gateway.config.worker_concurrency, lease=gateway.config.job_lease
    )
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


def create_app(
    config: HostConfig | None = None, registry: ProviderRegistry | None = None
) -> Litestar:
    config = config or HostConfig.from_env()
    registry = registry or build_registry(config)
    gateway = Gateway(config, registry)
    logs.configure_structlog()
    return Litestar(plugins=[GatewayPlugin(gateway)], debug=False)

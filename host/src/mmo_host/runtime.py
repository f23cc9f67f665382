"""Opening and closing what a gateway process needs: database, pool, providers.

Used by the app's lifespan (`mmo serve`) and by the commands that work without the HTTP
server (`mmo worker`, `mmo reconcile`, `mmo migrate`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mmo_host import database, keys
from mmo_host.config import HostConfig
from mmo_host.gateway import Gateway

log = logging.getLogger("mmo.runtime")


@asynccontextmanager
async def open_database(config: HostConfig, *, migrate: bool) -> AsyncIterator[None]:
    """The database for this process: embedded unless DATABASE_URL, pool open, migrated."""
    embedded = None
    opened_pool = False
    dsn = config.database_url
    if dsn is None:
        embedded = database.EmbeddedPostgres(config.data_dir)
        dsn = await asyncio.to_thread(embedded.start)
    try:
        await asyncio.to_thread(database.configure, dsn)
        opened_pool = await database.open_pool()
        if migrate:
            applied = await database.migrate()
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
        yield
    finally:
        if opened_pool:
            await database.close_pool()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


@asynccontextmanager
async def open_gateway(gateway: Gateway, *, migrate: bool) -> AsyncIterator[Gateway]:
    async with open_database(gateway.config, migrate=migrate):
        # payments stored under the environment keys' old client ids belong to `env`
        await keys.adopt_env_payments(gateway.config)
        await gateway.open()
        try:
            yield gateway
        finally:
            await gateway.close()

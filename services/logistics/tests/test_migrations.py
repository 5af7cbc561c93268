"""Migration 0002 creates and drops the logistics tables on SQLite and Postgres."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ehub_core.db import Database
from ehub_core.migrations import current_revision, upgrade

TABLES = {"logistics_shipments", "logistics_tracking_events"}


async def table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


def downgrade_to(connection: sa.Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("ehub_logistics.migrations")))
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def test_0002_upgrades_downgrades_and_upgrades_again(database_url):
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_logistics.migrations")
        assert await current_revision(db) == "0002"
        assert await table_names(db) >= TABLES
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0001")
        assert not TABLES & await table_names(db)
        await upgrade(db, "ehub_logistics.migrations")
        assert await table_names(db) >= TABLES
    finally:
        await db.dispose()

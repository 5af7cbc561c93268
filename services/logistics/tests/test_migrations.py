"""Migrations 0002 (logistics tables) and 0003 (saga step) go up and down on SQLite and
Postgres."""

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
        assert await current_revision(db) == "0003"
        assert await table_names(db) >= TABLES
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0001")
        assert not TABLES & await table_names(db)
        await upgrade(db, "ehub_logistics.migrations")
        assert await table_names(db) >= TABLES
    finally:
        await db.dispose()


async def shipment_columns_and_indexes(db: Database) -> tuple[set[str], set[str]]:
    def inspect(c: sa.Connection) -> tuple[set[str], set[str]]:
        insp = sa.inspect(c)
        columns = {col["name"] for col in insp.get_columns("logistics_shipments")}
        indexes = {str(ix["name"]) for ix in insp.get_indexes("logistics_shipments")}
        return columns, indexes

    async with db.engine.connect() as conn:
        return await conn.run_sync(inspect)


async def test_0003_adds_and_drops_the_saga_step(database_url):
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_logistics.migrations")
        columns, indexes = await shipment_columns_and_indexes(db)
        assert {"saga_step", "saga_slot"} <= columns
        assert "uq_logistics_shipments_saga_slot" in indexes
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0002")
        assert await current_revision(db) == "0002"
        columns, indexes = await shipment_columns_and_indexes(db)
        assert not {"saga_step", "saga_slot"} & columns
        assert "uq_logistics_shipments_saga_slot" not in indexes
        await upgrade(db, "ehub_logistics.migrations")
        assert await current_revision(db) == "0003"
    finally:
        await db.dispose()

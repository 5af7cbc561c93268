"""Migrations 0002 (logistics tables), 0003 (saga step), 0004 (owners) and 0005 (a
shipment's trace) go up and down on SQLite and Postgres."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ehub_core.db import Database
from ehub_core.migrations import current_revision, upgrade

HEAD = "0006"
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
        assert await current_revision(db) == HEAD
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
        assert await current_revision(db) == HEAD
    finally:
        await db.dispose()


async def test_0004_adds_and_drops_the_owner_keeping_shipments(database_url):
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_logistics.migrations", "0003")
        async with db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO logistics_shipments (id, carrier, service, service_name, "
                    "tracking_number, status, origin_country, destination_country, shipper, "
                    "recipient, parcels, currency, total, charges, chargeable_weight_kg, "
                    "transit_days, ship_date, estimated_delivery, rate_id, rate_card, "
                    "label_pdf, created_at, updated_at) VALUES ('shp_old', 'express', 'x', "
                    "'X', 'EX1', 'created', 'CA', 'CN', '{}', '{}', '[]', 'USD', '1', '{}', "
                    "'1', 1, '2026-01-01', '2026-01-02', 'rte_1', 'card', :pdf, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"pdf": b"%PDF"},
            )
        await upgrade(db, "ehub_logistics.migrations")
        assert await current_revision(db) == HEAD
        columns, indexes = await shipment_columns_and_indexes(db)
        assert "owner" in columns and "ix_logistics_shipments_owner" in indexes
        assert "traceparent" in columns
        async with db.engine.connect() as conn:
            owner = await conn.scalar(sa.text("SELECT owner FROM logistics_shipments"))
        assert owner is None  # from before partner identity: the operator's alone
        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0003")
        columns, indexes = await shipment_columns_and_indexes(db)
        assert "owner" not in columns and "ix_logistics_shipments_owner" not in indexes
        async with db.engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT id FROM logistics_shipments")) == "shp_old"
        await upgrade(db, "ehub_logistics.migrations")
        assert await current_revision(db) == HEAD
    finally:
        await db.dispose()

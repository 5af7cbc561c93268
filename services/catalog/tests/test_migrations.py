"""Migration 0003 adds the sellers' ship_from/auto_accept and the stock reservations, 0004
the owners of sellers and products, on SQLite and Postgres, keeping existing rows, and
each goes down again."""

from __future__ import annotations

from importlib.resources import files

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ehub_core.db import Database
from ehub_core.migrations import current_revision, upgrade


def downgrade_to(connection: sa.Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("ehub_catalog.migrations")))
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def inspect(db: Database) -> tuple[set[str], set[str]]:
    def run(conn: sa.Connection) -> tuple[set[str], set[str]]:
        insp = sa.inspect(conn)
        return set(insp.get_table_names()), {c["name"] for c in insp.get_columns("sellers")}

    async with db.engine.connect() as conn:
        return await conn.run_sync(run)


async def test_0003_upgrades_existing_sellers_downgrades_and_upgrades_again(database_url):
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_catalog.migrations", "0002")
        async with db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO sellers (id, name, country, sme_verified, created_at) "
                    "VALUES ('sel_old', 'Old', 'CA', false, CURRENT_TIMESTAMP)"
                )
            )
        await upgrade(db, "ehub_catalog.migrations", "0003")
        assert await current_revision(db) == "0003"
        tables, columns = await inspect(db)
        assert "stock_reservations" in tables and {"ship_from", "auto_accept"} <= columns
        async with db.engine.connect() as conn:
            row = (await conn.execute(sa.text("SELECT ship_from, auto_accept FROM sellers"))).one()
        assert row.ship_from is None and not row.auto_accept

        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0002")
        tables, columns = await inspect(db)
        assert "stock_reservations" not in tables and not {"ship_from", "auto_accept"} & columns
        await upgrade(db, "ehub_catalog.migrations", "0003")
        assert await current_revision(db) == "0003"
    finally:
        await db.dispose()


async def indexes(db: Database, table: str) -> set[str]:
    def run(conn: sa.Connection) -> set[str]:
        return {i["name"] for i in sa.inspect(conn).get_indexes(table) if i["name"]}

    async with db.engine.connect() as conn:
        return await conn.run_sync(run)


async def test_0004_adds_owners_to_existing_rows_downgrades_and_upgrades_again(database_url):
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_catalog.migrations", "0003")
        async with db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO sellers (id, name, country, sme_verified, auto_accept, "
                    "created_at) VALUES ('sel_old', 'Old', 'CA', false, false, CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO products (id, seller_id, title, description, hs_code, "
                    "origin_country, price, currency, weight_kg, stock, created_at) VALUES "
                    "('prd_old', 'sel_old', 'T', '', '030632', 'CA', 1, 'CAD', 1, 1, "
                    "CURRENT_TIMESTAMP)"
                )
            )
        await upgrade(db, "ehub_catalog.migrations", "0004")
        assert await current_revision(db) == "0004"
        async with db.engine.connect() as conn:
            for table in ("sellers", "products"):
                owner = (await conn.execute(sa.text(f"SELECT owner FROM {table}"))).scalar_one()
                assert owner is None  # rows from before: the operator's alone
        assert "ix_sellers_owner" in await indexes(db, "sellers")
        assert "ix_products_owner" in await indexes(db, "products")

        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0003")
        _, columns = await inspect(db)
        assert "owner" not in columns
        async with db.engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT id FROM products"))).scalar() == "prd_old"
        await upgrade(db, "ehub_catalog.migrations", "0004")
        assert await current_revision(db) == "0004"
    finally:
        await db.dispose()


async def test_0006_lists_existing_products_searchable_and_goes_down_again(database_url, tmp_path):
    from ehub_catalog.app import create_app
    from ehub_catalog.settings import CatalogSettings
    from ehub_core.testing import serve_in_process

    db = Database(database_url)
    try:
        await upgrade(db, "ehub_catalog.migrations", "0005")
        async with db.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO sellers (id, name, country, sme_verified, auto_accept, "
                    "created_at) VALUES ('sel_old', 'Old', 'CA', true, false, CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO products (id, seller_id, title, description, hs_code, "
                    "origin_country, price, currency, weight_kg, stock, created_at) VALUES "
                    "('prd_old', 'sel_old', 'Smoked lobster', '', '030632', 'CA', 1, 'CAD', "
                    "1, 1, CURRENT_TIMESTAMP)"
                )
            )
        await upgrade(db, "ehub_catalog.migrations", "0006")
        assert await current_revision(db) == "0006"
        # The first start names this hub as the source of the listings made from products.
        app = create_app(CatalogSettings(database_url=database_url, var_dir=tmp_path, hub_id="CA"))
        async with serve_in_process(app) as client:
            r = await client.get("/v1/products", params={"ship_to": "CN", "q": "lobsters"})
            hits = r.json()["items"]
            assert [(h["id"], h["source_hub"]) for h in hits] == [("prd_old", "CA")]
            assert hits[0]["seller"]["sme_verified"] is True

        async with db.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0005")
        tables, _ = await inspect(db)
        assert "listings" not in tables and "listings_fts" not in tables
        async with db.engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT id FROM products"))).scalar() == "prd_old"
        await upgrade(db, "ehub_catalog.migrations", "0006")
        assert await current_revision(db) == "0006"
    finally:
        await db.dispose()

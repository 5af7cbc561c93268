"""Listings: the search read model (docs/catalog.md), with full-text search.

One row per listing a search can find. The hub's own products feed it in the same
transaction as the product; ``source_hub`` names the hub a listing comes from, so peers'
listings (planned) become more rows of the same table. Products gain their parcel
dimensions.

Full text: SQLite keeps an FTS5 index (``listings_fts``, external content, kept by
triggers); Postgres a stored ``tsvector`` column with a GIN index. Both stem English
(porter / ``english``), title weighted above description.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE listings_fts USING fts5(title, description, content='listings', "
    "content_rowid='seq', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER listings_fts_ai AFTER INSERT ON listings BEGIN "
    "INSERT INTO listings_fts(rowid, title, description) "
    "VALUES (new.seq, new.title, new.description); END",
    "CREATE TRIGGER listings_fts_ad AFTER DELETE ON listings BEGIN "
    "INSERT INTO listings_fts(listings_fts, rowid, title, description) "
    "VALUES ('delete', old.seq, old.title, old.description); END",
    "CREATE TRIGGER listings_fts_au AFTER UPDATE OF title, description ON listings BEGIN "
    "INSERT INTO listings_fts(listings_fts, rowid, title, description) "
    "VALUES ('delete', old.seq, old.title, old.description); "
    "INSERT INTO listings_fts(rowid, title, description) "
    "VALUES (new.seq, new.title, new.description); END",
]
POSTGRES_FTS = [
    "ALTER TABLE listings ADD COLUMN search tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(description, '')), 'B')) STORED",
    "CREATE INDEX ix_listings_search ON listings USING GIN (search)",
]


def upgrade() -> None:
    op.add_column("products", sa.Column("dimensions_cm", sa.JSON(), nullable=True))
    op.create_table(
        "listings",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(80), nullable=False, unique=True),
        sa.Column("source_hub", sa.String(2), nullable=False),
        sa.Column("product_id", sa.String(40), nullable=False),
        sa.Column("seller_id", sa.String(40), nullable=False),
        sa.Column("seller_name", sa.String(200), nullable=False),
        sa.Column("seller_country", sa.String(2), nullable=False),
        sa.Column("seller_sme_verified", sa.Boolean(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("hs_code", sa.String(10), nullable=False),
        sa.Column("origin_country", sa.String(2), nullable=False),
        sa.Column("price", sa.Numeric(18, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("weight_kg", sa.Numeric(10, 3), nullable=False),
        sa.Column("dimensions_cm", sa.JSON(), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_listings_seller_id", "listings", ["seller_id"])
    op.create_index("ix_listings_hs_code", "listings", ["hs_code"])
    op.create_index("ix_listings_origin_country", "listings", ["origin_country"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS if dialect == "sqlite" else POSTGRES_FTS:
        op.execute(statement)
    # Existing products become listings of this hub (the hub id is not known to a
    # migration: the first start fills source_hub in, see listings.adopt_unassigned).
    op.execute(
        "INSERT INTO listings (id, source_hub, product_id, seller_id, seller_name, "
        "seller_country, seller_sme_verified, title, description, hs_code, origin_country, "
        "price, currency, weight_kg, listed_at) "
        "SELECT p.id, '', p.id, s.id, s.name, s.country, s.sme_verified, p.title, "
        "p.description, p.hs_code, p.origin_country, p.price, p.currency, p.weight_kg, "
        "p.created_at FROM products p JOIN sellers s ON s.id = p.seller_id ORDER BY p.id"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("listings_fts_ai", "listings_fts_ad", "listings_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS listings_fts")
    op.drop_table("listings")
    op.drop_column("products", "dimensions_cm")

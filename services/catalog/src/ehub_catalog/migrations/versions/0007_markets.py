"""Listings that travel: a product's markets and version; peers' listings' versions.

``products.markets`` lists the hubs (ISO 3166-1 alpha-2) a seller offers the product in
besides its own; ``products.version`` counts its changes, and each ``ProductListed`` /
``Updated`` / ``Delisted`` carries it, so a receiving hub keeps the newest whatever the
order of arrival. ``listings.version`` is that version for a peer's listing (1 for this
hub's own); ``listings.withdrawn`` marks a peer's listing delisted (kept with its
version, so an older update arriving late cannot bring it back). Searches skip
withdrawn rows.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy): on SQLite a copy would drop the full-text
    # index's triggers on ``listings`` (0006).
    op.add_column("products", sa.Column("markets", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column(
        "products", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "listings", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "listings",
        sa.Column("withdrawn", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("listings", "withdrawn")
    op.drop_column("listings", "version")
    op.drop_column("products", "version")
    op.drop_column("products", "markets")

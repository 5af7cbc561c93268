"""Owners: the partner (prt_...) each seller and product belongs to (docs/partners.md).

Nullable: rows created before partner identity, or in development mode, have none and
are seen only by the operator (and anonymous development callers).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sellers", sa.Column("owner", sa.String(64), nullable=True))
    op.create_index("ix_sellers_owner", "sellers", ["owner"])
    op.add_column("products", sa.Column("owner", sa.String(64), nullable=True))
    op.create_index("ix_products_owner", "products", ["owner"])


def downgrade() -> None:
    # Indexes first: SQLite refuses to drop an indexed column. Plain DROP COLUMN
    # (SQLite >= 3.35): no table rebuild, so the products' foreign key is left alone.
    op.drop_index("ix_products_owner", table_name="products")
    op.drop_column("products", "owner")
    op.drop_index("ix_sellers_owner", table_name="sellers")
    op.drop_column("sellers", "owner")

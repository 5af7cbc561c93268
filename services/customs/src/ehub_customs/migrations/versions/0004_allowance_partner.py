"""Allowance entries remember the marketplace (prt_...) that placed the order
(docs/partners.md): only it may read the buyer's allowance.

Nullable: entries from before partner identity have none (the operator reads them).

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
    op.add_column(
        "customs_allowance_entries", sa.Column("partner_id", sa.String(64), nullable=True)
    )
    op.create_index(
        "ix_allowance_partner_buyer",
        "customs_allowance_entries",
        ["partner_id", "country", "buyer_id"],
    )


def downgrade() -> None:
    # Index first (SQLite refuses to drop an indexed column); plain DROP COLUMN
    # (SQLite >= 3.35): no table rebuild.
    op.drop_index("ix_allowance_partner_buyer", table_name="customs_allowance_entries")
    op.drop_column("customs_allowance_entries", "partner_id")

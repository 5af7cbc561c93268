"""Allowance ledger for person-year quota regimes.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customs_allowance_entries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("buyer_id", sa.String(100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("country", "order_id", name="uq_allowance_country_order"),
    )
    op.create_index(
        "ix_allowance_buyer_year", "customs_allowance_entries", ["country", "buyer_id", "year"]
    )


def downgrade() -> None:
    op.drop_index("ix_allowance_buyer_year", table_name="customs_allowance_entries")
    op.drop_table("customs_allowance_entries")

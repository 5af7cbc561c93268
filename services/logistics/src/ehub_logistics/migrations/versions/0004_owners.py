"""Owners: the partner (prt_...) that booked each shipment (docs/partners.md).

Nullable: the order saga's bookings, rows from before partner identity and development
mode have none and are seen only by the operator (and anonymous development callers).

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
    op.add_column("logistics_shipments", sa.Column("owner", sa.String(64), nullable=True))
    op.create_index("ix_logistics_shipments_owner", "logistics_shipments", ["owner"])


def downgrade() -> None:
    # Index first (SQLite refuses to drop an indexed column); plain DROP COLUMN (SQLite
    # >= 3.35): no table rebuild, so the tracking events' foreign key is left alone.
    op.drop_index("ix_logistics_shipments_owner", table_name="logistics_shipments")
    op.drop_column("logistics_shipments", "owner")

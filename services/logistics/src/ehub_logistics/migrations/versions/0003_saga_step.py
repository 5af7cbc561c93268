"""Shipments remember the order saga's step they were booked for.

``saga_step`` is the step (``ship``, ``return``) kept for good; ``saga_slot`` is the
same step while the shipment is the order's live booking for it, cleared on
cancellation. The unique index on ``(order_id, saga_slot)`` allows one live shipment
per order and step (rows with a NULL never conflict, on SQLite and Postgres alike).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("logistics_shipments", sa.Column("saga_step", sa.String(64), nullable=True))
    op.add_column("logistics_shipments", sa.Column("saga_slot", sa.String(64), nullable=True))
    op.create_index(
        "uq_logistics_shipments_saga_slot",
        "logistics_shipments",
        ["order_id", "saga_slot"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_logistics_shipments_saga_slot", "logistics_shipments")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): no table rebuild, so the
    # tracking events' foreign key to this table is left alone.
    op.drop_column("logistics_shipments", "saga_slot")
    op.drop_column("logistics_shipments", "saga_step")

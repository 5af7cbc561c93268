"""Shipments remember the trace of their booking.

``traceparent`` (W3C) is the trace context the shipment was booked in (for an order,
the order's trace); tracking events arriving later from the carrier continue it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("logistics_shipments", sa.Column("traceparent", sa.String(60), nullable=True))


def downgrade() -> None:
    op.drop_column("logistics_shipments", "traceparent")

"""Shipments and tracking events.

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
        "logistics_shipments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("service_name", sa.String(200), nullable=False),
        sa.Column("tracking_number", sa.String(64), nullable=False),
        sa.Column("carrier_reference", sa.String(200), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("origin_country", sa.String(2), nullable=False),
        sa.Column("destination_country", sa.String(2), nullable=False),
        sa.Column("shipper", sa.JSON(), nullable=False),
        sa.Column("recipient", sa.JSON(), nullable=False),
        sa.Column("parcels", sa.JSON(), nullable=False),
        sa.Column("customs", sa.JSON(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", sa.String(40), nullable=False),
        sa.Column("charges", sa.JSON(), nullable=False),
        sa.Column("chargeable_weight_kg", sa.String(40), nullable=False),
        sa.Column("transit_days", sa.Integer(), nullable=False),
        sa.Column("ship_date", sa.Date(), nullable=False),
        sa.Column("estimated_delivery", sa.Date(), nullable=False),
        sa.Column("rate_id", sa.String(40), nullable=False),
        sa.Column("rate_card", sa.String(64), nullable=False),
        sa.Column("label_pdf", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("carrier", "tracking_number", name="uq_logistics_shipments_tracking"),
    )
    op.create_index("ix_logistics_shipments_order_id", "logistics_shipments", ["order_id"])
    op.create_table(
        "logistics_tracking_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "shipment_id",
            sa.String(40),
            sa.ForeignKey("logistics_shipments.id", name="fk_logistics_events_shipment"),
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("carrier_code", sa.String(32), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(200), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("anomaly", sa.Text(), nullable=True),
        sa.UniqueConstraint("shipment_id", "dedup_key", name="uq_logistics_events_dedup"),
    )
    op.create_index(
        "ix_logistics_tracking_events_shipment_id", "logistics_tracking_events", ["shipment_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_logistics_tracking_events_shipment_id", "logistics_tracking_events")
    op.drop_table("logistics_tracking_events")
    op.drop_index("ix_logistics_shipments_order_id", "logistics_shipments")
    op.drop_table("logistics_shipments")

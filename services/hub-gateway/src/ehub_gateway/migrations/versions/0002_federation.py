"""Federation: peers and their keys, outbound events, receipts, received events.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fed_peers",
        sa.Column("hub_id", sa.String(2), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=False),
        sa.Column("pinned_fingerprint", sa.String(100), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.Column("allowed_types", sa.JSON(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("refreshed_at", TS, nullable=False),
    )
    op.create_table(
        "fed_peer_keys",
        sa.Column("kid", sa.String(100), primary_key=True),
        sa.Column(
            "hub_id",
            sa.String(2),
            sa.ForeignKey("fed_peers.hub_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("not_after", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("added_at", TS, nullable=False),
    )
    op.create_table(
        "fed_outbound",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("target_hub", sa.String(2), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(10), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("receipt_id", sa.String(36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("receipted_at", TS, nullable=True),
    )
    op.create_index("ix_fed_outbound_due", "fed_outbound", ["status", "next_attempt_at"])
    op.create_table(
        "fed_receipts",
        sa.Column("receipt_id", sa.String(36), primary_key=True),
        sa.Column("receiver_hub", sa.String(2), nullable=False),
        sa.Column("signed_receipt", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_table(
        "fed_received",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("source_hub", sa.String(2), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("traceparent", sa.String(60), nullable=True),
        sa.Column("via", sa.String(10), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("fed_received", "fed_receipts", "fed_outbound", "fed_peer_keys", "fed_peers"):
        op.drop_table(table)

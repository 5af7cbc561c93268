"""Customs declarations; allowance entries get a status (reserved, confirmed, released).

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
    # Every entry so far was written for a committed order: it is confirmed.
    op.add_column(
        "customs_allowance_entries",
        sa.Column("status", sa.String(16), nullable=False, server_default="confirmed"),
    )
    op.create_index("ix_allowance_order", "customs_allowance_entries", ["order_id"])
    op.create_table(
        "customs_declarations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("order_id", sa.String(100), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("counterpart_country", sa.String(2), nullable=False),
        sa.Column("buyer_ref", sa.String(100), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("total_value", sa.Numeric(18, 2), nullable=False),
        sa.Column("allowance_reserved", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(40), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("order_id", "phase", name="uq_declaration_order_phase"),
        sa.CheckConstraint("phase IN ('import', 'export', 'refund')", name="ck_declaration_phase"),
        sa.CheckConstraint(
            "decision IN ('cleared', 'held', 'inspect', 'rejected', 'claimed')",
            name="ck_declaration_decision",
        ),
    )


def downgrade() -> None:
    op.drop_table("customs_declarations")
    op.drop_index("ix_allowance_order", table_name="customs_allowance_entries")
    with op.batch_alter_table("customs_allowance_entries") as batch:
        batch.drop_column("status")

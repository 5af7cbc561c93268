"""Sellers' dispatch address and order policy; stock reservations of the order saga.

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
    op.add_column("sellers", sa.Column("ship_from", sa.JSON(), nullable=True))
    op.add_column(
        "sellers",
        sa.Column("auto_accept", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "stock_reservations",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("seller_id", sa.String(40), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restocked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_stock_reservations_seller_id", "stock_reservations", ["seller_id"])


def downgrade() -> None:
    op.drop_index("ix_stock_reservations_seller_id", table_name="stock_reservations")
    op.drop_table("stock_reservations")
    with op.batch_alter_table("sellers") as batch:
        batch.drop_column("auto_accept")
        batch.drop_column("ship_from")

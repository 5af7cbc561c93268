"""Orders: the order, its timeline, the saga's outstanding commands.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("buyer_hub", sa.String(2), nullable=False),
        sa.Column("seller_hub", sa.String(2), nullable=False),
        sa.Column("seller_id", sa.String(40), nullable=False),
        sa.Column("partner_reference", sa.String(200), nullable=True),
        sa.Column("buyer_ref", sa.String(64), nullable=False),
        sa.Column("identity_ref", sa.String(64), nullable=True),
        sa.Column("ship_to", sa.JSON(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("seller_currency", sa.String(3), nullable=False),
        sa.Column("money", sa.JSON(), nullable=False),
        sa.Column("shipping", sa.JSON(), nullable=False),
        sa.Column("shipment", sa.JSON(), nullable=True),
        sa.Column("declarations", sa.JSON(), nullable=False),
        sa.Column("seller", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("accept_by", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_orders_state", "orders", ["state"])
    op.create_index("ix_orders_seller_id", "orders", ["seller_id"])
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_table(
        "order_steps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("hub", sa.String(2), nullable=False),
        sa.Column("what", sa.String(60), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_order_steps_order_id", "order_steps", ["order_id"])
    op.create_table(
        "saga_commands",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("stream", sa.String(40), nullable=False),
        sa.Column("command", sa.String(40), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("sent_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.UniqueConstraint("order_id", "step"),
    )
    op.create_index("ix_saga_commands_sent_at", "saga_commands", ["sent_at"])


def downgrade() -> None:
    op.drop_table("saga_commands")
    op.drop_table("order_steps")
    op.drop_table("orders")

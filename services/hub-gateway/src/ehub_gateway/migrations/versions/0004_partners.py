"""Partners and their API keys; orders belong to a partner.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("rate_per_second", sa.Float(), nullable=False),
        sa.Column("burst", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "partner_keys",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("partner_id", sa.String(40), sa.ForeignKey("partners.id"), nullable=False),
        sa.Column("mode", sa.String(4), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("changed_at", TS, nullable=False),
    )
    op.create_index("ix_partner_keys_partner_id", "partner_keys", ["partner_id"])
    op.create_index("ix_partner_keys_changed_at", "partner_keys", ["changed_at"])
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("partner_id", sa.String(40), nullable=True))
        batch.create_index("ix_orders_partner_id", ["partner_id"])


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_partner_id")
        batch.drop_column("partner_id")
    op.drop_table("partner_keys")
    op.drop_table("partners")

"""Saga commands and orders remember their trace, so a re-sent command and a deadline
continue the order's trace instead of starting one.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("saga_commands") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(60), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("traceparent")
    with op.batch_alter_table("saga_commands") as batch:
        batch.drop_column("traceparent")

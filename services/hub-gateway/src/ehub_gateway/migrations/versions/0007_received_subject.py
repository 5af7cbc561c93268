"""Received events are found by their subject: ingest looks up the ``OrderPlaced`` of an
order the saga has not made yet, to know which hub may speak of it (federation/parties.py).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_fed_received_subject", "fed_received", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_fed_received_subject", table_name="fed_received")

"""Core tables: outbox, inbox, nonce store.

Revision ID: 0001
Revises:
"""

from ehub_core.migrations import create_core_tables, drop_core_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_core_tables()


def downgrade() -> None:
    drop_core_tables()

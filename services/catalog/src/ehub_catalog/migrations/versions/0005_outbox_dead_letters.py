"""Core: outbox rows the broker refused for good are set aside with dead_at.

Revision ID: 0005
Revises: 0004
"""

from ehub_core.migrations import add_outbox_dead_letters, drop_outbox_dead_letters

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_dead_letters()


def downgrade() -> None:
    drop_outbox_dead_letters()

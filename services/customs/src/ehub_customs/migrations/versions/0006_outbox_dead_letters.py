"""Core: outbox rows the broker refused for good are set aside with dead_at.

Revision ID: 0006
Revises: 0005
"""

from ehub_core.migrations import add_outbox_dead_letters, drop_outbox_dead_letters

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_dead_letters()


def downgrade() -> None:
    drop_outbox_dead_letters()

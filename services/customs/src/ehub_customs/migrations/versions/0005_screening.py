"""Risk screening and the officer's clearance queue: screening hits per declaration,
the whitelist of cleared false positives, and on declarations the consignee key (split
consignments), the claim and the officer's last decision.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customs_declarations") as batch:
        batch.add_column(sa.Column("consignee_key", sa.String(300), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("officer_decision", sa.String(24), nullable=True))
        batch.add_column(sa.Column("documents", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("parties", sa.JSON(), nullable=True))
    # History of a consignee's parcels into a country (split consignments) and the queue.
    op.create_index(
        "ix_declaration_consignee",
        "customs_declarations",
        ["country", "phase", "consignee_key", "filed_at"],
    )
    op.create_index(
        "ix_declaration_buyer",
        "customs_declarations",
        ["country", "phase", "buyer_ref", "filed_at"],
    )
    op.create_index("ix_declaration_queue", "customs_declarations", ["decision", "filed_at", "id"])
    op.create_table(
        "customs_screening_hits",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "declaration_id",
            sa.String(40),
            sa.ForeignKey("customs_declarations.id"),
            nullable=False,
        ),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(160), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("line_id", sa.String(100), nullable=True),
        sa.Column("subject", sa.String(300), nullable=True),
        sa.Column("entry", sa.String(160), nullable=True),
        sa.Column("score", sa.Numeric(5, 1), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('goods', 'party', 'value', 'split')", name="ck_screening_hit_category"
        ),
    )
    op.create_index(
        "ix_customs_screening_hits_declaration_id", "customs_screening_hits", ["declaration_id"]
    )
    op.create_table(
        "customs_screening_whitelist",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("entry", sa.String(160), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cleared_by", sa.String(64), nullable=False),
        sa.Column("declaration_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("subject", "entry", name="uq_whitelist_subject_entry"),
    )


def downgrade() -> None:
    op.drop_table("customs_screening_whitelist")
    op.drop_index("ix_customs_screening_hits_declaration_id", table_name="customs_screening_hits")
    op.drop_table("customs_screening_hits")
    op.drop_index("ix_declaration_queue", table_name="customs_declarations")
    op.drop_index("ix_declaration_buyer", table_name="customs_declarations")
    op.drop_index("ix_declaration_consignee", table_name="customs_declarations")
    with op.batch_alter_table("customs_declarations") as batch:
        for column in (
            "parties",
            "documents",
            "officer_decision",
            "claimed_at",
            "claimed_by",
            "consignee_key",
        ):
            batch.drop_column(column)

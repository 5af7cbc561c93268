"""Alembic migrations, one history per service, applied at start-up.

Each service keeps ``ehub_<service>/migrations/`` with an ``env.py`` that calls
:func:`run_env` and a ``versions/`` folder whose first revision calls
:func:`create_core_tables` (outbox, inbox, nonce store, idempotency keys).
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.engine import Connection

from ehub_core.db import Database


def add_outbox_dead_letters() -> None:
    """Core, second step: ``ehub_outbox.dead_at`` (rows the broker refused for good).
    Every service calls it from one revision of its own."""
    with op.batch_alter_table("ehub_outbox") as batch:
        batch.add_column(sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True))


def drop_outbox_dead_letters() -> None:
    with op.batch_alter_table("ehub_outbox") as batch:
        batch.drop_column("dead_at")


def create_core_tables() -> None:
    """Create the core tables; call from a service's first revision."""
    op.create_table(
        "ehub_outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_ehub_outbox_pending", "ehub_outbox", ["sent_at", "id"])
    op.create_table(
        "ehub_inbox",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ehub_nonces",
        sa.Column("key_id", sa.String(100), primary_key=True),
        sa.Column("nonce", sa.String(100), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "ehub_idempotency",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_core_tables() -> None:
    op.drop_table("ehub_idempotency")
    op.drop_table("ehub_nonces")
    op.drop_table("ehub_inbox")
    op.drop_index("ix_ehub_outbox_pending", table_name="ehub_outbox")
    op.drop_table("ehub_outbox")


def run_env() -> None:
    """Body of every service's ``migrations/env.py`` (online mode, given connection)."""
    connection = context.config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only via the alembic CLI
        raise RuntimeError("ehub migrations run through ehub_core.migrations.upgrade()")
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _config(package: str) -> Config:
    cfg = Config()
    location = importlib.resources.files(package)
    cfg.set_main_option("script_location", str(location))
    return cfg


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(db: Database, package: str, revision: str = "head") -> None:
    """Apply the migrations in ``package`` (e.g. ``ehub_catalog.migrations``)."""
    cfg = _config(package)
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade, cfg, revision)


async def current_revision(db: Database) -> Any:
    async with db.engine.connect() as conn:
        try:
            result = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        except Exception:
            return None
        return result.scalar_one_or_none()

"""Async SQLAlchemy 2 engine and sessions: SQLite (aiosqlite) by default, Postgres
(asyncpg) when the URL says so.

SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` transactions and a busy timeout, so
the request handlers, the outbox relay and consumers of one process can write
concurrently without "database is locked" errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, TypeDecorator, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger("ehub.db")


class Database:
    """One engine and session factory per service process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Read-only work (the relay's scan, caches, readiness) must not queue behind
        # writers on SQLite: its sessions begin a plain deferred transaction.
        # SQLite allows one writer at a time. Writers of this process queue here, in
        # order, instead of on SQLite's busy handler, which polls with sleeps of up to
        # 100 ms and turns contention into second-long stalls. Other processes (the CLI)
        # still meet the busy timeout.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self.reader = async_sessionmaker(
            self.engine.execution_options(ehub_read_only=True), expire_on_commit=False
        )

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def write_slot(self) -> AsyncIterator[None]:
        """Hold the process's write turn (SQLite only; a no-op on Postgres)."""
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed on success, rolled back on error."""
        async with self.write_slot(), self.sessionmaker() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise if the database cannot answer ``SELECT 1``."""
        async with self.reader() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are off).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers queue on the busy
        # timeout instead of one failing when it upgrades a read lock (in WAL mode an
        # upgrade after another commit fails at once). Readers need no lock at all.
        if conn.get_execution_options().get("ehub_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    SQLite has no time zones and hands back naive datetimes; this type stores UTC and
    always returns aware UTC values, so code never compares naive with aware times.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def insert_new(
    session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> set[tuple[Any, ...]]:
    """Insert ``rows`` in one statement, skipping any whose ``key`` already exists (or
    repeats within ``rows``); return the keys actually inserted.

    The one "record it unless seen" primitive behind the inbox and the nonce stores:
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING key`` on SQLite and Postgres alike.
    """
    unique = list({tuple(r[k] for k in key): r for r in reversed(rows)}.values())[::-1]
    if not unique:
        return set()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(model)
        .values(unique)
        .on_conflict_do_nothing(index_elements=list(key))
        .returning(*(getattr(model, k) for k in key))
    )
    return {tuple(row) for row in (await session.execute(stmt)).all()}

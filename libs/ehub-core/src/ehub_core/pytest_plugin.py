"""Shared pytest fixtures for ehub's tests (loaded by the repository's conftest.py).

- ``broker``: one real embedded Kafka-protocol broker per test session.
- ``database_url``: parametrized over SQLite and Postgres; each test gets a fresh
  database. Postgres runs only when ``EHUB_TEST_POSTGRES_URL`` points at a server
  (``.ci/run`` starts a throwaway cluster and sets it); otherwise those cases skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ehub_core.broker import EmbeddedBroker

PG_ENV = "EHUB_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(log_path=log) as b:
        yield b


async def _create_pg_database(admin_url: str) -> str:
    import asyncpg

    name = f"ehub_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_pg_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def postgres_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new Postgres database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    admin = postgres_admin_url()
    if not admin:
        pytest.skip(f"{PG_ENV} not set")
    name = await _create_pg_database(admin)
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{base.split('://', 1)[1]}/{name}"
    finally:
        await asyncio.sleep(0)
        await _drop_pg_database(admin, name)

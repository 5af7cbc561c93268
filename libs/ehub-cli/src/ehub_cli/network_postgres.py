"""The Postgres server a local network keeps its databases on (``ehub network up
--postgres ADMIN_URL``): one database per hub and service, ``<prefix>_<hub>_<service>``
(``ehub_cn_gateway``, ...), created when missing, reused when present, refused while
another network uses them, and dropped and recreated with ``--fresh``."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DB_PREFIX = "ehub"
_DB_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DB_SLOT = "EHUBDATABASENAME"  # stands for the database name while a URL is rendered


@dataclass(frozen=True)
class PostgresServer:
    """The Postgres server a network keeps its databases on, from an admin URL such as
    ``postgresql://postgres@127.0.0.1:5432/postgres`` (what ``scripts/pg-throwaway``
    prints): a role that may create databases, and a database to connect to meanwhile.

    Each hub's service gets the database ``<prefix>_<hub>_<service>`` (lower case).
    """

    admin: URL
    prefix: str = DEFAULT_DB_PREFIX

    @classmethod
    def parse(cls, admin_url: str, prefix: str = DEFAULT_DB_PREFIX) -> PostgresServer:
        """Raise ValueError, with the reason, for anything but a Postgres URL."""
        try:
            url = make_url(admin_url.strip())
        except ArgumentError:
            raise ValueError(
                "expected a URL such as postgresql://postgres@127.0.0.1:5432/postgres"
            ) from None
        if url.drivername not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError(f"must be a postgresql:// URL (got {url.drivername}://...)")
        if not _DB_PREFIX_RE.match(prefix):
            raise ValueError(
                f"database prefix must be a lower-case letter, then up to 39 of a-z, 0-9, _"
                f" (got {prefix!r})"
            )
        return cls(url.set(drivername="postgresql", database=url.database or "postgres"), prefix)

    @property
    def server(self) -> str:
        return f"{self.admin.host or 'localhost'}:{self.admin.port or 5432}"

    def database(self, hub: str, service: str) -> str:
        return f"{self.prefix}_{hub.lower()}_{service}"

    def url_template(self, *, hide_password: bool = False) -> str:
        """``EHUB_DATABASE_URL`` for every service: ``postgresql+asyncpg://.../
        <prefix>_{hub}_{service}``, which each process's settings fill in."""
        rendered = self.admin.set(drivername="postgresql+asyncpg", database=_DB_SLOT)
        text = rendered.render_as_string(hide_password=hide_password)
        text = text.replace("{", "{{").replace("}", "}}")  # literal braces survive format()
        return text.replace(_DB_SLOT, f"{self.prefix}_{{hub}}_{{service}}")

    def service_url(self, hub: str, service: str) -> str:
        """The database URL ``hub``'s ``service`` ends up with (as its settings fill in
        the template)."""
        return self.url_template().format(hub=hub.lower(), service=service)

    async def _connect(self) -> Any:
        import asyncpg

        try:
            return await asyncpg.connect(
                self.admin.render_as_string(hide_password=False), timeout=15
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise RuntimeError(f"cannot connect to Postgres at {self.server}: {exc}") from None

    def prepare(self, names: list[str], *, fresh: bool = False) -> tuple[list[str], list[str]]:
        """Create the databases that are missing (all of them, dropped first, with
        ``fresh``); return (created, reused). Refuse (RuntimeError) if any of them has a
        connection: another network runs on them."""

        async def run() -> tuple[list[str], list[str]]:
            import asyncpg

            conn = await self._connect()
            try:
                busy = await conn.fetch(
                    "SELECT datname, count(*) AS n FROM pg_stat_activity "
                    "WHERE datname = ANY($1::text[]) GROUP BY datname ORDER BY datname",
                    names,
                )
                if busy:
                    used = ", ".join(f"{r['datname']} {r['n']}" for r in busy)
                    raise RuntimeError(
                        f"the Postgres databases on {self.server} are in use (connections: "
                        f"{used}): another network runs on them; stop it, or name other "
                        "databases with --db-prefix"
                    )
                rows = await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", names
                )
                existing = {r["datname"] for r in rows}
                if fresh:
                    for name in sorted(existing):
                        await conn.execute(f'DROP DATABASE "{name}"')
                    existing = set()
                created, reused = [], []
                for name in names:
                    if name in existing:
                        reused.append(name)
                        continue
                    try:
                        await conn.execute(f'CREATE DATABASE "{name}"')
                    except asyncpg.DuplicateDatabaseError:  # created meanwhile
                        reused.append(name)
                        continue
                    created.append(name)
                return created, reused
            except asyncpg.PostgresError as exc:
                raise RuntimeError(f"Postgres at {self.server}: {exc}") from None
            finally:
                await conn.close()

        return asyncio.run(run())

    def drop(self, names: list[str]) -> None:
        """Drop the databases (gone already is fine), closing what still uses them."""

        async def run() -> None:
            conn = await self._connect()
            try:
                for name in names:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(run())

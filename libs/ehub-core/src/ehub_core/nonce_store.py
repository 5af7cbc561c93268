"""The SQL nonce store: replay protection that covers a signature's whole validity window
and survives restarts (the nonces live in the service's database, ``ehub_nonces``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database
from ehub_core.models import NonceRecord


class SqlNonceStore:
    """:class:`ehub_core.signing.NonceStore` on the request's own session, so the nonce is
    recorded in the same transaction as the request's effect (both or neither)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def check_and_store(self, kid: str, nonce: str, expires_at: datetime) -> bool:
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(NonceRecord)
            .values(key_id=kid, nonce=nonce, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["key_id", "nonce"])
        )
        result = await self.session.execute(stmt)
        # A conflict means seen before (an expired record would fail its own expiry check
        # anyway, so "seen" is the safe answer until the purge removes it).
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def purge_expired_nonces(db: Database, now: datetime | None = None) -> int:
    """Delete nonces whose signatures have expired; return how many."""
    async with db.transaction() as session:
        result = await session.execute(
            delete(NonceRecord).where(NonceRecord.expires_at < (now or datetime.now(UTC)))
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

"""The SQL nonce store: replay protection that covers a signature's whole validity window
and survives restarts (the nonces live in the service's database, ``ehub_nonces``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database, insert_new
from ehub_core.models import NonceRecord


class SqlNonceStore:
    """:class:`ehub_core.signing.NonceStore` on the request's own session, so the nonce is
    recorded in the same transaction as the request's effect (both or neither)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def check_and_store(self, kid: str, nonce: str, expires_at: datetime) -> bool:
        # A conflict means seen before (an expired record would fail its own expiry check
        # anyway, so "seen" is the safe answer until the purge removes it).
        row = {"key_id": kid, "nonce": nonce, "expires_at": expires_at}
        return bool(await insert_new(self.session, NonceRecord, [row], ("key_id", "nonce")))


async def purge_expired_nonces(db: Database, now: datetime | None = None) -> int:
    """Delete nonces whose signatures have expired; return how many."""
    async with db.transaction() as session:
        result = await session.execute(
            delete(NonceRecord).where(NonceRecord.expires_at < (now or datetime.now(UTC)))
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

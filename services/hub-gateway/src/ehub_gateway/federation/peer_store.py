"""The SQL of trust: peers and their keys (``fed_peers``, ``fed_peer_keys``).

The database is the truth; :class:`~ehub_gateway.federation.trust.TrustStore` mirrors it
in memory. Documents are fetched and verified by ``peer_docs.py``, which stores what
they say through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database
from ehub_core.signing import PublicKeyInfo
from ehub_gateway.federation.models import Peer, PeerKey
from ehub_gateway.federation.wellknown import DocumentError, VerifiedDocument

TRANSPORTS = ("http", "kafka")


async def load_all(db: Database) -> tuple[Sequence[Peer], Sequence[PeerKey]]:
    async with db.reader() as session:
        peers = (await session.scalars(select(Peer))).all()
        keys = (await session.scalars(select(PeerKey))).all()
    return peers, keys


def key_info(key: PeerKey, *, revoked: bool = False) -> PublicKeyInfo:
    return PublicKeyInfo(
        kid=key.kid,
        public_key=key.public_key,
        not_before=key.not_before,
        not_after=key.not_after,
        revoked=revoked or key.revoked_at is not None,
    )


async def store_keys(
    session: AsyncSession, hub_id: str, doc: VerifiedDocument, now: datetime
) -> None:
    """Add the document's new keys; mark the keys it lists as revoked."""
    existing = {
        k.kid: k
        for k in (await session.scalars(select(PeerKey).where(PeerKey.hub_id == hub_id))).all()
    }
    for key in doc.keys:
        if key.kid not in existing:
            session.add(
                PeerKey(
                    kid=key.kid,
                    hub_id=hub_id,
                    public_key=key.public_key,
                    not_before=key.not_before,
                    not_after=key.not_after,
                    revoked_at=None,
                    added_at=now,
                )
            )
    await session.flush()
    for kid in doc.revoked:
        held = await session.get(PeerKey, kid)
        if held is not None and held.hub_id == hub_id and held.revoked_at is None:
            held.revoked_at = now


async def save_peer(
    db: Database,
    doc: VerifiedDocument,
    *,
    base_url: str,
    fingerprint: str,
    transport: str,
    allowed_types: Sequence[str] | None,
    now: datetime,
    replacing: bool = False,
) -> None:
    """Onboard (or re-pin) the peer ``doc`` describes, with its keys; ``replacing``: its
    old keys go first (revoked ones are kept, revoked). The key material follows the pin:
    a key id we hold with other material is refused unless replacing; a key another hub
    is trusted with is refused (DocumentError; nothing is written)."""
    async with db.transaction() as session:
        others = (
            await session.scalars(
                select(PeerKey).where(
                    PeerKey.hub_id != doc.hub_id,
                    PeerKey.public_key.in_([k.public_key for k in doc.keys]),
                )
            )
        ).all()
        if others:
            raise DocumentError(
                f"key {others[0].kid} of this document is trusted for hub {others[0].hub_id}:"
                f" one key speaks for one hub; refused"
            )
        held = {
            k.kid: k
            for k in (await session.scalars(select(PeerKey).where(PeerKey.hub_id == doc.hub_id)))
        }
        for key in doc.keys:
            old = held.get(key.kid)
            if old is not None and old.public_key != key.public_key and not replacing:
                raise DocumentError(
                    f"key id {key.kid} is held with other key material: refused (use "
                    f"--replace to replace the peer)"
                )
        if replacing:
            await session.execute(
                delete(PeerKey).where(PeerKey.hub_id == doc.hub_id, PeerKey.revoked_at.is_(None))
            )
            await session.flush()
        peer = await session.get(Peer, doc.hub_id)
        if peer is None:
            peer = Peer(hub_id=doc.hub_id, added_at=now)
            session.add(peer)
        peer.name = doc.name
        peer.base_url = base_url.rstrip("/")
        peer.pinned_fingerprint = fingerprint
        peer.transport = transport
        peer.allowed_types = list(allowed_types) if allowed_types is not None else None
        peer.document = doc.raw
        peer.refreshed_at = now
        await session.flush()
        await store_keys(session, doc.hub_id, doc, now)


async def trusted_keys(db: Database, hub_id: str) -> tuple[str, dict[str, PublicKeyInfo]] | None:
    """A peer's base URL and the keys we hold of it, or None if it is no peer."""
    async with db.reader() as session:
        peer = await session.get(Peer, hub_id)
        if peer is None:
            return None
        keys = (await session.scalars(select(PeerKey).where(PeerKey.hub_id == hub_id))).all()
        return peer.base_url, {k.kid: key_info(k) for k in keys}


async def save_refresh(db: Database, hub_id: str, doc: VerifiedDocument, now: datetime) -> bool:
    """Store a peer's re-fetched document and its keys; False if it is no peer now."""
    async with db.transaction() as session:
        peer = await session.get(Peer, hub_id)
        if peer is None:
            return False
        peer.document = doc.raw
        peer.refreshed_at = now
        await store_keys(session, hub_id, doc, now)
    return True


async def remove_peer(db: Database, hub_id: str) -> bool:
    """Stop trusting a peer; its keys are forgotten (a revoked one is known again as
    revoked only if the document it is added back with lists it)."""
    async with db.transaction() as session:
        await session.execute(delete(PeerKey).where(PeerKey.hub_id == hub_id))
        result = await session.execute(delete(Peer).where(Peer.hub_id == hub_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_peers(db: Database) -> list[tuple[Peer, list[PeerKey]]]:
    async with db.reader() as session:
        peers = (await session.scalars(select(Peer).order_by(Peer.hub_id))).all()
        out = []
        for p in peers:
            keys = (
                await session.scalars(
                    select(PeerKey).where(PeerKey.hub_id == p.hub_id).order_by(PeerKey.not_before)
                )
            ).all()
            out.append((p, list(keys)))
    return out


async def mark_revoked(session: AsyncSession, kid: str, when: datetime) -> bool:
    key = await session.get(PeerKey, kid)
    if key is None:
        return False
    if key.revoked_at is None:
        key.revoked_at = when
    return True

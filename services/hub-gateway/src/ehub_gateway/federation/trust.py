"""What this hub trusts: its peers and their keys, held in memory for the verifiers.

The database is the truth (``fed_peers``, ``fed_peer_keys``); :class:`TrustStore` mirrors
it in memory, reloads it every few seconds (so a peer added or removed with the CLI takes
effect without a restart) and is updated at once by pushed revocations. A key id from a
known peer that is not yet known triggers a refresh of that peer's well-known document,
which is how rotated keys reach peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database
from ehub_core.signing import PublicKeyInfo, hub_of
from ehub_gateway.federation.models import Peer, PeerKey
from ehub_gateway.federation.wellknown import DocumentError, VerifiedDocument, verify_document

log = logging.getLogger("ehub.gateway.trust")

TRANSPORTS = ("http", "kafka")


@dataclass(frozen=True)
class PeerInfo:
    hub_id: str
    name: str
    base_url: str
    transport: str
    allowed_types: frozenset[str] | None
    fingerprint: str

    @property
    def events_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/federation/v1/events"

    def may_send(self, event_type: str) -> bool:
        return self.allowed_types is None or event_type in self.allowed_types


class TrustStore:
    def __init__(
        self,
        db: Database,
        own_hub: str,
        *,
        reload_interval: float = 2.0,
        refresh_interval: float = 300.0,
    ) -> None:
        self.db = db
        self.own_hub = own_hub
        self.reload_interval = reload_interval
        self.refresh_interval = refresh_interval
        self._keys: dict[str, PublicKeyInfo] = {}
        # Revocations applied in memory stay applied even if a reload reads the
        # database before their transaction committed.
        self._revoked_here: set[str] = set()
        self._peers: dict[str, PeerInfo] = {}
        self._refresh_wanted: set[str] = set()
        self._last_refresh: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- reading (hot path: verifiers call resolve on every message) ---------------------

    def resolve(self, kid: str) -> PublicKeyInfo | None:
        info = self._keys.get(kid)
        if info is None:
            try:
                hub = hub_of(kid)
            except ValueError:
                return None
            if hub in self._peers:
                self.request_refresh(hub)
        return info

    def peer(self, hub_id: str) -> PeerInfo | None:
        return self._peers.get(hub_id)

    def peers(self) -> list[PeerInfo]:
        return list(self._peers.values())

    # -- keeping up to date --------------------------------------------------------------

    async def load(self) -> None:
        async with self.db.reader() as session:
            peers = (await session.scalars(select(Peer))).all()
            keys = (await session.scalars(select(PeerKey))).all()
        self._peers = {
            p.hub_id: PeerInfo(
                hub_id=p.hub_id,
                name=p.name,
                base_url=p.base_url,
                transport=p.transport,
                allowed_types=frozenset(p.allowed_types) if p.allowed_types is not None else None,
                fingerprint=p.pinned_fingerprint,
            )
            for p in peers
        }
        self._keys = {
            k.kid: PublicKeyInfo(
                kid=k.kid,
                public_key=k.public_key,
                not_before=k.not_before,
                not_after=k.not_after,
                revoked=k.revoked_at is not None or k.kid in self._revoked_here,
            )
            for k in keys
            if k.hub_id in self._peers
        }

    def revoke_now(self, kid: str) -> None:
        """Stop trusting ``kid`` immediately (the database is updated by the caller)."""
        self._revoked_here.add(kid)
        info = self._keys.get(kid)
        if info is not None:
            self._keys[kid] = info.as_revoked()

    def request_refresh(self, hub_id: str) -> None:
        # At most one refresh per peer every 5 s, however many unknown ids arrive.
        if time.monotonic() - self._last_refresh.get(hub_id, 0.0) > 5.0:
            self._refresh_wanted.add(hub_id)
            self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                # Every peer's document is fetched again now and then, so a revocation
                # whose push was missed (the peer was down) still arrives.
                now = time.monotonic()
                for hub in self._peers:
                    if now - self._last_refresh.get(hub, now) > self.refresh_interval:
                        self._refresh_wanted.add(hub)
                    self._last_refresh.setdefault(hub, now)
                for hub in list(self._refresh_wanted):
                    self._refresh_wanted.discard(hub)
                    self._last_refresh[hub] = time.monotonic()
                    await refresh_peer(self.db, hub)
                await self.load()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trust store refresh failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.reload_interval)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()


# -- peer management (used by the CLI and the refresher) -----------------------------------


async def fetch_document(base_url: str, timeout: float = 10.0) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=timeout) as client:
        r = await client.get(f"{base_url.rstrip('/')}/.well-known/ehub")
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc


async def _store_keys(
    session: AsyncSession, hub_id: str, doc: VerifiedDocument, now: datetime
) -> None:
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
    for kid in doc.revoked:
        if kid in existing and existing[kid].revoked_at is None:
            existing[kid].revoked_at = now


async def add_peer(
    db: Database,
    *,
    own_hub: str,
    base_url: str,
    fingerprint: str,
    transport: str = "http",
    allowed_types: Sequence[str] | None = None,
    document: dict[str, Any] | None = None,
) -> VerifiedDocument:
    """Onboard (or re-pin) a peer: its document must be signed by the pinned key."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}")
    doc_raw = document if document is not None else await fetch_document(base_url)
    doc = verify_document(doc_raw, pinned_fingerprint=fingerprint)
    if doc.hub_id == own_hub:
        raise DocumentError(f"{base_url} is this hub ({own_hub}), not a peer")
    now = datetime.now(UTC)
    async with db.transaction() as session:
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
        await _store_keys(session, doc.hub_id, doc, now)
    return doc


async def refresh_peer(db: Database, hub_id: str) -> VerifiedDocument | None:
    """Fetch a peer's document again; accept new keys only if a trusted key signed it."""
    async with db.reader() as session:
        peer = await session.get(Peer, hub_id)
        if peer is None:
            return None
        keys = (await session.scalars(select(PeerKey).where(PeerKey.hub_id == hub_id))).all()
        base_url = peer.base_url
    trusted = {
        k.kid: PublicKeyInfo(
            kid=k.kid,
            public_key=k.public_key,
            not_before=k.not_before,
            not_after=k.not_after,
            revoked=k.revoked_at is not None,
        )
        for k in keys
    }
    try:
        doc = verify_document(
            await fetch_document(base_url),
            expected_hub=hub_id,
            trusted=lambda kid: t if (t := trusted.get(kid)) and not t.revoked else None,
        )
    except (httpx.HTTPError, DocumentError, ValueError) as exc:
        log.warning("refresh of peer %s failed: %s", hub_id, exc)
        return None
    now = datetime.now(UTC)
    async with db.transaction() as session:
        peer = await session.get(Peer, hub_id)
        if peer is None:
            return None
        peer.document = doc.raw
        peer.refreshed_at = now
        await _store_keys(session, hub_id, doc, now)
    return doc


async def remove_peer(db: Database, hub_id: str) -> bool:
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

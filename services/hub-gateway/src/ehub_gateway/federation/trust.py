"""What this hub trusts: its peers and their keys, held in memory for the verifiers.

The database is the truth (``fed_peers``, ``fed_peer_keys``; ``peer_store.py``);
:class:`TrustStore` mirrors it in memory, reloads it every few seconds (so a peer added
or removed with the CLI takes effect without a restart) and is updated at once by pushed
revocations. A key id from a known peer that is not yet known triggers a refresh of that
peer's well-known document (``peer_docs.py``), which is how rotated keys reach peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from ehub_core.db import Database
from ehub_core.signing import PublicKeyInfo, hub_of
from ehub_gateway.federation import peer_store
from ehub_gateway.federation.peer_docs import add_peer, fetch_document, refresh_peer
from ehub_gateway.federation.peer_store import TRANSPORTS, list_peers, mark_revoked, remove_peer

log = logging.getLogger("ehub.gateway.trust")

# Peer management lives in peer_docs.py (fetching) and peer_store.py (SQL); its names are
# importable from here too.
__all__ = [
    "TRANSPORTS",
    "PeerInfo",
    "TrustStore",
    "add_peer",
    "fetch_document",
    "list_peers",
    "mark_revoked",
    "refresh_peer",
    "remove_peer",
]


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
        peers, keys = await peer_store.load_all(self.db)
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
            k.kid: peer_store.key_info(k, revoked=k.kid in self._revoked_here)
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

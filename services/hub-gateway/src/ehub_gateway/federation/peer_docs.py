"""Fetching peers' well-known documents: onboarding a peer against its pinned key
fingerprint, and refreshing a known peer's keys (a document signed by a key we trust).
What a verified document says is stored by ``peer_store.py``."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from ehub_core import http_client
from ehub_core.db import Database
from ehub_gateway.federation import peer_store
from ehub_gateway.federation.wellknown import DocumentError, VerifiedDocument, verify_document

log = logging.getLogger("ehub.gateway.trust")


MAX_DOCUMENT_BYTES = 1 << 20  # a hub's document lists a few keys: 1 MiB is plenty


def check_peer_url(url: str, *, allow_http: bool = False) -> str:
    """The peer's base URL if an operator may onboard it, else DocumentError saying why:
    https (plain http only to a loopback address, or with ``allow_http``), no user or
    password in it (it would be stored and shown), and no host that is or resolves to a
    link-local address (cloud metadata services live there)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise DocumentError(f"not a URL: {url!r} ({exc})") from None
    host = parsed.host
    if parsed.scheme not in ("https", "http") or not host:
        raise DocumentError(f"a peer's URL is https://host[:port], got {url!r}")
    if parsed.userinfo:
        raise DocumentError("a peer's URL carries no user or password (it would be stored)")
    try:
        infos = socket.getaddrinfo(host, parsed.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise DocumentError(f"cannot resolve {host}: {exc}") from None
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    if any(a.is_link_local for a in addresses):
        raise DocumentError(f"{host} is a link-local address: refused (metadata services)")
    if parsed.scheme == "http" and not allow_http and not all(a.is_loopback for a in addresses):
        raise DocumentError(
            f"{url} is plain http: peers are reached over https (http only on loopback, "
            "or with --allow-http on a network you trust)"
        )
    return url


async def fetch_document(base_url: str, timeout: float = 10.0) -> dict[str, Any]:
    async with http_client.client(timeout=timeout) as client:
        r = await client.get(f"{base_url.rstrip('/')}/.well-known/ehub")
        r.raise_for_status()
        if len(r.content) > MAX_DOCUMENT_BYTES:
            raise DocumentError(f"the document at {base_url} is over {MAX_DOCUMENT_BYTES} bytes")
        try:
            doc = r.json()
        except ValueError:
            raise DocumentError(f"{base_url}/.well-known/ehub did not answer JSON") from None
        if not isinstance(doc, dict):
            raise DocumentError(f"{base_url}/.well-known/ehub is not a JSON object")
        return doc


async def add_peer(
    db: Database,
    *,
    own_hub: str,
    base_url: str,
    fingerprint: str,
    transport: str = "http",
    allowed_types: Sequence[str] | None = None,
    document: dict[str, Any] | None = None,
    replace: str | None = None,
    allow_http: bool = False,
) -> VerifiedDocument:
    """Onboard (or re-pin) a peer: its document must be signed by the pinned key.

    A hub that is a peer already is re-pinned only by a document one of the keys we trust
    for it now signed (the hub itself, e.g. after rotating its key), unless the operator
    replaces the peer on purpose: ``replace`` equal to the new pinned fingerprint; its old
    keys are then dropped in the same transaction. A key already trusted for another hub
    is never taken as this one's. DocumentError otherwise, with nothing changed."""
    if transport not in peer_store.TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(peer_store.TRANSPORTS)}")
    if document is None:
        # Resolving the host blocks: off the event loop.
        await asyncio.to_thread(check_peer_url, base_url, allow_http=allow_http)
    doc_raw = document if document is not None else await fetch_document(base_url)
    doc = verify_document(doc_raw, pinned_fingerprint=fingerprint)
    if doc.hub_id == own_hub:
        raise DocumentError(f"{base_url} is this hub ({own_hub}), not a peer")
    if replace is not None and replace != fingerprint:
        raise DocumentError(
            f"--replace must repeat the new pinned fingerprint ({fingerprint}), got {replace}"
        )
    known = await peer_store.trusted_keys(db, doc.hub_id)
    replacing = False
    if known is not None:
        _, trusted = known
        try:
            verify_document(
                doc_raw,
                expected_hub=doc.hub_id,
                trusted=lambda kid: t if (t := trusted.get(kid)) and not t.revoked else None,
            )
        except DocumentError:
            if replace is None:
                raise DocumentError(
                    f"hub {doc.hub_id} is a peer already and no key trusted for it now signed "
                    f"this document: refused (a takeover looks like this). To replace the "
                    f"peer on purpose: --replace {fingerprint}"
                ) from None
            replacing = True
    await peer_store.save_peer(
        db,
        doc,
        base_url=base_url,
        fingerprint=fingerprint,
        transport=transport,
        allowed_types=allowed_types,
        now=datetime.now(UTC),
        replacing=replacing,
    )
    return doc


async def refresh_peer(db: Database, hub_id: str) -> VerifiedDocument | None:
    """Fetch a peer's document again; accept new keys only if a trusted key signed it."""
    known = await peer_store.trusted_keys(db, hub_id)
    if known is None:
        return None
    base_url, trusted = known
    try:
        doc = verify_document(
            await fetch_document(base_url),
            expected_hub=hub_id,
            trusted=lambda kid: t if (t := trusted.get(kid)) and not t.revoked else None,
        )
    except (httpx.HTTPError, DocumentError, ValueError) as exc:
        log.warning("refresh of peer %s failed: %s", hub_id, exc)
        return None
    if not await peer_store.save_refresh(db, hub_id, doc, datetime.now(UTC)):
        return None
    return doc

"""``/.well-known/ehub``: a hub's self-description, signed by every key it currently holds.

The document is canonical JSON (sorted keys, no spaces) of everything but
``signatures``; each signature is Ed25519 over ``"ehub.v1.WellKnown" 0x00 || that JSON``.
A peer accepts new keys from a document only when a key it already trusts (or, at
onboarding, the key with the pinned fingerprint) signed it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ehub_core.signing import HubKey, PublicKeyInfo
from ehub_core.signing.detached import check_detached, sign_detached
from ehub_core.signing.errors import SignatureError
from ehub_core.signing.keys import b64url, b64url_decode, fingerprint, format_time

CONTEXT = "ehub.v1.WellKnown"


class DocumentError(ValueError):
    """A well-known document that cannot be trusted; the message says why."""


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_entry(info: PublicKeyInfo) -> dict[str, str]:
    return {
        "kid": info.kid,
        "alg": info.alg,
        "public_key": b64url(info.public_key),
        "fingerprint": fingerprint(info.public_key),
        "not_before": format_time(info.not_before),
        "not_after": format_time(info.not_after),
    }


def build_document(
    *,
    hub_id: str,
    name: str,
    base_url: str,
    keys: Iterable[PublicKeyInfo],
    signers: Iterable[HubKey],
    revoked: Iterable[str] = (),
    backbone: dict[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The signed document; ``signers`` are the keys valid now (old and new alike)."""
    base = base_url.rstrip("/")
    body: dict[str, Any] = {
        "hub_id": hub_id,
        "name": name,
        "country": hub_id,
        "issued_at": format_time(now or datetime.now(UTC)),
        "endpoints": {
            "gateway": base,
            "events": f"{base}/federation/v1/events",
            "revocations": f"{base}/federation/v1/revocations",
        },
        "backbone": backbone,
        "keys": [key_entry(k) for k in keys],
        "revoked": sorted(set(revoked)),
    }
    data = canonical(body)
    body["signatures"] = [
        {"kid": k.kid, "sig": b64url(sign_detached(CONTEXT, data, k))} for k in signers
    ]
    return body


@dataclass(frozen=True)
class VerifiedDocument:
    hub_id: str
    name: str
    endpoints: dict[str, str]
    backbone: dict[str, str] | None
    keys: list[PublicKeyInfo]
    revoked: list[str]
    signed_by: list[str]
    raw: dict[str, Any]


def parse_keys(doc: dict[str, Any]) -> list[PublicKeyInfo]:
    keys = []
    for entry in doc.get("keys", []):
        keys.append(
            PublicKeyInfo(
                kid=entry["kid"],
                public_key=b64url_decode(entry["public_key"]),
                not_before=datetime.fromisoformat(entry["not_before"].replace("Z", "+00:00")),
                not_after=datetime.fromisoformat(entry["not_after"].replace("Z", "+00:00")),
                alg=entry.get("alg", "ed25519"),
            )
        )
    return keys


def verify_document(
    doc: dict[str, Any],
    *,
    expected_hub: str | None = None,
    trusted: Callable[[str], PublicKeyInfo | None] | None = None,
    pinned_fingerprint: str | None = None,
    now: datetime | None = None,
) -> VerifiedDocument:
    """Check the document's signatures; raise :class:`DocumentError` unless one is by a
    trusted key (``trusted``) or by the listed key whose fingerprint is pinned."""
    now = now or datetime.now(UTC)
    try:
        body = {k: v for k, v in doc.items() if k != "signatures"}
        hub_id = body["hub_id"]
        keys = parse_keys(body)
        signatures = doc["signatures"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DocumentError(f"malformed document: {exc}") from exc
    if expected_hub is not None and hub_id != expected_hub:
        raise DocumentError(f"document is for hub {hub_id!r}, expected {expected_hub!r}")
    revoked = set(body.get("revoked", []))
    listed = {k.kid: k for k in keys}
    data = canonical(body)

    def candidate(kid: str) -> PublicKeyInfo | None:
        if trusted is not None:
            known = trusted(kid)
            if known is not None:
                return known
        key = listed.get(kid)
        if key is not None and pinned_fingerprint and key.fingerprint == pinned_fingerprint:
            return key
        return None

    signed_by = []
    for sig in signatures:
        kid = sig.get("kid", "")
        if kid in revoked:
            continue
        try:
            info = check_detached(CONTEXT, data, b64url_decode(sig.get("sig", "")), kid, candidate)
        except (SignatureError, ValueError):
            continue
        if info.validity_at(now) is None:
            signed_by.append(kid)
    if not signed_by:
        why = (
            f"no key with fingerprint {pinned_fingerprint} signed it"
            if pinned_fingerprint
            else "no trusted key signed it"
        )
        raise DocumentError(f"document of hub {hub_id} is not trusted: {why}")
    if any(k.hub_id != hub_id for k in keys):
        raise DocumentError("document lists a key of another hub")
    return VerifiedDocument(
        hub_id=hub_id,
        name=body.get("name", hub_id),
        endpoints=body.get("endpoints", {}),
        backbone=body.get("backbone"),
        keys=[k for k in keys if k.kid not in revoked],
        revoked=sorted(revoked),
        signed_by=signed_by,
        raw=doc,
    )

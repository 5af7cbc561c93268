"""Partners and keys: what the operator does (CLI ``ehub partners`` and the operator API).

A key is ``ek_<mode>_<id>_<secret>``: the mode (``live`` or ``test``) and the public id
say which key it is without revealing it; only the SHA-256 of the 192-bit random secret
is stored, so the database cannot give a key away. It is printed once, when made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import NotFoundError, UnprocessableError, field_error
from ehub_gateway.partners.models import Partner, PartnerKey

ROLES = ("marketplace", "seller", "carrier", "broker", "officer")
# What each role may do unless the operator says otherwise.
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "marketplace": (
        "catalog:read",
        "quotes:read",
        "rates:read",
        "orders:read",
        "orders:write",
        "allowances:read",
        "webhooks:read",
        "webhooks:write",
    ),
    "seller": (
        "catalog:read",
        "catalog:write",
        "quotes:read",
        "rates:read",
        "shipments:read",
        "shipments:write",
        "orders:read",
        "orders:write",
        "webhooks:read",
        "webhooks:write",
    ),
    "carrier": ("shipments:read",),
    "broker": ("quotes:read", "rates:read", "declarations:read"),
    "officer": ("declarations:read", "clearance:read", "clearance:write"),
}
SCOPES = tuple(sorted({s for scopes in ROLE_SCOPES.values() for s in scopes}))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str, str] | None:
    """``(mode, key id, secret)`` of a well-formed key, else None."""
    parts = key.split("_", 3)
    if len(parts) != 4 or parts[0] != "ek" or parts[1] not in ("live", "test"):
        return None
    if not (len(parts[2]) == 12 and all(c in "0123456789abcdef" for c in parts[2])):
        return None
    if not 20 <= len(parts[3]) <= 64:
        return None
    return parts[1], parts[2], parts[3]


@dataclass(frozen=True)
class NewKey:
    partner_id: str
    key_id: str
    key: str  # shown once


def _field(field: str, msg: str) -> dict[str, object]:
    return field_error([field], msg)


async def _new_key(session: AsyncSession, partner_id: str, mode: str, now: datetime) -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    session.add(
        PartnerKey(
            id=key_id,
            partner_id=partner_id,
            mode=mode,
            secret_hash=hash_secret(secret),
            created_at=now,
            expires_at=None,
            revoked_at=None,
            changed_at=now,
        )
    )
    return NewKey(partner_id, key_id, f"ek_{mode}_{key_id}_{secret}")


async def create_partner(
    session: AsyncSession,
    *,
    name: str,
    role: str,
    scopes: list[str] | None = None,
    rate_per_second: float = 50.0,
    burst: float = 100.0,
    mode: str = "live",
) -> tuple[Partner, NewKey]:
    if role not in ROLES:
        raise UnprocessableError(
            f"role must be one of {', '.join(ROLES)}", errors=[_field("role", "unknown role")]
        )
    chosen = list(ROLE_SCOPES[role]) if scopes is None else sorted(set(scopes))
    unknown = [s for s in chosen if s not in SCOPES]
    if unknown:
        raise UnprocessableError(
            f"unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})",
            errors=[_field("scopes", "unknown scope")],
        )
    if not (0 < rate_per_second <= 100_000 and 1 <= burst <= 1_000_000):
        raise UnprocessableError(
            "rate_per_second must be in (0, 100000] and burst in [1, 1000000]",
            errors=[_field("rate_per_second", "out of range")],
        )
    now = datetime.now(UTC)
    partner = Partner(
        id=f"prt_{secrets.token_hex(8)}",
        name=name,
        role=role,
        scopes=chosen,
        rate_per_second=rate_per_second,
        burst=burst,
        created_at=now,
    )
    session.add(partner)
    await session.flush()
    return partner, await _new_key(session, partner.id, mode, now)


async def get_partner(session: AsyncSession, partner_id: str) -> Partner:
    partner = await session.get(Partner, partner_id)
    if partner is None:
        raise NotFoundError(f"no partner {partner_id}")
    return partner


async def list_partners(session: AsyncSession) -> list[tuple[Partner, list[PartnerKey]]]:
    partners = list((await session.execute(select(Partner).order_by(Partner.created_at))).scalars())
    keys = list(
        (await session.execute(select(PartnerKey).order_by(PartnerKey.created_at))).scalars()
    )
    return [(p, [k for k in keys if k.partner_id == p.id]) for p in partners]


async def rotate(
    session: AsyncSession, partner_id: str, *, grace: timedelta, mode: str = "live"
) -> NewKey:
    """A new key; the partner's current keys stay valid for ``grace``, then expire."""
    await get_partner(session, partner_id)
    now = datetime.now(UTC)
    until = now + grace
    await session.execute(
        update(PartnerKey)
        .where(
            PartnerKey.partner_id == partner_id,
            PartnerKey.revoked_at.is_(None),
            (PartnerKey.expires_at.is_(None)) | (PartnerKey.expires_at > until),
        )
        .values(expires_at=until, changed_at=now)
    )
    return await _new_key(session, partner_id, mode, now)


async def revoke(session: AsyncSession, key_id: str) -> PartnerKey:
    key = await session.get(PartnerKey, key_id)
    if key is None:
        raise NotFoundError(f"no key {key_id}")
    if key.revoked_at is None:
        now = datetime.now(UTC)
        key.revoked_at = now
        key.changed_at = now
    return key

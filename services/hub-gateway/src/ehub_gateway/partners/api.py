"""The operator's partner API (``Authorization: Bearer <EHUB_INTERNAL_TOKEN>``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_gateway.api.internal import require_internal
from ehub_gateway.partners import service
from ehub_gateway.partners.models import Partner, PartnerKey
from ehub_gateway.partners.service import ROLES

router = APIRouter(
    prefix="/operator/v1", tags=["operator"], dependencies=[Depends(require_internal)]
)


class PartnerCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    role: Literal["marketplace", "seller", "carrier", "broker", "officer"]
    scopes: list[str] | None = Field(None, description=f"default: the role's ({', '.join(ROLES)})")
    rate_per_second: float = Field(50.0, gt=0, le=100_000)
    burst: float = Field(100.0, ge=1, le=1_000_000)
    mode: Literal["live", "test"] = "live"


class KeyRead(BaseModel):
    key_id: str
    mode: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class PartnerRead(BaseModel):
    id: str
    name: str
    role: str
    scopes: list[str]
    rate_per_second: float
    burst: float
    created_at: datetime
    keys: list[KeyRead]


class NewKeyRead(BaseModel):
    partner_id: str
    key_id: str
    key: str = Field(description="Shown once: only a hash of it is kept")


class PartnerCreated(BaseModel):
    partner: PartnerRead
    key: NewKeyRead


class Rotation(BaseModel):
    grace_seconds: int = Field(86400, ge=0, le=90 * 86400)
    mode: Literal["live", "test"] = "live"


def _read(p: Partner, keys: list[PartnerKey]) -> PartnerRead:
    return PartnerRead(
        id=p.id,
        name=p.name,
        role=p.role,
        scopes=p.scopes,
        rate_per_second=p.rate_per_second,
        burst=p.burst,
        created_at=p.created_at,
        keys=[
            KeyRead(
                key_id=k.id,
                mode=k.mode,
                created_at=k.created_at,
                expires_at=k.expires_at,
                revoked_at=k.revoked_at,
            )
            for k in keys
        ],
    )


@router.post("/partners", status_code=201, response_model=PartnerCreated, summary="Add a partner")
async def add_partner(body: PartnerCreate, session: SessionDep) -> PartnerCreated:
    """Creates a partner with its role's scopes (or those given) and its first API key, shown
    once."""
    partner, key = await service.create_partner(
        session,
        name=body.name,
        role=body.role,
        scopes=body.scopes,
        rate_per_second=body.rate_per_second,
        burst=body.burst,
        mode=body.mode,
    )
    return PartnerCreated(
        partner=_read(partner, []),
        key=NewKeyRead(partner_id=key.partner_id, key_id=key.key_id, key=key.key),
    )


@router.get("/partners", response_model=list[PartnerRead], summary="Partners and their keys")
async def list_partners(session: ReadSessionDep) -> list[PartnerRead]:
    """Every partner of the hub with its keys (ids and dates, never the secrets)."""
    return [_read(p, keys) for p, keys in await service.list_partners(session)]


@router.post(
    "/partners/{partner_id}/keys",
    status_code=201,
    response_model=NewKeyRead,
    summary="Rotate: a new key; the old ones stay valid for the grace period",
)
async def rotate_key(partner_id: str, body: Rotation, session: SessionDep) -> NewKeyRead:
    """A new key for the partner, shown once; its current keys expire after `grace_seconds`."""
    key = await service.rotate(
        session, partner_id, grace=timedelta(seconds=body.grace_seconds), mode=body.mode
    )
    return NewKeyRead(partner_id=key.partner_id, key_id=key.key_id, key=key.key)


@router.delete("/keys/{key_id}", response_model=KeyRead, summary="Revoke a key now")
async def revoke_key(key_id: str, request: Request) -> KeyRead:
    """Revokes the key at once: this gateway refuses it from the next request on."""
    keys = request.app.state.keys
    async with request.app.state.ctx.db.transaction() as session:
        k = await service.revoke(session, key_id)
        read = KeyRead(
            key_id=k.id,
            mode=k.mode,
            created_at=k.created_at,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
        )
    # Committed: this worker refuses it at once (a reload now reads it revoked too);
    # other workers on their next reload.
    await keys.load()
    return read

"""The officer's clearance queue (docs/customs.md, "The officer"):
``GET /v1/clearance/queue``, ``POST /v1/clearance/{id}/claim``,
``POST /v1/clearance/{id}/decide``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ehub_core.deps import ContextDep, ReadSessionDep, SessionDep
from ehub_core.partners import Caller, GuardedRoute
from ehub_customs.api.declarations import declaration_read
from ehub_customs.api.deps import ClearanceReader, ClearanceWriter
from ehub_customs.clearance import service
from ehub_customs.declarations.schemas import DeclarationRead
from ehub_customs.screening.service import hits_of

router = APIRouter(prefix="/v1/clearance", tags=["clearance"], route_class=GuardedRoute)

DeclarationId = Annotated[str, Path(pattern=r"^dcl_[A-Za-z0-9]{1,36}$")]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key lacks the scope (problem+json)"},
    404: {"description": "No such declaration (problem+json)"},
    409: {"description": "Already decided, or claimed by another officer (problem+json)"},
}


class QueuePage(BaseModel):
    items: list[DeclarationRead]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: service.OfficerDecision
    reason: str = Field(min_length=1, max_length=1000)


def officer_of(caller: Caller) -> str:
    return caller.partner_id or caller.kind


@router.get("/queue", response_model=QueuePage, summary="Declarations held for an officer")
async def read_queue(
    session: ReadSessionDep,
    _caller: ClearanceReader,
    state: Annotated[
        str | None, Query(pattern="^(held|inspect)$", description="held | inspect; default both")
    ] = None,
    reason: Annotated[
        str | None, Query(pattern="^[a-z_]{1,40}$", description="reason code, e.g. undervalued")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> QueuePage:
    """Declarations held for an officer (screening hits, inspections), oldest first, paged with
    `cursor`."""
    page = await service.queue(session, state=state, reason=reason, cursor=cursor, limit=limit)
    hits = await hits_of(session, [d.id for d in page.items])
    return QueuePage(
        items=[declaration_read(d, hits[d.id]) for d in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/{declaration_id}/claim",
    response_model=DeclarationRead,
    responses=PROBLEMS,
    summary="Claim a queued declaration (the same officer again: no change)",
)
async def claim(
    declaration_id: DeclarationId, session: SessionDep, caller: ClearanceWriter
) -> DeclarationRead:
    """An officer takes a held declaration; 409 when another officer holds it or it was
    decided."""
    d = await service.claim(session, declaration_id, officer=officer_of(caller))
    return declaration_read(d, (await hits_of(session, [d.id]))[d.id])


@router.post(
    "/{declaration_id}/decide",
    response_model=DeclarationRead,
    responses=PROBLEMS,
    summary="Decide a queued declaration: release, inspect, reject or request documents",
)
async def decide(
    declaration_id: DeclarationId,
    body: DecisionCreate,
    session: SessionDep,
    caller: ClearanceWriter,
    ctx: ContextDep,
) -> DeclarationRead:
    """The officer's decision on a declaration they claimed (release, inspect, reject, request
    documents), with the reason; 409 when not theirs or already decided."""
    d, _ = await service.decide(
        session,
        declaration_id,
        officer=officer_of(caller),
        decision=body.decision,
        reason=body.reason,
        hub=ctx.settings.hub_id,
    )
    return declaration_read(d, (await hits_of(session, [d.id]))[d.id])

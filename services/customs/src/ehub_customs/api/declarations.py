"""``GET /v1/declarations?order_id=``: an order's customs declarations and decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ehub_core.deps import ReadSessionDep
from ehub_core.partners import GuardedRoute
from ehub_customs.api.deps import DeclarationsReader
from ehub_customs.declarations.models import Declaration
from ehub_customs.declarations.schemas import DeclarationRead, HitRead
from ehub_customs.declarations.service import declarations_for_order
from ehub_customs.screening.models import ScreeningHit
from ehub_customs.screening.service import hits_of

router = APIRouter(prefix="/v1", tags=["declarations"], route_class=GuardedRoute)


def hit_read(h: ScreeningHit) -> HitRead:
    return HitRead(
        category=h.category,
        outcome=h.outcome,
        rule=h.rule,
        reason=h.reason,
        source=h.source,
        verified=h.verified,
        line_id=h.line_id,
        subject=h.subject,
        entry=h.entry,
        score=None if h.score is None else float(h.score),
    )


def declaration_read(d: Declaration, hits: list[ScreeningHit] | None = None) -> DeclarationRead:
    return DeclarationRead(
        id=d.id,
        order_id=d.order_id,
        phase=d.phase,
        country=d.country,
        counterpart_country=d.counterpart_country,
        decision=d.decision,
        reason_code=d.reason_code,
        reason=d.reason,
        decided_by=d.decided_by,
        filed_at=d.filed_at,
        decided_at=d.decided_at,
        currency=d.currency,
        total_value=str(d.total_value),
        lines=d.lines,
        allowance_reserved=d.allowance_reserved,
        claimed_by=d.claimed_by,
        hits=[hit_read(h) for h in hits or ()],
    )


@router.get(
    "/declarations",
    response_model=list[DeclarationRead],
    summary="An order's declarations (import and export), each with its decision and reason",
)
async def list_declarations(
    session: ReadSessionDep,
    _caller: DeclarationsReader,
    order_id: Annotated[str, Query(min_length=1, max_length=100)],
) -> list[DeclarationRead]:
    """The import and export declarations filed for an order, each with its screening and
    decision."""
    found = await declarations_for_order(session, order_id)
    hits = await hits_of(session, [d.id for d in found])
    return [declaration_read(d, hits[d.id]) for d in found]

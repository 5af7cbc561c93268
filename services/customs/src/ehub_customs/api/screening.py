"""The officers' whitelist of screening false positives (docs/customs.md, "Whitelist"):
``GET /v1/screening/whitelist``, ``POST /v1/screening/whitelist``,
``DELETE /v1/screening/whitelist/{id}``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.errors import ServiceUnavailableError
from ehub_core.partners import GuardedRoute
from ehub_customs.api.clearance import officer_of
from ehub_customs.api.deps import ClearanceReader, ClearanceWriter
from ehub_customs.screening import whitelist as service
from ehub_customs.screening.data import ScreeningData
from ehub_customs.screening.models import WhitelistEntry

router = APIRouter(prefix="/v1/screening", tags=["screening"], route_class=GuardedRoute)

EntryKey = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}:[A-Za-z0-9._/-]{1,100}$")]
PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key lacks the scope (problem+json)"},
    422: {"description": "Unknown list entry, or a name that matches it (problem+json)"},
}


class WhitelistCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300, description="The party's name as declared")
    entry: EntryKey = Field(description="The list entry it was confused with, e.g. ofac-sdn:36")
    reason: str = Field(min_length=1, max_length=1000, description="Why it is not that party")


class WhitelistRead(BaseModel):
    id: int
    subject: str = Field(description="The party's normalised name (what screening compares)")
    entry: str
    reason: str
    added_by: str = Field(description="The officer (partner id) who added it")
    added_at: datetime
    declaration_id: str | None = Field(
        None, description="The released declaration it came from; null when added here"
    )


class WhitelistPage(BaseModel):
    items: list[WhitelistRead]
    next_after: int | None = Field(description="Pass as after for the next page; null at the end")


def _read(row: WhitelistEntry) -> WhitelistRead:
    return WhitelistRead(
        id=row.id,
        subject=row.subject,
        entry=row.entry,
        reason=row.reason,
        added_by=row.cleared_by,
        added_at=row.created_at,
        declaration_id=row.declaration_id,
    )


def _screening(request: Request) -> ScreeningData:
    data = getattr(request.app.state, "screening", None)
    if data is None:
        raise ServiceUnavailableError("The screening data is not loaded")
    return data


@router.get("/whitelist", response_model=WhitelistPage, summary="The whitelist of false positives")
async def read_whitelist(
    session: ReadSessionDep,
    _caller: ClearanceReader,
    entry: Annotated[str | None, Query(max_length=141, description="list:id")] = None,
    name: Annotated[str | None, Query(max_length=300, description="a party name")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WhitelistPage:
    """Whitelist rows in the order they were added, filtered by list entry or party name."""
    rows = await service.entries(session, entry=entry, name=name, after=after, limit=limit)
    return WhitelistPage(
        items=[_read(r) for r in rows],
        next_after=rows[-1].id if len(rows) == limit else None,
    )


@router.post(
    "/whitelist",
    response_model=WhitelistRead,
    status_code=201,
    responses={**PROBLEMS, 409: {"description": "Already whitelisted (problem+json)"}},
    summary="Whitelist a party name against a list entry it is not",
)
async def add_to_whitelist(
    body: WhitelistCreate, request: Request, session: SessionDep, caller: ClearanceWriter
) -> WhitelistRead:
    """Later screenings of the same name against the same entry record the hit as
    `whitelisted` (naming this row) and do not hold for it."""
    row = await service.add(
        session,
        _screening(request),
        name=body.name,
        entry=body.entry,
        reason=body.reason,
        officer=officer_of(caller),
        now=datetime.now(UTC),
    )
    return _read(row)


@router.delete(
    "/whitelist/{entry_id}",
    response_model=WhitelistRead,
    responses={**PROBLEMS, 404: {"description": "No such whitelist entry (problem+json)"}},
    summary="Remove a whitelist entry",
)
async def remove_from_whitelist(
    entry_id: Annotated[int, Path(ge=1, le=2**62)],
    session: SessionDep,
    _caller: ClearanceWriter,
) -> WhitelistRead:
    """The pair is screened as before from now on; answers the removed row."""
    return _read(await service.remove(session, entry_id))

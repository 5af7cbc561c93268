"""Dependencies of the customs API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ehub_core.errors import ServiceUnavailableError
from ehub_core.partners import Caller, require_scope
from ehub_customs.tariffs.rulebook import RuleBook


async def get_rulebook(request: Request) -> RuleBook:
    """The rule book loaded at start-up (``app.state.rulebook``)."""
    book = getattr(request.app.state, "rulebook", None)
    if book is None:
        raise ServiceUnavailableError("The tariff rule book is not loaded")
    return book


RuleBookDep = Annotated[RuleBook, Depends(get_rulebook)]


# Partner routes, by scope (docs/partners.md).
QuotesReader = Annotated[Caller, require_scope("quotes:read")]
AllowancesReader = Annotated[Caller, require_scope("allowances:read")]
DeclarationsReader = Annotated[Caller, require_scope("declarations:read")]
ClearanceReader = Annotated[Caller, require_scope("clearance:read")]
ClearanceWriter = Annotated[Caller, require_scope("clearance:write")]

"""Landed cost as a service function: the HTTP routes and in-process callers (the order
saga's command handlers) get the same answer from the same code. Never commits; the
allowance ledger is only read."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ehub_core.db import Database
from ehub_core.errors import UnprocessableError, field_error
from ehub_customs.allowances.service import used_allowance
from ehub_customs.landed_cost.engine import quote
from ehub_customs.landed_cost.reverse import reverse
from ehub_customs.landed_cost.schemas import LandedCostCreate, quote_dict
from ehub_customs.tariffs.rulebook import RuleBook


class NotCrossBorderError(UnprocessableError):
    """Origin and destination are one country: nothing crosses a customs border."""

    title = "Not a cross-border consignment"
    type_slug = "not-cross-border"


def require_cross_border(origin: str, destination: str, *, field: str = "destination") -> None:
    """422 ``not-cross-border`` naming ``field`` when ``origin == destination``."""
    if origin == destination:
        raise NotCrossBorderError(
            f"Origin and destination are both {origin}: a landed cost is priced only for "
            "goods that cross a border",
            errors=[field_error(field, f"same as origin {origin}")],
        )


async def landed_cost(*, book: RuleBook, db: Database, body: LandedCostCreate) -> dict[str, Any]:
    """The quote (or, with ``target_total``, the reverse quote) of ``body``, shaped as
    :class:`~ehub_customs.landed_cost.schemas.LandedCostRead`.

    The destination's rules are looked up once and handed to the engine. Raises
    :class:`UnprocessableError` (422) naming the field for semantic errors.
    """
    require_cross_border(body.origin, body.destination)
    rules = book.country(body.destination)
    if body.shipping_currency and body.shipping_currency != body.currency:
        fx = book.fx.rate(
            body.shipping_currency, body.currency, body.date, field="shipping_currency"
        )
        body = body.model_copy(update={"shipping": body.shipping * fx.rate})
    req = body.to_domain()
    used: Decimal | None = None
    if req.buyer_id and rules.view(req.date).quota is not None:
        # A read-only look-up: only quotes that need the ledger open a session.
        async with db.reader() as session:
            used = await used_allowance(
                session, country=req.destination, buyer_id=req.buyer_id, on=req.date
            )
    if body.target_total is None:
        return quote_dict(quote(book, req, allowance_used=used, rules=rules))
    result = reverse(
        book,
        req,
        body.target_total,
        target_currency=body.target_currency,
        allowance_used=used,
        rules=rules,
    )
    out: dict[str, Any] = quote_dict(result.quote)
    out["mode"] = "reverse"
    out["reverse"] = {
        "target_total": str(result.target),
        "target_currency": result.target_currency,
        "net_unit_values": [str(v) for v in result.net_unit_values],
        "residual": str(result.residual),
        "exact": result.exact,
    }
    return out

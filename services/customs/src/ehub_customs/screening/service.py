"""Screening against the database: the facts of a filed body, the consignee's recent
parcels, the whitelist; and the hits written with the declaration. The decision itself
is :func:`ehub_customs.screening.decide.screen` (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_customs.declarations.models import IMPORT, Declaration
from ehub_customs.declarations.schemas import ExportDeclarationBody, ImportDeclarationBody
from ehub_customs.screening import whitelist as whitelisting
from ehub_customs.screening.data import ScreeningData, load_screening
from ehub_customs.screening.decide import (
    Document,
    Facts,
    History,
    Hit,
    Line,
    Party,
    RestrictedMode,
    Screening,
    screen,
)
from ehub_customs.screening.lists import normalise
from ehub_customs.screening.models import ScreeningHit, WhitelistEntry
from ehub_customs.tariffs.rulebook import RuleBook


@lru_cache(maxsize=1)
def bundled_screening() -> ScreeningData:
    return load_screening()


@dataclass(frozen=True, slots=True)
class Screener:
    """What a hub screens with: its data and how it treats restricted goods."""

    data: ScreeningData
    book: RuleBook
    restricted: RestrictedMode = "note"


def facts_of(
    decl: ImportDeclarationBody | ExportDeclarationBody,
    phase: Literal["import", "export"],
    now: datetime,
) -> Facts:
    counterpart = decl.origin if isinstance(decl, ImportDeclarationBody) else decl.destination
    return Facts(
        phase=phase,
        country=decl.country,
        counterpart=counterpart,
        currency=decl.currency,
        on=now.astimezone(UTC).date(),
        lines=tuple(
            Line(
                line_id=str(x.line_id),
                hs_code=x.hs_code,
                description=x.description,
                quantity=x.quantity,
                unit_value=x.unit_value,
                origin_country=x.origin_country,
                unit_weight_kg=x.unit_weight_kg,
                list_price=x.list_price,
            )
            for x in decl.lines
        ),
        parties=tuple(_parties(decl)),
        documents=tuple(
            Document(d.type, d.reference, d.hs.replace(".", "") if d.hs else None)
            for d in decl.documents
        ),
    )


def _parties(decl: ImportDeclarationBody | ExportDeclarationBody) -> list[Party]:
    out = []
    for role, p in decl.parties():
        where = {"street": p.street_text, "city": p.city or "", "country": p.country or ""}
        out.append(Party(role=role, name=p.name, **where))
        if p.company and normalise(p.company) != normalise(p.name):
            out.append(Party(role=f"{role} (company)", name=p.company))
    return out


def consignee_key(decl: ImportDeclarationBody | ExportDeclarationBody) -> str | None:
    """Who receives the parcel, for the split-consignment history: name and address."""
    p = decl.consignee or decl.buyer
    if p is None:
        return None
    return normalise(f"{p.name} | {p.street_text} {p.city or ''} {p.postal_code or ''}")[:300]


async def history(
    session: AsyncSession,
    screener: Screener,
    *,
    country: str,
    order_id: str,
    buyer_ref: str | None,
    consignee: str | None,
    now: datetime,
) -> History:
    """The consignee's (or the buyer's) import parcels into ``country`` in the window."""
    conditions = []
    if buyer_ref:
        conditions.append(Declaration.buyer_ref == buyer_ref)
    if consignee:
        conditions.append(Declaration.consignee_key == consignee)
    if not conditions:
        return History()
    since = now - timedelta(hours=screener.data.policy.split.window_hours)
    rows = await session.execute(
        select(Declaration.total_value, Declaration.currency)
        .where(
            Declaration.country == country,
            Declaration.phase == IMPORT,
            Declaration.filed_at >= since,
            Declaration.order_id != order_id,
            Declaration.decision != "rejected",
            or_(*conditions),
        )
        .limit(200)
    )
    return History(tuple((v, c) for v, c in rows.all()))


async def whitelist(session: AsyncSession, facts: Facts) -> dict[tuple[str, str], WhitelistEntry]:
    """The whitelist rows of the declaration's parties, by (normalised name, entry)."""
    return await whitelisting.lookup(session, {p.key for p in facts.parties if p.key})


async def run(
    session: AsyncSession,
    screener: Screener,
    decl: ImportDeclarationBody | ExportDeclarationBody,
    phase: Literal["import", "export"],
    *,
    buyer_ref: str | None,
    now: datetime,
) -> tuple[Facts, Screening]:
    facts = facts_of(decl, phase, now)
    past = (
        await history(
            session,
            screener,
            country=decl.country,
            order_id=decl.order_id,
            buyer_ref=buyer_ref,
            consignee=consignee_key(decl),
            now=now,
        )
        if phase == IMPORT
        else History()
    )
    cleared = await whitelist(session, facts)
    result = screen(
        facts,
        screener.data,
        screener.book,
        history=past,
        whitelist=frozenset(cleared),
        restricted=screener.restricted,
    )
    if any(h.outcome == "whitelisted" for h in result.hits):
        result = dataclasses.replace(
            result, hits=tuple(whitelisting.annotate(result.hits, cleared))
        )
    return facts, result


def hit_rows(declaration_id: str, hits: Sequence[Hit], now: datetime) -> list[ScreeningHit]:
    return [
        ScreeningHit(
            declaration_id=declaration_id,
            category=h.category,
            outcome=h.outcome,
            rule=h.rule[:160],
            reason=h.reason,
            source=h.source,
            verified=h.verified,
            line_id=h.line_id,
            subject=h.subject[:300] if h.subject else None,
            entry=h.entry,
            score=None if h.score is None else round(h.score, 1),
            created_at=now,
        )
        for h in hits
    ]


async def hits_of(
    session: AsyncSession, declaration_ids: Sequence[str]
) -> dict[str, list[ScreeningHit]]:
    out: dict[str, list[ScreeningHit]] = {d: [] for d in declaration_ids}
    if not declaration_ids:
        return out
    rows = await session.scalars(
        select(ScreeningHit)
        .where(ScreeningHit.declaration_id.in_(list(declaration_ids)))
        .order_by(ScreeningHit.id)
    )
    for h in rows:
        out[h.declaration_id].append(h)
    return out

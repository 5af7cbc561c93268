"""The officers' whitelist of cleared false positives: (normalised party name, list entry).

Rows come from an officer's ``release`` of a declaration (``clearance.service``) or from
``POST /v1/screening/whitelist``; each says who added it, when and why. A later screening
of the same name against the same entry records the hit as ``whitelisted``, naming the
row (:func:`annotate`), and does not hold for it. A name scoring at the match threshold
(a rejection) cannot be whitelisted: the whitelist clears fuzzy hits only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import ConflictError, NotFoundError, UnprocessableError, field_error
from ehub_customs.screening.data import ScreeningData
from ehub_customs.screening.decide import Hit
from ehub_customs.screening.lists import normalise
from ehub_customs.screening.models import WhitelistEntry


class AlreadyWhitelisted(ConflictError):
    type_slug = "already-whitelisted"


async def entries(
    session: AsyncSession,
    *,
    entry: str | None = None,
    name: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[WhitelistEntry]:
    """Rows in id order, filtered by list entry and/or party name (normalised)."""
    query = select(WhitelistEntry).order_by(WhitelistEntry.id).limit(limit)
    if entry:
        query = query.where(WhitelistEntry.entry == entry)
    if name:
        query = query.where(WhitelistEntry.subject == normalise(name))
    if after is not None:
        query = query.where(WhitelistEntry.id > after)
    return list(await session.scalars(query))


async def add(
    session: AsyncSession,
    data: ScreeningData,
    *,
    name: str,
    entry: str,
    reason: str,
    officer: str,
    now: datetime,
) -> WhitelistEntry:
    """Whitelist ``name`` against the list ``entry`` (``ofac-sdn:36``); 422 naming the
    field for an unknown entry, a name with no letters, or a name that scores as a match;
    409 when the pair is already whitelisted."""
    subject = normalise(name)
    if not subject:
        raise UnprocessableError(
            "name: nothing left to screen once normalised",
            errors=[field_error("name", "no letters or digits after normalisation")],
        )
    listed = next((e for e in data.parties.entries if e.key == entry), None)
    if listed is None:
        raise UnprocessableError(
            f"entry: {entry!r} is not an entry of the loaded lists",
            errors=[
                field_error("entry", "unknown list entry (expected list:id, e.g. ofac-sdn:36)")
            ],
        )
    match = data.policy.parties.match_score
    for hit in data.parties.screen_name(name):
        if hit.entry.key == entry and hit.score >= match:
            raise UnprocessableError(
                f"name: {name!r} scores {hit.score:g} against {entry} {listed.name!r}, at or "
                f"above the match score {match:g}: a match cannot be whitelisted",
                errors=[field_error("name", f"scores {hit.score:g} (match) against {entry}")],
            )
    existing = await session.scalar(
        select(WhitelistEntry).where(
            WhitelistEntry.subject == subject, WhitelistEntry.entry == entry
        )
    )
    if existing is not None:
        raise AlreadyWhitelisted(
            f"{subject!r} is already whitelisted against {entry} (whitelist entry {existing.id})",
            id=existing.id,
        )
    row = WhitelistEntry(
        subject=subject[:300],
        entry=entry,
        reason=reason,
        cleared_by=officer,
        declaration_id=None,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def remove(session: AsyncSession, entry_id: int) -> WhitelistEntry:
    """Delete one row (later screenings hold for the pair again); 404 if unknown."""
    row = await session.get(WhitelistEntry, entry_id)
    if row is None:
        raise NotFoundError(f"No whitelist entry {entry_id}")
    await session.delete(row)
    await session.flush()
    return row


async def lookup(
    session: AsyncSession, subjects: set[str]
) -> dict[tuple[str, str], WhitelistEntry]:
    """The rows of these normalised names, by (subject, entry)."""
    if not subjects:
        return {}
    rows = await session.scalars(select(WhitelistEntry).where(WhitelistEntry.subject.in_(subjects)))
    return {(r.subject, r.entry): r for r in rows}


def annotate(hits: Sequence[Hit], rows: dict[tuple[str, str], WhitelistEntry]) -> list[Hit]:
    """Name, in each ``whitelisted`` hit's reason, the row that cleared it: its id, who
    added it, when and why (the declaration's record of the whitelist applied)."""
    out = []
    for h in hits:
        row = rows.get((h.subject or "", h.entry or "")) if h.outcome == "whitelisted" else None
        if row is not None:
            when = row.created_at.date().isoformat()
            h = dataclasses.replace(
                h,
                reason=f"{h.reason}: whitelist entry {row.id} by {row.cleared_by} on {when} "
                f"({row.reason})",
            )
        out.append(h)
    return out

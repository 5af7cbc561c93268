"""Queue, claim and decide (docs/customs.md, "The officer").

A declaration is **in the queue** while its decision is ``held`` or ``inspect``. An
officer claims it (one officer at a time: another's claim or decision is 409) and
decides: ``release`` (→ ``cleared``), ``reject`` (→ ``rejected``), both final;
``inspect`` (→ ``inspect``) and ``request_documents`` (→ ``held``), both leave it in the
queue for a later decision. The same decision by the same officer again changes nothing
(200, no second event); any decision on a final one is 409.

Every decision is written with a ``ClearanceDecided`` event (JSON) on the hub's
``ehub.<hub>.customs`` topic, keyed by the order, in the same transaction; the gateway's
order saga reads it (docs/orders.md). A release also whitelists the declaration's
party-review hits (the officer judged them false positives), so the same party and list
entry are not held again.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import Histogram
from sqlalchemy import literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import ConflictError, NotFoundError, UnprocessableError, field_error
from ehub_core.outbox import enqueue
from ehub_core.streams import hub_topic
from ehub_customs.declarations.models import CLEARED, HELD, INSPECT, REJECTED, Declaration
from ehub_customs.screening.models import ScreeningHit, WhitelistEntry

QUEUED = (HELD, INSPECT)
FINAL = (CLEARED, REJECTED)
OfficerDecision = Literal["release", "inspect", "reject", "request_documents"]
# officer decision -> (declaration decision, reason code)
OUTCOMES: dict[str, tuple[str, str]] = {
    "release": (CLEARED, "officer_released"),
    "reject": (REJECTED, "officer_rejected"),
    "inspect": (INSPECT, "inspection_ordered"),
    "request_documents": (HELD, "documents_requested"),
}
EVENT = "ClearanceDecided"
STREAM = "clearance"  # streams.CLEARANCE: officers' decisions, JSON

TIME_IN_QUEUE = Histogram(
    "ehub_customs_clearance_queue_seconds",
    "Time from filing to an officer's decision, by decision",
    ["hub", "decision"],
    buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
)


class DeclarationDecided(ConflictError):
    title = "Declaration already decided"
    type_slug = "declaration-decided"


class ClaimedByAnother(ConflictError):
    title = "Claimed by another officer"
    type_slug = "claimed-by-another-officer"


class BadCursor(UnprocessableError):
    pass


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Declaration]
    next_cursor: str | None


def encode_cursor(d: Declaration) -> str:
    raw = json.dumps([d.filed_at.astimezone(UTC).isoformat(), d.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, ident = json.loads(raw)
        return datetime.fromisoformat(at), str(ident)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise BadCursor(
            "cursor: not a cursor this API gave out",
            errors=[field_error("cursor", "invalid cursor", where="query")],
        ) from exc


async def queue(
    session: AsyncSession,
    *,
    state: str | None = None,
    reason: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Queued declarations, oldest first (filed_at, id), after ``cursor``."""
    states = (state,) if state else QUEUED
    stmt = select(Declaration).where(Declaration.decision.in_(states))
    if reason:
        stmt = stmt.where(Declaration.reason_code == reason)
    if cursor:
        at, ident = decode_cursor(cursor)
        stmt = stmt.where(
            tuple_(Declaration.filed_at, Declaration.id) > tuple_(literal(at), literal(ident))
        )
    stmt = stmt.order_by(Declaration.filed_at, Declaration.id).limit(limit + 1)
    rows = list((await session.scalars(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]) if more and rows else None)


async def _load(session: AsyncSession, declaration_id: str) -> Declaration:
    stmt = select(Declaration).where(Declaration.id == declaration_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    d = (await session.execute(stmt)).scalar_one_or_none()
    if d is None or d.phase not in ("import", "export"):
        raise NotFoundError(f"No declaration {declaration_id}")
    return d


def _officer(officer: str, d: Declaration) -> None:
    if d.claimed_by is not None and d.claimed_by != officer:
        raise ClaimedByAnother(
            f"Declaration {d.id} is claimed by another officer", claimed_by=d.claimed_by
        )


async def claim(session: AsyncSession, declaration_id: str, *, officer: str) -> Declaration:
    """Claim a queued declaration (idempotent for the same officer)."""
    d = await _load(session, declaration_id)
    if d.decision not in QUEUED:
        raise DeclarationDecided(
            f"Declaration {d.id} is {d.decision}: it is not in the clearance queue",
            decision=d.decision,
        )
    _officer(officer, d)
    if d.claimed_by is None:
        d.claimed_by, d.claimed_at = officer, datetime.now(UTC)
    return d


async def decide(
    session: AsyncSession,
    declaration_id: str,
    *,
    officer: str,
    decision: OfficerDecision,
    reason: str,
    hub: str,
    now: datetime | None = None,
) -> tuple[Declaration, bool]:
    """Record an officer's decision; returns the declaration and whether it changed."""
    d = await _load(session, declaration_id)
    decided_by = f"officer:{officer}"
    if d.officer_decision == decision and d.decided_by == decided_by:
        return d, False  # the same decision again: nothing changes
    if d.decision not in QUEUED:
        raise DeclarationDecided(
            f"Declaration {d.id} is already {d.decision} ({d.decided_by})",
            decision=d.decision,
        )
    _officer(officer, d)
    now = now or datetime.now(UTC)
    new_decision, code = OUTCOMES[decision]
    d.claimed_by = d.claimed_by or officer
    d.claimed_at = d.claimed_at or now
    d.decision, d.reason_code, d.officer_decision = new_decision, code, decision
    d.reason = f"{decision} by {officer}: {reason}"
    d.decided_by, d.decided_at = decided_by, now
    if decision == "release":
        await _whitelist(session, d, officer=officer, reason=reason, now=now)
    await enqueue(
        session,
        topic=hub_topic(hub, STREAM),
        event_type=EVENT,
        key=d.order_id,
        payload=event_body(d, hub),
        headers={"order_id": d.order_id, "content-type": "application/json"},
    )
    waited = (now - d.filed_at.astimezone(UTC)).total_seconds()
    TIME_IN_QUEUE.labels(hub=hub, decision=decision).observe(max(waited, 0.0))
    return d, True


def event_body(d: Declaration, hub: str) -> dict[str, Any]:
    return {
        "order_id": d.order_id,
        "declaration_id": d.id,
        "phase": d.phase,
        "country": hub,
        "decision": d.decision,
        "officer_decision": d.officer_decision,
        "reason_code": d.reason_code,
        "reason": d.reason,
        "decided_by": d.decided_by,
        "decided_at": d.decided_at.astimezone(UTC).isoformat(),
    }


async def _whitelist(
    session: AsyncSession, d: Declaration, *, officer: str, reason: str, now: datetime
) -> None:
    hits = await session.scalars(
        select(ScreeningHit).where(
            ScreeningHit.declaration_id == d.id,
            ScreeningHit.category == "party",
            ScreeningHit.outcome == "review",
        )
    )
    for h in hits:
        if h.subject is None or h.entry is None:
            continue
        exists = await session.scalar(
            select(WhitelistEntry.id).where(
                WhitelistEntry.subject == h.subject, WhitelistEntry.entry == h.entry
            )
        )
        if exists is None:
            session.add(
                WhitelistEntry(
                    subject=h.subject,
                    entry=h.entry,
                    reason=f"released {d.id}: {reason}",
                    cleared_by=officer,
                    declaration_id=d.id,
                    created_at=now,
                )
            )

"""Recording verified events from peers, once: the database half of ingest.

:func:`record_jobs` takes verified requests (over HTTP or the backbone alike) and, in the
caller's transaction, stores each HTTP request's nonce, judges whether each sender may
speak of the orders its events are about (``parties.py``, requests in their order of
arrival), records each new event in the inbox and ``fed_received`` and republishes it
to the hub-local topic of its stream through core's outbox
(:func:`ehub_core.outbox.enqueue_many`). A refused request keeps nothing, not even its
nonce, while the others go on. Each table gets one multi-row statement, whatever the
number of requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import insert_new
from ehub_core.envelope import VerifiedEnvelope
from ehub_core.inbox import consume_many
from ehub_core.models import NonceRecord
from ehub_core.outbox import NewEvent, enqueue_many
from ehub_core.proto.ehub.v1.receipt_pb2 import ReceiptEntry
from ehub_core.streams import EVENT_TYPES, PROTOBUF, hub_topic
from ehub_gateway.federation.models import ReceivedEvent
from ehub_gateway.federation.parties import NotOrderParty, OrderClaim, OrderParties

INBOX_CONSUMER = "federation"
_CHUNK = 500  # ids per SELECT ... IN (...)


@dataclass(frozen=True)
class Nonce:
    kid: str
    nonce: str
    expires_at: datetime


class DeferredNonces:
    """A :class:`~ehub_core.signing.NonceStore` that only remembers the nonce: it is
    checked and stored by :func:`record_jobs`, with the request's effect."""

    def __init__(self) -> None:
        self.seen: Nonce | None = None

    async def check_and_store(self, kid: str, nonce: str, expires_at: datetime) -> bool:
        self.seen = Nonce(kid, nonce, expires_at)
        return True


@dataclass(frozen=True)
class Recorded:
    """What became of one request: whether its nonce was fresh (always, over the
    backbone), the ids of its events that took effect now, and the (id, digest) of its
    events whose id this hub holds with other bytes or from another hub."""

    fresh_nonce: bool
    taken: frozenset[str]
    conflicts: frozenset[tuple[str, str]]


@dataclass
class IngestJob:
    """One verified request (an HTTP batch or one backbone message) to record."""

    sender_hub: str
    via: str  # http | kafka
    good: Sequence[tuple[bytes, VerifiedEnvelope]]
    rejected: Sequence[ReceiptEntry] = ()
    claims: Sequence[OrderClaim] = ()
    nonce: Nonce | None = None  # HTTP only
    # Over the backbone the signed receipt goes back through the outbox, in the
    # transaction that records the events (set by the writer).
    receipt_topic: str | None = None
    future: asyncio.Future[tuple[Recorded, bytes]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


JobResult = Recorded | NotOrderParty


async def record_jobs(
    session: AsyncSession, own_hub: str, jobs: Sequence[IngestJob], now: datetime
) -> list[JobResult]:
    """Record ``jobs`` in ``session``; return each one's outcome or refusal."""
    fresh_nonces = await _store_nonces(session, [j.nonce for j in jobs if j.nonce is not None])
    admitted: list[bool] = []
    for job in jobs:
        if job.nonce is None:
            admitted.append(True)
            continue
        key = (job.nonce.kid, job.nonce.nonce)
        # A nonce twice in one group: the first request has it, the second is a replay.
        admitted.append(key in fresh_nonces)
        fresh_nonces.discard(key)
    refusals = await _judge(session, own_hub, jobs, admitted)
    # A refused request keeps nothing: its nonce is given back, as a request refused
    # before recording never stored it.
    await _forget_nonces(
        session,
        [j.nonce for j, r in zip(jobs, refusals, strict=True) if r is not None and j.nonce],
    )
    event_ids = [
        v.envelope.event_id
        for job, ok, refusal in zip(jobs, admitted, refusals, strict=True)
        if ok and refusal is None
        for _, v in job.good
    ]
    fresh = await consume_many(session, event_ids=event_ids, consumer=INBOX_CONSUMER)
    received: list[dict[str, object]] = []
    republished: list[NewEvent] = []
    results: list[JobResult] = []
    held: dict[str, tuple[str, str]] = {}  # taken in this group: (source hub, digest)
    for job, ok, refusal in zip(jobs, admitted, refusals, strict=True):
        if refusal is not None:
            results.append(refusal)
            continue
        taken: set[str] = set()
        conflicts: set[tuple[str, str]] = set()
        if ok:
            for data, verified in job.good:
                event_id = verified.envelope.event_id
                if event_id in fresh:
                    fresh.discard(event_id)  # an event twice in the group counts once
                    taken.add(event_id)
                    held[event_id] = (verified.envelope.source_hub, verified.digest)
                    received.append(_received_row(verified, via=job.via, now=now))
                    republished.append(_republished(data, verified, own_hub))
            if len(taken) < len(job.good):  # a copy of an id held before, or twice
                conflicts = await id_conflicts(session, job.good, held)
        results.append(Recorded(ok, frozenset(taken), frozenset(conflicts)))
    if received:
        await session.execute(insert(ReceivedEvent), received)
        await enqueue_many(session, republished, current_trace=False, now=now)
    return results


def _received_row(verified: VerifiedEnvelope, *, via: str, now: datetime) -> dict[str, object]:
    env = verified.envelope
    return {
        "event_id": env.event_id,
        "source_hub": env.source_hub,
        "event_type": env.type,
        "subject": env.subject,
        "digest": verified.digest,
        "traceparent": env.traceparent or None,
        "via": via,
        "received_at": now,
    }


def _republished(data: bytes, verified: VerifiedEnvelope, own_hub: str) -> NewEvent:
    """The event for this hub's own consumers: the signed envelope's exact bytes, on
    its stream's topic, keyed by its subject, in the trace it was sealed in (or none)."""
    env = verified.envelope
    headers = {"source_hub": env.source_hub, "content-type": PROTOBUF}
    if env.traceparent:
        headers["traceparent"] = env.traceparent
    return NewEvent(
        topic=hub_topic(own_hub, EVENT_TYPES[env.type].stream),
        event_type=env.type,
        payload=data,
        key=env.subject,
        event_id=env.event_id,
        headers=headers,
    )


async def id_conflicts(
    session: AsyncSession,
    good: Sequence[tuple[bytes, VerifiedEnvelope]],
    taken: dict[str, tuple[str, str]],
) -> set[tuple[str, str]]:
    """The (event id, digest) of the events of ``good`` whose id this hub holds with other
    bytes or from another hub: a DUPLICATE receipt promises the same id *and* digest.

    ``taken`` maps the ids taken in this transaction to their (source hub, digest); the
    others are looked up in ``fed_received``."""
    seen = {v.envelope.event_id for _, v in good} - taken.keys()
    known = dict(taken)
    ids = sorted(seen)
    for i in range(0, len(ids), _CHUNK):
        rows = await session.execute(
            select(ReceivedEvent.event_id, ReceivedEvent.source_hub, ReceivedEvent.digest).where(
                ReceivedEvent.event_id.in_(ids[i : i + _CHUNK])
            )
        )
        known.update({eid: (hub, digest) for eid, hub, digest in rows})
    conflicts = set()
    for _, verified in good:
        env = verified.envelope
        held = known.get(env.event_id)
        if held is not None and held != (env.source_hub, verified.digest):
            conflicts.add((env.event_id, verified.digest))
    return conflicts


async def _judge(
    session: AsyncSession, own_hub: str, jobs: Sequence[IngestJob], admitted: Sequence[bool]
) -> list[NotOrderParty | None]:
    """Each admitted job's refusal, if its sender may not speak of an order it names;
    judged in arrival order, so an order placed by one job is known to the next."""
    claims = [c for job, ok in zip(jobs, admitted, strict=True) if ok for c in job.claims]
    if not claims:
        return [None] * len(jobs)
    parties = await OrderParties.load(session, own_hub, claims)
    return [
        parties.judge(job.claims, job.sender_hub) if ok and job.claims else None
        for job, ok in zip(jobs, admitted, strict=True)
    ]


async def _forget_nonces(session: AsyncSession, nonces: Sequence[Nonce | None]) -> None:
    conds = [and_(NonceRecord.key_id == n.kid, NonceRecord.nonce == n.nonce) for n in nonces if n]
    if conds:
        await session.execute(delete(NonceRecord).where(or_(*conds)))


async def _store_nonces(session: AsyncSession, nonces: Sequence[Nonce]) -> set[tuple[str, str]]:
    if not nonces:
        return set()
    rows = [{"key_id": n.kid, "nonce": n.nonce, "expires_at": n.expires_at} for n in nonces]
    return {(k, n) for k, n in await insert_new(session, NonceRecord, rows, ("key_id", "nonce"))}

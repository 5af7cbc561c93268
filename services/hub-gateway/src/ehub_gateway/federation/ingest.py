"""Receiving events from peers, over HTTP or the backbone alike.

Each envelope's origin signature is verified; the sender may only deliver its own
events, for this hub, of types it is allowed, and about orders it is the other hub of
(``parties.py``); each new event is recorded in the inbox, kept in ``fed_received`` and
republished to the hub-local topic of its stream through the outbox — all in the
caller's transaction. The answer is a signed receipt listing every envelope: accepted,
duplicate (accepted before) or rejected with a reason code. A sender overstepping its
rights is refused as a whole (403 naming the event), with nothing written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.envelope import (
    VerifiedEnvelope,
    envelope_digest,
    read_unverified,
    receipt_entry,
    sign_receipt,
    verify_envelope,
)
from ehub_core.errors import ForbiddenError
from ehub_core.ids import uuid7
from ehub_core.inbox import consume_many
from ehub_core.models import OutboxRecord
from ehub_core.outbox import OUTBOX_DIRTY
from ehub_core.proto.ehub.v1.receipt_pb2 import ReceiptEntry, ReceiptOutcome
from ehub_core.signing import HubKey, SignatureError
from ehub_core.signing.errors import Reason
from ehub_gateway.federation.models import ReceivedEvent
from ehub_gateway.federation.parties import OrderClaim, OrderParties, order_claim
from ehub_gateway.federation.trust import TrustStore

INBOX_CONSUMER = "federation"
EVENT_TOO_LARGE = "event_too_large"
DEFAULT_MAX_EVENT_BYTES = 262_144
# The receipt reason of an event whose id this hub holds with other bytes or from another
# hub (docs/federation-wire.md).
EVENT_ID_CONFLICT = "event_id_conflict"

STREAMS = {
    "OrderPlaced": "orders",
    "OrderAccepted": "orders",
    "OrderRejected": "orders",
    "OrderCancelled": "orders",
    "OrderCancelRefused": "orders",
    "ReturnRequested": "orders",
    "ReturnReceived": "orders",
    "DeclarationFiled": "customs",
    "ClearanceDecided": "customs",
    "ShipmentBooked": "shipments",
    "ShipmentEvent": "shipments",
    "DeliveryConfirmed": "shipments",
    "KeyPublished": "trust",
    "KeyRevoked": "trust",
}


@dataclass(frozen=True)
class IngestResult:
    signed_receipt: bytes
    accepted: int
    duplicates: int
    rejected: int


def _rejected(data: bytes, reason: str) -> ReceiptEntry:
    try:
        event_id = read_unverified(data).event_id
    except SignatureError:
        event_id = ""
    try:
        digest = envelope_digest(data)
    except SignatureError:
        digest = hashlib.sha256(data).hexdigest()
    return receipt_entry(event_id, digest, ReceiptOutcome.RECEIPT_OUTCOME_REJECTED, reason)


class VerifiedBatch(NamedTuple):
    """A batch after its cryptography: the envelopes that verified, the receipt entries of
    those that did not, and what the good ones say about orders (judged with the database,
    in the transaction that records them)."""

    good: list[tuple[bytes, VerifiedEnvelope]]
    rejected: list[ReceiptEntry]
    claims: list[OrderClaim]


def verify_batch(
    envelopes: Sequence[bytes],
    *,
    sender_hub: str,
    own_hub: str,
    trust: TrustStore,
    clock_skew: int,
    now: datetime,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> VerifiedBatch:
    """Verify each envelope; 403 (whole batch) if the sender oversteps its rights."""
    good: list[tuple[bytes, VerifiedEnvelope]] = []
    rejected: list[ReceiptEntry] = []
    claims: list[OrderClaim] = []
    peer = trust.peer(sender_hub)
    for data in envelopes:
        if len(data) > max_event_bytes:
            # Republished as it is, it would stop at the broker (message too large):
            # refused before any cryptography, with nothing written.
            rejected.append(_rejected(data, EVENT_TOO_LARGE))
            continue
        try:
            verified = verify_envelope(
                data, trust.resolve, expected_target=own_hub, now=now, clock_skew=clock_skew
            )
            info = trust.resolve(verified.key_id)
            # A signature made while the key was valid stops counting once it expired:
            # the sender re-seals with its current key.
            if info is not None and (problem := info.validity_at(now)) is not None:
                raise SignatureError(problem, f"key {verified.key_id} is no longer valid")
        except SignatureError as exc:
            rejected.append(_rejected(data, exc.reason_code))
            continue
        env = verified.envelope
        if env.source_hub != sender_hub:
            raise ForbiddenError(
                f"hub {sender_hub} may only deliver its own events, not {env.source_hub}'s",
                event_id=env.event_id,
            )
        if peer is None or not peer.may_send(env.type):
            raise ForbiddenError(
                f"hub {sender_hub} may not send {env.type} events", event_id=env.event_id
            )
        if env.type not in STREAMS:
            rejected.append(_rejected(data, Reason.UNKNOWN_EVENT_TYPE))
            continue
        try:
            claim = order_claim(env, STREAMS[env.type])
        except SignatureError as exc:
            rejected.append(_rejected(data, exc.reason_code))
            continue
        good.append((data, verified))
        if claim is not None:
            claims.append(claim)
    return VerifiedBatch(good, rejected, claims)


@dataclass
class NewRows:
    """What a set of fresh events adds to the database (multi-row inserts)."""

    received: list[dict[str, object]] = field(default_factory=list)
    outbox: list[dict[str, object]] = field(default_factory=list)

    def add(
        self, data: bytes, verified: VerifiedEnvelope, *, own_hub: str, via: str, now: datetime
    ) -> None:
        env = verified.envelope
        self.received.append(
            {
                "event_id": env.event_id,
                "source_hub": env.source_hub,
                "event_type": env.type,
                "subject": env.subject,
                "digest": verified.digest,
                "traceparent": env.traceparent or None,
                "via": via,
                "received_at": now,
            }
        )
        headers = {
            "event_id": env.event_id,
            "event_type": env.type,
            "source_hub": env.source_hub,
            "content-type": "application/x-protobuf",
        }
        if env.traceparent:
            headers["traceparent"] = env.traceparent
        self.outbox.append(
            {
                "id": str(uuid7()),
                "event_id": env.event_id,
                "event_type": env.type,
                "topic": f"ehub.{own_hub.lower()}.{STREAMS[env.type]}",
                "key": env.subject,
                "payload": data,
                "headers": headers,
                "created_at": now,
                "attempts": 0,
            }
        )

    async def write(self, session: AsyncSession) -> None:
        if self.received:
            # Core multi-row inserts: one statement each, whatever the batch size.
            await session.execute(insert(ReceivedEvent), self.received)
            await session.execute(insert(OutboxRecord), self.outbox)
            session.info[OUTBOX_DIRTY] = True


def receipt_entries(
    good: Sequence[tuple[bytes, VerifiedEnvelope]],
    accepted: set[str],
    conflicts: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
) -> list[ReceiptEntry]:
    """ACCEPTED for the events that took effect now, REJECTED ``event_id_conflict`` for an
    id this hub holds with other bytes or from another hub, DUPLICATE for the others (the
    same id and digest, accepted before)."""
    entries = []
    for _, verified in good:
        env = verified.envelope
        if (env.event_id, verified.digest) in conflicts:
            entries.append(
                receipt_entry(
                    env.event_id,
                    verified.digest,
                    ReceiptOutcome.RECEIPT_OUTCOME_REJECTED,
                    EVENT_ID_CONFLICT,
                )
            )
            continue
        outcome = (
            ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED
            if env.event_id in accepted
            else ReceiptOutcome.RECEIPT_OUTCOME_DUPLICATE
        )
        entries.append(receipt_entry(env.event_id, verified.digest, outcome))
    return entries


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
    for i in range(0, len(ids), 500):
        rows = await session.execute(
            select(ReceivedEvent.event_id, ReceivedEvent.source_hub, ReceivedEvent.digest).where(
                ReceivedEvent.event_id.in_(ids[i : i + 500])
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


async def apply_batch(
    session: AsyncSession,
    good: Sequence[tuple[bytes, VerifiedEnvelope]],
    *,
    own_hub: str,
    via: str,
    now: datetime,
) -> tuple[list[ReceiptEntry], int]:
    """Record and republish new events; return receipt entries and how many were new."""
    fresh = await consume_many(
        session, event_ids=[v.envelope.event_id for _, v in good], consumer=INBOX_CONSUMER
    )
    rows = NewRows()
    applied: dict[str, tuple[str, str]] = {}
    for data, verified in good:
        event_id = verified.envelope.event_id
        if event_id in fresh and event_id not in applied:
            applied[event_id] = (verified.envelope.source_hub, verified.digest)
            rows.add(data, verified, own_hub=own_hub, via=via, now=now)
    conflicts = await id_conflicts(session, good, applied)
    await rows.write(session)
    return receipt_entries(good, set(applied), conflicts), len(applied)


async def ingest(
    session: AsyncSession,
    *,
    envelopes: Sequence[bytes],
    sender_hub: str,
    own_hub: str,
    via: str,
    trust: TrustStore,
    key: HubKey,
    clock_skew: int = 300,
    now: datetime | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> IngestResult:
    """Verify, judge and record ``envelopes`` from ``sender_hub`` in ``session``; raises
    :class:`ForbiddenError` (``NotOrderParty`` included) before writing anything."""
    now = now or datetime.now(UTC)
    good, rejected, claims = verify_batch(
        envelopes,
        sender_hub=sender_hub,
        own_hub=own_hub,
        trust=trust,
        clock_skew=clock_skew,
        now=now,
        max_event_bytes=max_event_bytes,
    )
    parties = await OrderParties.load(session, own_hub, claims)
    if (refusal := parties.judge(claims, sender_hub)) is not None:
        raise refusal
    entries, applied = await apply_batch(session, good, own_hub=own_hub, via=via, now=now)
    receipt = sign_receipt([*entries, *rejected], key, sender_hub=sender_hub, received_at=now)
    conflicts = sum(e.outcome == ReceiptOutcome.RECEIPT_OUTCOME_REJECTED for e in entries)
    return IngestResult(
        signed_receipt=receipt,
        accepted=applied,
        duplicates=len(entries) - applied - conflicts,
        rejected=len(rejected) + conflicts,
    )

"""A shipment's timeline: storing events, replaying the state machine, publishing.

Every event received is stored once (dedup on the carrier's event id). After each
change the whole timeline is replayed in carrier-time order, which recomputes which
events apply and which are anomalies, and the shipment's status. Each event that
becomes applied is published as a ``ShipmentEvent`` through the outbox in the same
transaction; one that a late event pushes out is published again as a retraction, so
other hubs never keep a step the machine no longer holds.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.ids import uuid7
from ehub_core.telemetry import resumed_trace
from ehub_logistics.carriers.base import CarrierEvent
from ehub_logistics.countries import is_country
from ehub_logistics.shipments.events import publish_step
from ehub_logistics.shipments.models import Shipment, TrackingEventRecord
from ehub_logistics.shipments.repository import ShipmentRepository
from ehub_logistics.tracking.machine import TrackedEvent, order_key, replay
from ehub_logistics.tracking.statuses import TrackingStatus


def new_record(
    shipment: Shipment,
    *,
    key: str,
    source: str,
    status: TrackingStatus,
    occurred_at: datetime,
    received_at: datetime,
    carrier_code: str | None = None,
    place: str | None = None,
    country: str | None = None,
    reason_code: str | None = None,
    description: str | None = None,
) -> TrackingEventRecord:
    # Carriers' data is stored as sent but bounded: a long field or a country that is
    # not ISO 3166 must not turn an authentic delivery into a database error.
    return TrackingEventRecord(
        id=str(uuid7()),
        shipment_id=shipment.id,
        dedup_key=key,
        source=source,
        status=status.value,
        carrier_code=_clip(carrier_code, 32),
        occurred_at=occurred_at,
        received_at=received_at,
        place=_clip(place, 200),
        country=country if country and is_country(country) else None,
        reason_code=_clip(reason_code, 64),
        description=_clip(description, 2000),
        applied=False,
        anomaly=None,
    )


def _clip(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"


def dedup_key(carrier: str, event_id: str) -> str:
    key = f"{carrier}:{event_id}"
    if len(key) <= 200:
        return key
    return f"{carrier}:sha256:{hashlib.sha256(event_id.encode()).hexdigest()}"


def refold(
    shipment: Shipment, records: Sequence[TrackingEventRecord]
) -> tuple[list[TrackingEventRecord], list[TrackingEventRecord]]:
    """Replay ``records``; update their verdicts and the shipment's status.

    Returns the records that became applied and those that stopped being applied.
    """
    result = replay(tracked(r) for r in records)
    applied = {e.key for e in result.applied}
    reasons = {e.key: why for e, why in result.refused}
    gained, lost = [], []
    for record in records:
        now_applied = record.dedup_key in applied
        if now_applied and not record.applied:
            gained.append(record)
        elif record.applied and not now_applied:
            lost.append(record)
        record.applied = now_applied
        record.anomaly = reasons.get(record.dedup_key)
    shipment.status = result.state.status.value
    return gained, lost


def tracked(record: TrackingEventRecord) -> TrackedEvent:
    return TrackedEvent(record.dedup_key, TrackingStatus(record.status), record.occurred_at)


def ordered(records: Sequence[TrackingEventRecord]) -> list[TrackingEventRecord]:
    """In the order the state machine reads them (carrier time, lifecycle, key)."""
    return sorted(records, key=lambda r: order_key(tracked(r)))


async def publish_changes(
    session: AsyncSession,
    shipment: Shipment,
    gained: Sequence[TrackingEventRecord],
    lost: Sequence[TrackingEventRecord],
    *,
    topic: str,
) -> None:
    for record in ordered(gained):
        await publish_step(session, topic=topic, shipment=shipment, record=record)
    for record in ordered(lost):
        await publish_step(session, topic=topic, shipment=shipment, record=record, retracted=True)


@dataclass(slots=True)
class IngestOutcome:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    anomalies: list[dict[str, str]] = field(default_factory=list)
    unknown_tracking_numbers: list[str] = field(default_factory=list)


async def ingest(
    session: AsyncSession,
    *,
    carrier: str,
    events: Sequence[CarrierEvent],
    received_at: datetime,
    topic: str,
) -> IngestOutcome:
    """Store, dedup and apply one webhook delivery's events; publish what changed."""
    repo = ShipmentRepository(session)
    outcome = IngestOutcome(received=len(events))
    by_number: dict[str, list[CarrierEvent]] = defaultdict(list)
    for event in events:
        by_number[event.tracking_number].append(event)
    found = await repo.with_events_by_tracking_numbers(carrier, list(by_number))
    outcome.unknown_tracking_numbers = sorted(set(by_number) - set(found))
    for number, (shipment, records) in found.items():
        known = {r.dedup_key for r in records}
        fresh: list[tuple[TrackingEventRecord, CarrierEvent]] = []
        for event in by_number[number]:
            key = dedup_key(carrier, event.event_id)
            if key in known:
                outcome.duplicates += 1
                continue
            known.add(key)
            record = new_record(
                shipment,
                key=key,
                source="carrier",
                status=event.status,
                occurred_at=event.occurred_at,
                received_at=received_at,
                carrier_code=event.carrier_code,
                place=event.place,
                country=event.country,
                reason_code=event.reason_code,
                description=event.description,
            )
            repo.add_event(record)
            fresh.append((record, event))
        if not fresh:
            continue
        gained, lost = refold(shipment, [*records, *(r for r, _ in fresh)])
        shipment.updated_at = received_at
        outcome.accepted += sum(1 for r, _ in fresh if r.applied)
        outcome.anomalies += [
            {
                "event_id": e.event_id,
                "tracking_number": number,
                "status": r.status,
                "reason": r.anomaly or "",
            }
            for r, e in fresh
            if not r.applied
        ]
        # The carrier's webhook is a trace of its own; what the hub makes of it
        # continues the trace of the booking (the order's), linked to the webhook.
        with resumed_trace(
            shipment.traceparent,
            "carrier tracking",
            {"ehub.shipment_id": shipment.id, "ehub.carrier": carrier},
        ):
            await publish_changes(session, shipment, gained, lost, topic=topic)
    return outcome

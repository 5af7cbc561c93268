"""All SQL of the shipments domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_logistics.shipments.models import Shipment, TrackingEventRecord


class ShipmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, shipment: Shipment) -> None:
        self.session.add(shipment)

    def add_event(self, event: TrackingEventRecord) -> None:
        self.session.add(event)

    async def get(self, shipment_id: str, *, for_update: bool = False) -> Shipment | None:
        stmt = select(Shipment).where(Shipment.id == shipment_id)
        if for_update:
            # Serialises concurrent webhooks for one shipment on Postgres; SQLite's
            # BEGIN IMMEDIATE already serialises writers.
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def with_events_by_tracking_numbers(
        self, carrier: str, tracking_numbers: Sequence[str]
    ) -> dict[str, tuple[Shipment, list[TrackingEventRecord]]]:
        """Shipments (locked for update) with their events.

        Two statements on purpose: lock first, then read the events. On Postgres (read
        committed) a join that waited for the lock would still return the events of its
        old snapshot, missing those the transaction it waited for had just added.
        """
        locked = (
            await self.session.scalars(
                select(Shipment)
                .where(Shipment.carrier == carrier, Shipment.tracking_number.in_(tracking_numbers))
                .order_by(Shipment.id)
                .with_for_update()
            )
        ).all()
        found: dict[str, tuple[Shipment, list[TrackingEventRecord]]] = {
            s.tracking_number: (s, []) for s in locked
        }
        if not locked:
            return found
        by_id = {s.id: s.tracking_number for s in locked}
        records = await self.session.scalars(
            select(TrackingEventRecord).where(TrackingEventRecord.shipment_id.in_(list(by_id)))
        )
        for record in records:
            found[by_id[record.shipment_id]][1].append(record)
        return found

    async def for_order(
        self, order_id: str, *, limit: int, owner: str | None = None
    ) -> list[Shipment]:
        """The order's shipments; only ``owner``'s when given."""
        stmt = (
            select(Shipment)
            .where(Shipment.order_id == order_id)
            .order_by(Shipment.created_at, Shipment.id)
            .limit(limit)
        )
        if owner is not None:
            stmt = stmt.where(Shipment.owner == owner)
        return list((await self.session.scalars(stmt)).all())

    async def holding_saga_step(self, order_id: str, step: str) -> Shipment | None:
        """The order's live shipment for a saga step (the one holding its slot)."""
        stmt = select(Shipment).where(Shipment.order_id == order_id, Shipment.saga_slot == step)
        return (await self.session.scalars(stmt)).one_or_none()

    async def last_for_saga_step(self, order_id: str, step: str) -> Shipment | None:
        """The order's most recent shipment booked for a saga step, live or not."""
        stmt = (
            select(Shipment)
            .where(Shipment.order_id == order_id, Shipment.saga_step == step)
            .order_by(Shipment.created_at.desc(), Shipment.id.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def label(
        self, shipment_id: str, *, owner: str | None = None
    ) -> tuple[str, bytes] | None:
        """Tracking number and label of the shipment; only if ``owner``'s when given."""
        stmt = select(Shipment.tracking_number, Shipment.label_pdf).where(
            Shipment.id == shipment_id
        )
        if owner is not None:
            stmt = stmt.where(Shipment.owner == owner)
        row = (await self.session.execute(stmt)).one_or_none()
        return None if row is None else (row[0], row[1])

    async def events(self, shipment_id: str) -> list[TrackingEventRecord]:
        stmt = select(TrackingEventRecord).where(TrackingEventRecord.shipment_id == shipment_id)
        return list((await self.session.scalars(stmt)).all())

    async def events_for(self, shipment_ids: Sequence[str]) -> dict[str, list[TrackingEventRecord]]:
        stmt = select(TrackingEventRecord).where(TrackingEventRecord.shipment_id.in_(shipment_ids))
        grouped: dict[str, list[TrackingEventRecord]] = {sid: [] for sid in shipment_ids}
        for record in (await self.session.scalars(stmt)).all():
            grouped[record.shipment_id].append(record)
        return grouped

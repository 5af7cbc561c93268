"""Booking, reading and cancelling shipments. Services never commit: the request
scope does, once, so the shipment, its first event and its outbox rows land together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    UnprocessableError,
    field_error,
)
from ehub_core.ids import new_id
from ehub_core.telemetry import current_traceparent
from ehub_logistics.carriers.base import BookingRequest, CarrierError, RateQuote, RateRequest
from ehub_logistics.carriers.registry import CarrierRegistry
from ehub_logistics.labels import LabelData, render_label
from ehub_logistics.rates import shop
from ehub_logistics.shipments.events import booked, publish
from ehub_logistics.shipments.models import Shipment, TrackingEventRecord
from ehub_logistics.shipments.repository import ShipmentRepository
from ehub_logistics.shipments.schemas import ShipmentCreate
from ehub_logistics.shipments.timeline import new_record, publish_changes, refold, tracked
from ehub_logistics.tracking.machine import ShipmentState, refusal, replay
from ehub_logistics.tracking.statuses import TrackingStatus


class CarrierFailure(DomainError):
    status = 502
    title = "Carrier error"
    type_slug = "carrier-error"


@dataclass(frozen=True, slots=True)
class Publishing:
    """Where this hub's shipment events go (``ehub.<hub>.tracking``)."""

    topic: str


def _rate_request(data: ShipmentCreate, ship_date: date) -> RateRequest:
    customs = data.customs
    return RateRequest(
        origin=data.shipper.to_address(),
        destination=data.recipient.to_address(),
        parcels=tuple(p.to_parcel() for p in data.parcels),
        declared_value=customs.to_customs().total_value if customs else Decimal(0),
        currency=customs.currency if customs else "USD",
        ship_date=ship_date,
        services=frozenset({data.service}),
    )


async def _quote(
    registry: CarrierRegistry, data: ShipmentCreate, request: RateRequest
) -> tuple[RateQuote, str]:
    if data.carrier not in registry:
        raise UnprocessableError(
            f"No carrier {data.carrier!r} on this hub; choose one of {registry.names}",
            errors=[field_error(["carrier"], "unknown carrier", "unknown_carrier")],
        )
    found = await shop([registry.get(data.carrier)], request, currency=request.currency)
    if not found.by_price:
        why = "; ".join(found.messages) or "not offered"
        raise UnprocessableError(
            f"{data.carrier}/{data.service} cannot carry this shipment: {why}",
            errors=[field_error(["service"], why, "service_unavailable")],
        )
    quote = found.by_price[0]
    quoted_id = found.rate_id(quote)
    if data.rate_id is not None and data.rate_id != quoted_id:
        raise ConflictError(
            "The rate changed since it was quoted (or the shipment differs from the "
            "rated one); re-rate and book with the new rate_id.",
            rate_id=quoted_id,
            total=str(quote.total),
            currency=quote.currency,
        )
    return quote, quoted_id


async def book_shipment(
    session: AsyncSession,
    *,
    registry: CarrierRegistry,
    publishing: Publishing,
    data: ShipmentCreate,
    now: datetime | None = None,
    saga_step: str | None = None,
    owner: str | None = None,
) -> tuple[Shipment, list[TrackingEventRecord]]:
    """Re-price, book with the carrier, print the label, record and publish.

    ``saga_step`` is the order saga's step the booking serves (``consumers.py``); the
    shipment then holds that step's slot of its order until it is cancelled. ``owner``
    is the partner booking it through the gateway (None: the saga, development mode).
    """
    now = now or datetime.now(UTC)
    if data.shipper.country != data.recipient.country and data.customs is None:
        raise UnprocessableError(
            "A cross-border shipment needs a customs declaration (items, HS codes, values).",
            errors=[field_error(["customs"], "required when crossing a border", "missing")],
        )
    ship_date = data.ship_date or now.date()
    request = _rate_request(data, ship_date)
    quote, quoted_id = await _quote(registry, data, request)
    adapter = registry.get(data.carrier)
    customs = data.customs.to_customs() if data.customs else None
    try:
        booking = await adapter.book(
            BookingRequest(
                service=data.service,
                shipper=request.origin,
                recipient=request.destination,
                parcels=request.parcels,
                ship_date=ship_date,
                customs=customs,
                reference=data.reference,
            )
        )
    except CarrierError as exc:
        raise CarrierFailure(f"{data.carrier} refused the booking: {exc}") from exc
    shipment_id = new_id("shp")
    label = booking.label_pdf or render_label(
        LabelData(
            shipment_id=shipment_id,
            tracking_number=booking.tracking_number,
            carrier_name=adapter.display_name,
            service_name=quote.service_name,
            shipper=request.origin,
            recipient=request.destination,
            parcels=request.parcels,
            chargeable_weight_kg=quote.chargeable_weight_kg,
            ship_date=ship_date,
            customs=customs,
            reference=data.reference,
        )
    )
    shipment = Shipment(
        id=shipment_id,
        carrier=data.carrier,
        service=quote.service,
        service_name=quote.service_name,
        tracking_number=booking.tracking_number,
        carrier_reference=booking.carrier_reference,
        status=TrackingStatus.CREATED.value,
        order_id=data.order_id,
        saga_step=saga_step,
        saga_slot=saga_step,
        traceparent=current_traceparent(),
        reference=data.reference,
        origin_country=request.origin.country,
        destination_country=request.destination.country,
        shipper=data.shipper.model_dump(mode="json", exclude_none=True),
        recipient=data.recipient.model_dump(mode="json", exclude_none=True),
        parcels=[_parcel_json(p) for p in request.parcels],
        customs=data.customs.model_dump(mode="json") if data.customs else None,
        currency=quote.currency,
        total=quote.total,
        charges={
            "base": str(quote.base),
            "fuel_surcharge": str(quote.fuel_surcharge),
            "remote_area_fee": str(quote.remote_area_fee),
        },
        chargeable_weight_kg=quote.chargeable_weight_kg,
        transit_days=quote.transit_days,
        ship_date=ship_date,
        estimated_delivery=quote.estimated_delivery,
        rate_id=quoted_id,
        rate_card=quote.rate_card,
        owner=owner,
        label_pdf=label,
        created_at=now,
        updated_at=now,
    )
    repo = ShipmentRepository(session)
    repo.add(shipment)
    created = new_record(
        shipment,
        key="hub:created",
        source="hub",
        status=TrackingStatus.CREATED,
        occurred_at=now,
        received_at=now,
        place=request.origin.city,
        country=request.origin.country,
        description="Label created; awaiting pick-up",
    )
    repo.add_event(created)
    gained, lost = refold(shipment, [created])
    booked_event = booked(shipment, quote.service_level.value)
    await publish(session, topic=publishing.topic, shipment=shipment, message=booked_event)
    await publish_changes(session, shipment, gained, lost, topic=publishing.topic)
    return shipment, [created]


def _parcel_json(p: Any) -> dict[str, str]:
    return {
        "weight_kg": str(p.weight_kg),
        "length_cm": str(p.length_cm),
        "width_cm": str(p.width_cm),
        "height_cm": str(p.height_cm),
    }


async def get_shipment(
    session: AsyncSession,
    shipment_id: str,
    *,
    for_update: bool = False,
    visible_to: str | None = None,
) -> tuple[Shipment, list[TrackingEventRecord]]:
    """The shipment with its events. ``visible_to``: a partner, to whom another's
    shipment is not found (None: any shipment — the saga, the operator, development)."""
    repo = ShipmentRepository(session)
    shipment = await repo.get(shipment_id, for_update=for_update)
    if shipment is None or (visible_to is not None and shipment.owner != visible_to):
        raise NotFoundError(f"No shipment {shipment_id!r}")
    return shipment, await repo.events(shipment.id)


async def shipments_for_order(
    session: AsyncSession, order_id: str, *, limit: int = 50, visible_to: str | None = None
) -> list[tuple[Shipment, list[TrackingEventRecord]]]:
    """An order's shipments (an order may ship in several), oldest first; only
    ``visible_to``'s own when given."""
    repo = ShipmentRepository(session)
    shipments = await repo.for_order(order_id, limit=limit, owner=visible_to)
    histories = await repo.events_for([s.id for s in shipments])
    return [(s, histories[s.id]) for s in shipments]


async def get_label(
    session: AsyncSession, shipment_id: str, *, visible_to: str | None = None
) -> tuple[str, bytes]:
    """The label PDF and the tracking number it carries."""
    found = await ShipmentRepository(session).label(shipment_id, owner=visible_to)
    if found is None:
        raise NotFoundError(f"No shipment {shipment_id!r}")
    return found


async def cancel_shipment(
    session: AsyncSession,
    *,
    registry: CarrierRegistry,
    publishing: Publishing,
    shipment_id: str,
    now: datetime | None = None,
    visible_to: str | None = None,
) -> tuple[Shipment, list[TrackingEventRecord]]:
    """Void a booking that the carrier has not picked up yet (409 otherwise); a
    partner (``visible_to``) only its own."""
    now = now or datetime.now(UTC)
    shipment, records = await get_shipment(
        session, shipment_id, for_update=True, visible_to=visible_to
    )
    state = _state(records)
    why = refusal(state, TrackingStatus.CANCELLED)
    if why is not None:
        raise ConflictError(
            f"Shipment {shipment_id} cannot be cancelled: {why}", status_now=state.status.value
        )
    try:
        await registry.get(shipment.carrier).cancel(shipment.tracking_number)
    except CarrierError as exc:
        raise ConflictError(f"{shipment.carrier} refused the cancellation: {exc}") from exc
    record = new_record(
        shipment,
        key="hub:cancelled",
        source="hub",
        status=TrackingStatus.CANCELLED,
        occurred_at=max(now, *(r.occurred_at for r in records)),
        received_at=now,
        country=shipment.origin_country,
        reason_code="sender_request",
        description="Cancelled by the sender before pick-up",
    )
    ShipmentRepository(session).add_event(record)
    records = [*records, record]
    gained, lost = refold(shipment, records)
    shipment.updated_at = now
    if shipment.status == TrackingStatus.CANCELLED.value:
        shipment.saga_slot = None  # the order's saga may book this step again
    await publish_changes(session, shipment, gained, lost, topic=publishing.topic)
    return shipment, records


def _state(records: list[TrackingEventRecord]) -> ShipmentState:
    return replay(tracked(r) for r in records).state

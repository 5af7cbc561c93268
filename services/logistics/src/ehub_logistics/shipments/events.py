"""The events this service publishes, shaped by the ``ehub.v1`` contracts.

Payloads are the protobuf JSON of ``ShipmentBooked``, ``ShipmentEvent`` and
``DeliveryConfirmed`` (proto/ehub/v1/logistics.proto), built through the generated
classes so they always parse back (the gateway seals them into signed envelopes as
they are). What the contract cannot carry yet travels in outbox headers for hub-local
consumers: the hub's exact status (the proto folds ``departed`` and
``arrived_destination`` into ``IN_TRANSIT``), the shipment's resulting status, and
whether the event retracts an earlier one.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.outbox import enqueue
from ehub_core.proto.ehub.v1 import common_pb2, logistics_pb2
from ehub_logistics.shipments.models import Shipment, TrackingEventRecord
from ehub_logistics.tracking.mappings import PROTO
from ehub_logistics.tracking.statuses import TrackingStatus

SHIPMENT_BOOKED = "ShipmentBooked"
SHIPMENT_EVENT = "ShipmentEvent"
DELIVERY_CONFIRMED = "DeliveryConfirmed"
RETRACTED = "retracted"  # reason_code of a ShipmentEvent that withdraws an earlier one


def _json(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _stamp(target: Any, moment: datetime) -> None:
    target.FromDatetime(moment.astimezone(UTC))


def _place(address: dict[str, Any], *, with_name: bool = False) -> common_pb2.Place:
    return common_pb2.Place(
        name=(address.get("name") or "") if with_name else "",
        city=address.get("city") or "",
        postal_code=address.get("postal_code") or "",
        country=address.get("country") or "",
    )


def booked(shipment: Shipment, service_level: str) -> logistics_pb2.ShipmentBooked:
    grams = sum((Decimal(p["weight_kg"]) for p in shipment.parcels), Decimal(0)) * 1000
    message = logistics_pb2.ShipmentBooked(
        shipment_id=shipment.id,
        order_id=shipment.order_id or "",
        carrier=shipment.carrier,
        service_level=service_level,
        tracking_number=shipment.tracking_number,
        origin=_place(shipment.shipper, with_name=True),
        destination=_place(shipment.recipient),  # the buyer's name stays home
        weight_grams=int(grams.to_integral_value()),
        cost=common_pb2.Money(amount=str(shipment.total), currency=shipment.currency),
        label_ref=f"/v1/shipments/{shipment.id}/label.pdf",
    )
    _stamp(message.booked_at, shipment.created_at)
    _stamp(message.estimated_delivery, datetime.combine(shipment.estimated_delivery, time(), UTC))
    return message


def shipment_event(
    shipment: Shipment, record: TrackingEventRecord, *, retracted: bool = False
) -> logistics_pb2.ShipmentEvent:
    status = TrackingStatus(record.status)
    message = logistics_pb2.ShipmentEvent(
        shipment_id=shipment.id,
        order_id=shipment.order_id or "",
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        status=logistics_pb2.ShipmentStatus.Value(PROTO[status]),
        where=common_pb2.Place(name=record.place or "", country=record.country or ""),
        reason_code=RETRACTED if retracted else (record.reason_code or ""),
        description=(f"retracted: {record.anomaly}" if retracted else (record.description or "")),
        carrier_status_code=record.carrier_code or "",
    )
    _stamp(message.occurred_at, record.occurred_at)
    _stamp(message.received_at, record.received_at)
    return message


def delivery_confirmed(
    shipment: Shipment, record: TrackingEventRecord
) -> logistics_pb2.DeliveryConfirmed:
    message = logistics_pb2.DeliveryConfirmed(
        shipment_id=shipment.id,
        order_id=shipment.order_id or "",
        where=common_pb2.Place(name=record.place or "", country=record.country or ""),
        proof_of_delivery_ref=record.dedup_key,  # the carrier's delivery scan
    )
    _stamp(message.delivered_at, record.occurred_at)
    return message


async def publish(
    session: AsyncSession,
    *,
    topic: str,
    shipment: Shipment,
    message: Message,
    headers: dict[str, str] | None = None,
) -> str:
    """Write one event to the outbox, keyed by order (else shipment) so it stays ordered.

    Headers carry ``order_id`` and ``saga_step`` (``ship``, ``return``) when the
    shipment has them, so the gateway's saga can tell an order's outbound parcel from
    its return without parsing the payload, and ``owner``, the partner that booked it
    through the door, whose webhooks the gateway sends.
    """
    key = shipment.order_id or shipment.id
    routing = {"subject": key, "target_hub": shipment.destination_country}
    if shipment.order_id:
        routing["order_id"] = shipment.order_id
    if shipment.saga_step:
        routing["saga_step"] = shipment.saga_step
    if shipment.owner:  # the partner that booked it through the door: its webhooks
        routing["owner"] = shipment.owner
    return await enqueue(
        session,
        topic=topic,
        key=key,
        event_type=message.DESCRIPTOR.name,
        payload=_json(message),
        headers={**routing, **(headers or {})},
    )


async def publish_step(
    session: AsyncSession,
    *,
    topic: str,
    shipment: Shipment,
    record: TrackingEventRecord,
    retracted: bool = False,
) -> None:
    """A timeline step as ``ShipmentEvent`` (plus ``DeliveryConfirmed`` on delivery)."""
    headers = {
        "ehub_status": record.status,
        "shipment_status": shipment.status,
        "retracted": "true" if retracted else "false",
    }
    message = shipment_event(shipment, record, retracted=retracted)
    await publish(session, topic=topic, shipment=shipment, message=message, headers=headers)
    if record.status == TrackingStatus.DELIVERED and not retracted:
        confirmed = delivery_confirmed(shipment, record)
        await publish(session, topic=topic, shipment=shipment, message=confirmed)

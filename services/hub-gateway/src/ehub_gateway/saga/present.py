"""How the saga presents what it learns: protobuf payloads as the dicts kept on orders
and timelines, and shipments booked through the door as partner webhooks."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.bus import Message
from ehub_core.proto.ehub.v1 import customs_pb2, logistics_pb2, orders_pb2
from ehub_gateway.orders.models import Order
from ehub_gateway.saga.machine import TERMINAL, State
from ehub_gateway.webhooks import service as webhook_service


async def shipment_webhooks(session: AsyncSession, message: Message, payload: ProtoMessage) -> None:
    """A shipment booked through the door tells its partner: ``label.ready`` when booked,
    ``shipment.status_changed`` on every tracking step (in order per shipment)."""
    owner = message.header("owner")
    if not owner:
        return
    if isinstance(payload, logistics_pb2.ShipmentBooked):
        await webhook_service.emit(
            session,
            partner_id=owner,
            event_type=webhook_service.LABEL_READY,
            subject=payload.shipment_id,
            data={
                "shipment_id": payload.shipment_id,
                "order_id": payload.order_id or None,
                "carrier": payload.carrier,
                "tracking_number": payload.tracking_number,
                "label_url": payload.label_ref,
            },
        )
    elif isinstance(payload, logistics_pb2.ShipmentEvent):
        await webhook_service.emit(
            session,
            partner_id=owner,
            event_type=webhook_service.SHIPMENT_STATUS_CHANGED,
            subject=payload.shipment_id,
            data={
                **_detail(payload),
                "shipment_id": payload.shipment_id,
                "order_id": payload.order_id or None,
                "status": message.header("ehub_status")
                or logistics_pb2.ShipmentStatus.Name(payload.status)
                .removeprefix("SHIPMENT_STATUS_")
                .lower(),
                "shipment_status": message.header("shipment_status"),
                "retracted": message.header("retracted") == "true",
            },
        )


def decision_dict(cd: customs_pb2.ClearanceDecided) -> dict[str, Any]:
    return {
        "declaration_id": cd.declaration_id,
        "decision": customs_pb2.ClearanceDecision.Name(cd.decision)
        .removeprefix("CLEARANCE_DECISION_")
        .lower(),
        "reason_code": cd.reason_code,
        "reason": cd.reason,
        "decided_by": cd.decided_by,
        "country": cd.country,
    }


def _decisions(placed: orders_pb2.OrderPlaced) -> dict[str, Any]:
    """The buyer hub's import pre-clearance, carried in the order."""
    if not placed.HasField("import_decision"):
        return {}
    return {"import": decision_dict(placed.import_decision)}


def _detail(payload: ProtoMessage) -> dict[str, Any]:
    d = MessageToDict(payload, preserving_proto_field_name=True)
    d.pop("order_id", None)
    d.pop("lines", None)
    return d


def is_terminal(order: Order) -> bool:
    return State(order.state) in TERMINAL

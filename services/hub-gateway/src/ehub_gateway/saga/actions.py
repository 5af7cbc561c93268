"""What the saga's actions do: commands to this hub's services (through the outbox) and
events to the peer hub (through the federation), both in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import commands
from ehub_core.proto.ehub.v1 import common_pb2, customs_pb2, orders_pb2
from ehub_core.signing import HubKey
from ehub_core.telemetry import current_traceparent, resumed_trace
from ehub_gateway.federation.outbound import submit
from ehub_gateway.orders.models import Order, SagaCommand
from ehub_gateway.saga.machine import Action, Role

# A parcel's box when the catalog knows only weights (cm); the carrier re-weighs anyway.
DEFAULT_BOX = {"length": "30", "width": "20", "height": "15"}

DECISIONS: dict[str, customs_pb2.ClearanceDecision.ValueType] = {
    "cleared": customs_pb2.CLEARANCE_DECISION_CLEARED,
    "held": customs_pb2.CLEARANCE_DECISION_HELD,
    "inspect": customs_pb2.CLEARANCE_DECISION_INSPECT,
    "rejected": customs_pb2.CLEARANCE_DECISION_REJECTED,
}

# action -> (service stream, command, saga step)
COMMANDS: dict[Action, tuple[str, str, str]] = {
    Action.FILE_IMPORT: (commands.CUSTOMS_COMMANDS, "FileImportDeclaration", "import"),
    Action.FILE_EXPORT: (commands.CUSTOMS_COMMANDS, "FileExportDeclaration", "export"),
    Action.CONFIRM_ALLOWANCE: (commands.CUSTOMS_COMMANDS, "ConfirmAllowance", "confirm_allowance"),
    Action.RELEASE_ALLOWANCE: (commands.CUSTOMS_COMMANDS, "ReleaseAllowance", "release_allowance"),
    Action.RESERVE_STOCK: (commands.CATALOG_COMMANDS, "ReserveStock", "reserve"),
    Action.RELEASE_STOCK: (commands.CATALOG_COMMANDS, "ReleaseStock", "release"),
    Action.BOOK_SHIPMENT: (commands.LOGISTICS_COMMANDS, "BookShipment", "ship"),
    Action.CANCEL_SHIPMENT: (commands.LOGISTICS_COMMANDS, "CancelShipment", "cancel_shipment"),
    Action.BOOK_RETURN: (commands.LOGISTICS_COMMANDS, "BookShipment", "return"),
    Action.FILE_REFUND_CLAIM: (commands.CUSTOMS_COMMANDS, "FileRefundClaim", "refund"),
    Action.RESTOCK: (commands.CATALOG_COMMANDS, "RestockReturn", "restock"),
}


def _declared_lines(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "line_id": line["line_id"],
            "hs_code": line["hs_code"],
            "description": line["title"],
            "quantity": line["quantity"],
            "unit_value": line["unit_price"],
            "origin_country": line["origin_country"],
        }
        for line in order.lines
    ]


def _address(a: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "company", "street", "city", "postal_code", "state", "country", "phone")
    return {k: a[k] for k in (*keys, "email") if a.get(k) not in (None, "", [])}


def command_body(order: Order, action: Action) -> dict[str, Any]:
    if action is Action.FILE_IMPORT:
        allowance = order.money.get("allowance")
        return {
            "country": order.buyer_hub,
            "origin": order.seller_hub,
            "buyer_ref": order.buyer_ref,
            "partner_id": order.partner_id,
            "currency": order.seller_currency,
            "lines": _declared_lines(order),
            "allowance": allowance,
            # screened against the denied-party lists (docs/customs.md)
            "consignee": _address(order.ship_to) or None,
        }
    if action is Action.FILE_EXPORT:
        ship_from = (order.seller or {}).get("ship_from") or {}
        return {
            "country": order.seller_hub,
            "destination": order.buyer_hub,
            "currency": order.seller_currency,
            "lines": _declared_lines(order),
            "shipper": _address(ship_from) if ship_from.get("name") else None,
            "consignee": _address(order.ship_to) or None,
        }
    if action is Action.RESERVE_STOCK:
        return {
            "seller_id": order.seller_id,
            "lines": [
                {"line_id": x["line_id"], "product_id": x["product_id"], "quantity": x["quantity"]}
                for x in order.lines
            ],
        }
    if action is Action.FILE_REFUND_CLAIM:
        m = order.money
        taxes = sum(Decimal(str(m.get(k) or 0)) for k in ("duty", "excise", "vat"))
        return {
            "country": order.buyer_hub,
            "origin": order.seller_hub,
            "buyer_ref": order.buyer_ref,
            "currency": order.currency,
            "amount": str(taxes),
            "lines": _declared_lines(order),
        }
    if action is Action.RESTOCK:
        return {
            "lines": [
                {"product_id": x["product_id"], "quantity": x["quantity"]} for x in order.lines
            ]
        }
    if action in (Action.BOOK_SHIPMENT, Action.BOOK_RETURN):
        weight = sum(Decimal(x["weight_kg"]) * x["quantity"] for x in order.lines)
        seller = order.seller or {}
        outbound = action is Action.BOOK_SHIPMENT
        rate = order.shipping if outbound else order.shipping["return"]
        return {
            "carrier": rate["carrier"],
            "service": rate["service"],
            "shipper": _address((seller.get("ship_from") or {}) if outbound else order.ship_to),
            "recipient": _address(order.ship_to if outbound else (seller.get("return_to") or {})),
            "parcels": [{"weight": str(max(weight, Decimal("0.1"))), **DEFAULT_BOX}],
            "customs": {
                "items": [
                    {
                        "description": x["title"][:200],
                        "hs_code": x["hs_code"],
                        "quantity": x["quantity"],
                        "unit_value": x["unit_price"],
                        "origin_country": x["origin_country"],
                        "weight_kg": x["weight_kg"],
                    }
                    for x in order.lines
                ],
                "currency": order.seller_currency,
                "incoterm": "DDP" if outbound else "DAP",
                "contents_type": "merchandise" if outbound else "return_of_goods",
                "invoice_number": order.id,
            },
            "reference": (order.partner_reference or order.id)
            if outbound
            else f"return of {order.id}",
        }
    if action is Action.CANCEL_SHIPMENT:
        return {"target_step": "ship"}
    return {}


async def send(session: AsyncSession, order: Order, action: Action, *, hub_id: str) -> None:
    """Queue ``action``'s command; a step sent before is sent again as a new attempt."""
    stream, command, step = COMMANDS[action]
    body = command_body(order, action)
    now = datetime.now(UTC)
    row = (
        await session.execute(
            select(SagaCommand).where(SagaCommand.order_id == order.id, SagaCommand.step == step)
        )
    ).scalar_one_or_none()
    if row is None:
        row = SagaCommand(
            order_id=order.id,
            step=step,
            stream=stream,
            command=command,
            body=body,
            attempt=0,
            sent_at=now,
            traceparent=current_traceparent(),
        )
        session.add(row)
    else:
        row.attempt += 1
        row.body, row.sent_at, row.done_at = body, now, None
    await commands.send_command(
        session,
        hub_id=hub_id,
        stream=stream,
        command=command,
        order_id=order.id,
        step=step,
        body=body,
        attempt=row.attempt,
    )


async def resend(session: AsyncSession, row: SagaCommand, *, hub_id: str) -> None:
    """Send an unanswered command again (a new attempt; the service answers the same)."""
    row.attempt += 1
    row.sent_at = datetime.now(UTC)
    with resumed_trace(row.traceparent, "saga resend", {"ehub.order_id": row.order_id}):
        await _resend(session, row, hub_id)


async def _resend(session: AsyncSession, row: SagaCommand, hub_id: str) -> None:
    await commands.send_command(
        session,
        hub_id=hub_id,
        stream=row.stream,
        command=row.command,
        order_id=row.order_id,
        step=row.step,
        body=row.body,
        attempt=row.attempt,
    )


def _money(amount: Any, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount=str(amount), currency=currency)


def address_pb(a: dict[str, Any]) -> common_pb2.Address:
    return common_pb2.Address(
        name=a.get("name") or "",
        lines=a.get("street") or [],
        city=a.get("city") or "",
        region=a.get("state") or "",
        postal_code=a.get("postal_code") or "",
        country=a.get("country") or "",
        phone=a.get("phone") or "",
        email=a.get("email") or "",
    )


def address_dict(a: common_pb2.Address) -> dict[str, Any]:
    return {
        "name": a.name,
        "street": list(a.lines),
        "city": a.city,
        "state": a.region or None,
        "postal_code": a.postal_code or None,
        "country": a.country,
        "phone": a.phone or None,
        "email": a.email or None,
    }


def order_placed(order: Order) -> orders_pb2.OrderPlaced:
    m = order.money
    msg = orders_pb2.OrderPlaced(
        order_id=order.id,
        buyer_hub=order.buyer_hub,
        seller_hub=order.seller_hub,
        seller_id=order.seller_id,
        partner_reference=order.partner_reference or "",
        lines=[
            orders_pb2.OrderLine(
                line_id=x["line_id"],
                product_id=x["product_id"],
                title=x["title"],
                hs_code=x["hs_code"],
                origin_country=x["origin_country"],
                quantity=x["quantity"],
                unit_price=_money(x["unit_price"], order.seller_currency),
                unit_weight_grams=int(Decimal(x["weight_kg"]) * 1000),
            )
            for x in order.lines
        ],
        ship_to=address_pb(order.ship_to),
        landed_cost=orders_pb2.LandedCost(
            goods=_money(m["goods"], order.currency),
            shipping=_money(m["shipping"], order.currency),
            duty=_money(m["duty"], order.currency),
            excise=_money(m["excise"], order.currency),
            vat=_money(m["vat"], order.currency),
            fees=_money(m["fees"], order.currency),
            total=_money(m["total"], order.currency),
            incoterm="DDP",
        ),
        service_level=order.shipping.get("service_level", ""),
        buyer_ref=order.buyer_ref,
        carrier=order.shipping["carrier"],
        carrier_service=order.shipping["service"],
        buyer_currency=order.currency,
        import_decision=clearance(order, "import", order.buyer_hub),
    )
    msg.placed_at.FromDatetime(order.created_at.astimezone(UTC))
    return msg


def clearance(order: Order, phase: str, hub_id: str) -> customs_pb2.ClearanceDecided:
    d = order.declarations.get(phase, {})
    cd = customs_pb2.ClearanceDecided(
        declaration_id=d.get("declaration_id", ""),
        order_id=order.id,
        phase=customs_pb2.CLEARANCE_PHASE_IMPORT
        if phase == "import"
        else customs_pb2.CLEARANCE_PHASE_EXPORT,
        country=hub_id,
        decision=DECISIONS.get(d.get("decision", ""), customs_pb2.CLEARANCE_DECISION_UNSPECIFIED),
        reason_code=d.get("reason_code", ""),
        reason=d.get("reason", ""),
        decided_by=d.get("decided_by", "rules"),
    )
    cd.decided_at.FromDatetime(datetime.now(UTC))
    return cd


def peer_event(order: Order, action: Action, hub_id: str) -> ProtoMessage:
    now = datetime.now(UTC)
    if action is Action.SEND_PLACED:
        return order_placed(order)
    if action is Action.SEND_EXPORT_DECISION:
        return clearance(order, "export", hub_id)
    if action in (Action.SEND_CANCEL, Action.SEND_CANCELLED):
        oc = orders_pb2.OrderCancelled(
            order_id=order.id,
            cancelled_by_hub=hub_id,
            initiator=orders_pb2.CANCELLATION_INITIATOR_BUYER,
            reason_code="buyer_cancelled",
            reason=order.reason or "",
        )
        oc.cancelled_at.FromDatetime(now)
        return oc
    if action is Action.SEND_ACCEPTED:
        ship_from = (order.seller or {}).get("ship_from") or {}
        oa = orders_pb2.OrderAccepted(
            order_id=order.id, seller_order_ref=order.id, return_to=address_pb(ship_from)
        )
        oa.accepted_at.FromDatetime(now)
        return oa
    if action is Action.SEND_REJECTED:
        code, _, text = (order.reason or "rejected: ").partition(": ")
        orj = orders_pb2.OrderRejected(
            order_id=order.id, rejected_by_hub=hub_id, reason_code=code, reason=text
        )
        orj.rejected_at.FromDatetime(now)
        return orj
    if action is Action.SEND_RETURN_REQUESTED:
        ret = (order.shipment or {}).get("return") or {}
        rr = orders_pb2.ReturnRequested(
            order_id=order.id,
            return_id=ret.get("shipment_id") or "",
            lines=[
                orders_pb2.ReturnLine(
                    line_id=x["line_id"], product_id=x["product_id"], quantity=x["quantity"]
                )
                for x in order.lines
            ],
            reason=order.reason or "",
            carrier=ret.get("carrier") or "",
            tracking_number=ret.get("tracking_number") or "",
        )
        rr.requested_at.FromDatetime(now)
        return rr
    if action is Action.SEND_RETURN_RECEIVED:
        rc = orders_pb2.ReturnReceived(order_id=order.id, return_id=order.id)
        rc.received_at.FromDatetime(now)
        return rc
    if action is Action.SEND_CANCEL_REFUSED:
        ocr = orders_pb2.OrderCancelRefused(
            order_id=order.id,
            reason_code="picked_up",
            reason="the carrier has the parcel; ask for a return after delivery",
        )
        ocr.refused_at.FromDatetime(now)
        return ocr
    raise ValueError(f"{action} is not an event to the peer")


def peer_of(order: Order) -> str:
    return order.seller_hub if order.role == Role.BUYER else order.buyer_hub


async def tell_peer(
    session: AsyncSession, order: Order, action: Action, *, hub_id: str, key: HubKey
) -> None:
    await submit(
        session,
        key=key,
        target_hub=peer_of(order),
        payload=peer_event(order, action, hub_id),
        subject=order.id,
    )


async def forward(
    session: AsyncSession, order: Order, payload: ProtoMessage, *, key: HubKey
) -> None:
    """Relay a fact about the order (e.g. a carrier's tracking step) to the peer hub."""
    await submit(session, key=key, target_hub=peer_of(order), payload=payload, subject=order.id)

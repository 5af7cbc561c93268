"""Reading what reaches the saga into inputs for :meth:`SagaBase.apply`: this hub's
services' replies, peers' events (and a peer's new order), this hub's carrier tracking
and its customs officers' decisions. Each reader records what the input tells of the
order (declarations, shipment, reason) before the transition."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.json_format import ParseDict
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import commands
from ehub_core.bus import Message
from ehub_core.envelope import PAYLOAD_TYPES, read_unverified
from ehub_core.proto.ehub.v1 import customs_pb2, logistics_pb2, orders_pb2
from ehub_core.telemetry import current_traceparent
from ehub_gateway.orders.models import Order, OrderStep, SagaCommand
from ehub_gateway.saga import actions
from ehub_gateway.saga.machine import Action, Role, State
from ehub_gateway.saga.present import _decisions, _detail, decision_dict, shipment_webhooks
from ehub_gateway.saga.transition import SagaBase

log = logging.getLogger("ehub.gateway.saga")

# Tracking statuses that are not the parcel moving towards the buyer.
NOT_MOVING = {
    logistics_pb2.SHIPMENT_STATUS_UNSPECIFIED,
    logistics_pb2.SHIPMENT_STATUS_PENDING,
    logistics_pb2.SHIPMENT_STATUS_CANCELLED,
    logistics_pb2.SHIPMENT_STATUS_DELIVERED,  # DeliveryConfirmed carries delivery
}


class SagaInputs(SagaBase):
    # -- replies of this hub's services ------------------------------------------------

    async def _reply(self, session: AsyncSession, message: Message) -> None:
        body = commands.decode(message)
        reply = message.header("event_type") or ""
        order = await self._load(session, str(body["order_id"]))
        if order is None:
            log.warning("reply %s for unknown order %s", reply, body["order_id"])
            return
        row = (
            await session.execute(
                select(SagaCommand).where(
                    SagaCommand.order_id == order.id, SagaCommand.step == str(body["step"])
                )
            )
        ).scalar_one_or_none()
        if row is None or row.done_at is not None:
            return  # an answer to a re-sent command we already have
        row.done_at = datetime.now(UTC)
        event, detail = self._reply_input(order, reply, body)
        await self.apply(session, order, event, what=reply, hub=self.hub, detail=detail)

    def _reply_input(
        self, order: Order, reply: str, body: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        detail = {k: v for k, v in body.items() if k not in ("order_id", "command_id", "lines")}
        if reply in ("ImportDecided", "ExportDecided"):
            phase = "import" if reply == "ImportDecided" else "export"
            decision = str(body["decision"])
            order.declarations = {
                **order.declarations,
                phase: {
                    "declaration_id": body.get("declaration_id", ""),
                    "decision": decision,
                    "reason_code": body.get("reason_code", ""),
                    "reason": body.get("reason", ""),
                    "decided_by": body.get("decided_by", "rules"),
                    "country": self.hub,
                },
            }
            if decision != "cleared":
                order.reason = f"{phase}_{decision}: {body.get('reason', '')}"
            return f"{reply}:{decision}", detail
        if reply == "StockReserved":
            order.partner_id = body.get("owner") or order.partner_id  # the seller's partner
            order.seller = {
                "ship_from": body.get("ship_from"),
                "auto_accept": bool(body.get("auto_accept")),
            }
            order.accept_by = datetime.now(UTC) + timedelta(seconds=self.accept_window)
            return f"StockReserved:{'auto' if body.get('auto_accept') else 'manual'}", detail
        if reply in ("StockRefused", "ShipmentRefused", "CommandFailed"):
            order.reason = f"{body.get('reason_code', 'failed')}: {body.get('reason', '')}"
        if reply == "ShipmentReady":
            booked = {
                k: body.get(k)
                for k in (
                    "shipment_id",
                    "carrier",
                    "service",
                    "tracking_number",
                    "label_url",
                    "estimated_delivery",
                )
            }
            if body.get("step") == "return":
                order.shipment = {**(order.shipment or {}), "return": booked}
            else:
                order.shipment = booked
        return reply, detail

    # -- peers' events ----------------------------------------------------------------

    async def _peer_event(self, session: AsyncSession, message: Message, event_id: str) -> None:
        env = read_unverified(message.value)  # verified at ingest, before republication
        cls = PAYLOAD_TYPES.get(env.type)
        if cls is None or env.target_hub != self.hub:
            return
        payload = cls.FromString(env.payload)
        source = env.source_hub
        if isinstance(payload, orders_pb2.OrderPlaced):
            await self._order_arrived(session, payload, source, event_id)
            return
        order_id = getattr(payload, "order_id", "") or env.subject
        order = await self._load(session, order_id)
        if order is None or actions.peer_of(order) != source:
            # Only the order's other hub may speak of it; anything else is dropped.
            log.warning("%s from %s about order %s ignored", env.type, source, order_id)
            return
        event = env.type
        shipment_news = isinstance(
            payload, logistics_pb2.ShipmentEvent | logistics_pb2.DeliveryConfirmed
        )
        # The seller's hub ships the order itself, so a peer's shipment news at the seller's
        # hub is about the return. Streams are ordered per topic, not across topics: that
        # news may overtake the ReturnRequested announcing it, and the order follows it.
        returning = order.role == Role.SELLER and shipment_news
        if isinstance(payload, logistics_pb2.ShipmentEvent):
            moving = payload.status not in NOT_MOVING
            event = ("return_moving" if returning else "moving") if moving else "tracked"
            if payload.status == logistics_pb2.SHIPMENT_STATUS_RETURNED:
                event = "return_failed" if returning else "carrier_returned"
        if isinstance(payload, logistics_pb2.DeliveryConfirmed) and returning:
            event = "return_delivered"
        if returning:
            ret = {"shipment_id": getattr(payload, "shipment_id", "")}
            if isinstance(payload, logistics_pb2.ShipmentEvent):
                ret |= {"carrier": payload.carrier, "tracking_number": payload.tracking_number}
            if event in ("return_failed", "return_delivered"):
                ret["ended"] = "brought_back" if event == "return_failed" else "delivered"
            order.shipment = {
                **(order.shipment or {}),
                "return": {**(order.shipment or {}).get("return", {}), **ret},
            }
        if isinstance(payload, orders_pb2.OrderAccepted) and payload.HasField("return_to"):
            order.seller = {
                **(order.seller or {}),
                "return_to": actions.address_dict(payload.return_to),
            }
        if isinstance(payload, orders_pb2.ReturnRequested):
            known = (order.shipment or {}).get("return", {})
            if known.get("shipment_id") == payload.return_id and known.get("ended"):
                # The return's tracking overtook its announcement and it has ended already.
                event = "ReturnRequested:after_return_ended"
            order.shipment = {
                **(order.shipment or {}),
                "return": {
                    **known,
                    "shipment_id": payload.return_id,
                    "carrier": payload.carrier,
                    "tracking_number": payload.tracking_number,
                },
            }
        if isinstance(payload, logistics_pb2.ShipmentBooked) and order.role == Role.SELLER:
            # The buyer's hub booked the return: the outbound shipment stays as it is.
            booked = {
                "shipment_id": payload.shipment_id,
                "carrier": payload.carrier,
                "tracking_number": payload.tracking_number,
            }
            order.shipment = {
                **(order.shipment or {}),
                "return": {**(order.shipment or {}).get("return", {}), **booked},
            }
        elif isinstance(payload, logistics_pb2.ShipmentBooked):
            order.shipment = {
                "shipment_id": payload.shipment_id,
                "carrier": payload.carrier,
                "tracking_number": payload.tracking_number,
                "label_at_seller_hub": payload.label_ref,
            }
        if isinstance(payload, orders_pb2.OrderRejected):
            order.reason = f"{payload.reason_code}: {payload.reason}"
        if isinstance(payload, orders_pb2.OrderCancelRefused):
            order.reason = None  # the buyer's cancellation did not happen
        if isinstance(payload, customs_pb2.ClearanceDecided):
            phase = "import" if payload.phase == customs_pb2.CLEARANCE_PHASE_IMPORT else "export"
            order.declarations = {**order.declarations, phase: decision_dict(payload)}
        await self.apply(
            session,
            order,
            event,
            what=f"Return{env.type}" if returning and shipment_news else env.type,
            hub=source,
            detail=_detail(payload),
            event_id=env.event_id,
        )

    async def _order_arrived(
        self, session: AsyncSession, placed: orders_pb2.OrderPlaced, source: str, event_id: str
    ) -> None:
        if placed.buyer_hub != source or placed.seller_hub != self.hub:
            log.warning("OrderPlaced %s from %s names other hubs; ignored", placed.order_id, source)
            return
        if not (placed.order_id and placed.seller_id and placed.lines and placed.carrier):
            log.warning("OrderPlaced %r from %s is incomplete; ignored", placed.order_id, source)
            return
        if await session.get(Order, placed.order_id) is not None:
            return
        now = datetime.now(UTC)
        lc = placed.landed_cost
        seller_ccy = placed.lines[0].unit_price.currency if placed.lines else ""
        order = Order(
            id=placed.order_id,
            role=Role.SELLER,
            state=State.RESERVING,
            buyer_hub=placed.buyer_hub,
            seller_hub=placed.seller_hub,
            seller_id=placed.seller_id,
            partner_reference=placed.partner_reference or None,
            partner_id=None,  # the seller's partner, known once the stock is reserved
            buyer_ref=placed.buyer_ref,
            identity_ref=None,
            ship_to=actions.address_dict(placed.ship_to),
            lines=[
                {
                    "line_id": x.line_id,
                    "product_id": x.product_id,
                    "title": x.title,
                    "hs_code": x.hs_code,
                    "origin_country": x.origin_country,
                    "quantity": x.quantity,
                    "unit_price": x.unit_price.amount,
                    "weight_kg": str(x.unit_weight_grams / 1000),
                }
                for x in placed.lines
            ],
            currency=placed.buyer_currency or lc.total.currency,
            seller_currency=seller_ccy,
            money={
                k: getattr(lc, k).amount
                for k in ("goods", "shipping", "duty", "excise", "vat", "fees", "total")
            },
            shipping={
                "carrier": placed.carrier,
                "service": placed.carrier_service,
                "service_level": placed.service_level,
            },
            shipment=None,
            declarations=_decisions(placed),
            seller=None,
            reason=None,
            accept_by=None,
            traceparent=current_traceparent(),
            created_at=now,
            updated_at=now,
        )
        session.add(order)
        session.add(
            OrderStep(
                order_id=order.id,
                at=now,
                hub=source,
                what="OrderPlaced",
                state=order.state,
                detail={"lines": len(order.lines), "total": order.money["total"]},
                event_id=event_id,
            )
        )
        await self.act(session, order, Action.RESERVE_STOCK)

    # -- this hub's carrier tracking ------------------------------------------------------

    async def _local_tracking(self, session: AsyncSession, message: Message, event_id: str) -> None:
        kind = message.header("event_type") or ""
        cls = {
            "ShipmentBooked": logistics_pb2.ShipmentBooked,
            "ShipmentEvent": logistics_pb2.ShipmentEvent,
            "DeliveryConfirmed": logistics_pb2.DeliveryConfirmed,
        }.get(kind)
        if cls is None:
            return
        payload: ProtoMessage = ParseDict(
            json.loads(message.value), cls(), ignore_unknown_fields=True
        )
        await shipment_webhooks(session, message, payload)
        order_id = getattr(payload, "order_id", "")
        if not order_id:
            return
        order = await self._load(session, order_id)
        if order is None:
            return  # not an order of this hub (e.g. a shipment booked directly)
        # The seller's hub ships the order; the buyer's hub ships its return.
        returning = message.header("saga_step") == "return"
        if (order.role == Role.SELLER) == returning:
            return
        prefix = "return_" if returning else ""
        if isinstance(payload, logistics_pb2.ShipmentEvent):
            event = f"{prefix}moving" if payload.status not in NOT_MOVING else "tracked"
            if payload.status == logistics_pb2.SHIPMENT_STATUS_RETURNED:
                event = "return_failed" if returning else "carrier_returned"
        elif isinstance(payload, logistics_pb2.DeliveryConfirmed):
            event = f"{prefix}delivered" if returning else "DeliveryConfirmed"
        else:
            event = "booked"
        await self.apply(
            session,
            order,
            event,
            what=f"Return{kind}" if returning else kind,
            hub=self.hub,
            detail=_detail(payload),
            event_id=event_id,
        )
        await actions.forward(session, order, payload, key=self.key())

    # -- this hub's customs officers ---------------------------------------------------

    async def _officer_decision(
        self, session: AsyncSession, message: Message, event_id: str
    ) -> None:
        """An officer decided a held declaration: the order moves on (or not)."""
        if (message.header("event_type") or "") != "ClearanceDecided":
            return
        body = json.loads(message.value)
        order = await self._load(session, str(body["order_id"]))
        phase = str(body["phase"])
        mine = "import" if order is not None and order.role == Role.BUYER else "export"
        if order is None or phase != mine:
            return  # not an order of this hub, or not this side's declaration
        decision = str(body["decision"])
        order.declarations = {
            **order.declarations,
            phase: {
                "declaration_id": body.get("declaration_id", ""),
                "decision": decision,
                "reason_code": body.get("reason_code", ""),
                "reason": body.get("reason", ""),
                "decided_by": body.get("decided_by", "officer"),
                "country": self.hub,
            },
        }
        order.reason = (
            None if decision == "cleared" else f"{phase}_{decision}: {body.get('reason', '')}"
        )
        detail = {
            k: body.get(k)
            for k in ("declaration_id", "officer_decision", "reason_code", "reason", "decided_by")
        }
        await self.apply(
            session,
            order,
            f"OfficerDecided:{decision}",
            what="ClearanceDecided",
            hub=self.hub,
            detail=detail,
            event_id=event_id,
        )

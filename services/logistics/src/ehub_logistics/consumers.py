"""Logistics' side of the order saga (docs/orders.md, "Hub-local commands and replies").

The gateway's saga sends ``BookShipment`` and ``CancelShipment`` on
``ehub.<hub>.logistics-commands``; :func:`ehub_core.commands.command_consumer` runs each
handler here in one transaction with its reply on ``ehub.<hub>.saga-replies``. The
shipment's tracking steps keep flowing on ``ehub.<hub>.tracking`` (with headers
``order_id`` and ``saga_step``).

- ``BookShipment`` is idempotent by ``(order_id, step)``: an order may hold one live
  shipment per step (``ship`` outbound, ``return`` later). A repeat answers the same
  ``ShipmentReady`` without booking again. The step is recorded on the shipment
  (``saga_step``/``saga_slot``, migration 0003) under a unique index, so two bookings of
  one step cannot both commit; on Postgres they also queue on an advisory lock first so
  the loser never books with the carrier (SQLite serialises writers anyway). Once the
  shipment is cancelled the step is free again.
- The body is validated with :class:`ShipmentCreate`, as ``POST /v1/shipments``; a bad
  body or a refusal (unknown carrier, service not offered on the lane, missing customs,
  carrier refused) is answered ``ShipmentRefused`` with a stable ``reason_code`` and a
  ``reason`` naming the field. Fields the model does not know are ignored, so the saga
  may send more than this service reads.
- ``CancelShipment`` (``target_step``, default ``ship``) voids the step's shipment
  through :func:`service.cancel_shipment` (before pick-up only):
  ``ShipmentCancelled`` — also when it was already cancelled, with ``shipment_id`` null
  when the step was never booked — or ``ShipmentCancelRefused`` once the carrier has it.
- Handlers raise only on unexpected errors (database, carrier outage), which the
  consumer retries and finally answers with ``CommandFailed``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import commands, streams
from ehub_core.app import ServiceContext
from ehub_core.commands import CommandHandler, Reply
from ehub_core.errors import ConflictError, DomainError, UnprocessableError
from ehub_logistics.carriers.registry import CarrierRegistry
from ehub_logistics.shipments import service
from ehub_logistics.shipments.models import Shipment
from ehub_logistics.shipments.presenters import label_url
from ehub_logistics.shipments.repository import ShipmentRepository
from ehub_logistics.shipments.schemas import ShipmentCreate
from ehub_logistics.shipments.service import CarrierFailure, Publishing
from ehub_logistics.simulation import ensure_simulation
from ehub_logistics.tracking.statuses import TrackingStatus

log = logging.getLogger("ehub.logistics.consumers")

BOOK_SHIPMENT = "BookShipment"
CANCEL_SHIPMENT = "CancelShipment"

SHIPMENT_READY = "ShipmentReady"
SHIPMENT_REFUSED = "ShipmentRefused"
SHIPMENT_CANCELLED = "ShipmentCancelled"
SHIPMENT_CANCEL_REFUSED = "ShipmentCancelRefused"

# ShipmentRefused reason codes
INVALID_REQUEST = "invalid_request"  # the body does not validate (reason names the field)
UNKNOWN_CARRIER = "unknown_carrier"  # no such carrier on this hub
SERVICE_UNAVAILABLE = "service_unavailable"  # the carrier cannot carry it (lane, weight, ...)
RATE_CHANGED = "rate_changed"  # a pinned rate_id no longer matches the price
CARRIER_REFUSED = "carrier_refused"  # the carrier refused the booking
REFUSED = "refused"  # any other business refusal
# ShipmentCancelRefused reason code
PICKED_UP = "picked_up"

DEFAULT_TARGET_STEP = "ship"
MAX_STEP_LENGTH = 64  # logistics_shipments.saga_step
MAX_REASON_ERRORS = 10

_BOOKING_FIELDS = frozenset(ShipmentCreate.model_fields) - {"order_id"}
_UNPROCESSABLE_CODES = {
    "unknown_carrier": UNKNOWN_CARRIER,
    "service_unavailable": SERVICE_UNAVAILABLE,
}


def shipment_ready(shipment: Shipment) -> dict[str, Any]:
    """The ``ShipmentReady`` body of a booked shipment (the same on every repeat)."""
    return {
        "shipment_id": shipment.id,
        "carrier": shipment.carrier,
        "service": shipment.service,
        "tracking_number": shipment.tracking_number,
        "amount": str(shipment.total),
        "currency": shipment.currency,
        "label_url": label_url(shipment.id),
        "estimated_delivery": shipment.estimated_delivery.isoformat(),
    }


def _refused(reason_code: str, reason: str) -> Reply:
    return SHIPMENT_REFUSED, {"reason_code": reason_code, "reason": reason}


def _validation_reason(exc: ValidationError) -> str:
    """``parcels.0.weight: Input should be greater than 0; customs.currency: ...``"""
    parts = []
    for error in exc.errors()[:MAX_REASON_ERRORS]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - MAX_REASON_ERRORS
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _domain_refusal(exc: DomainError) -> Reply:
    """A booking refused by the service or the carrier, with a stable reason code."""
    errors = exc.extra.get("errors") or []
    first: Mapping[str, Any] = errors[0] if errors else {}
    field = first.get("field")
    reason = f"{field}: {exc.detail}" if field else exc.detail
    if isinstance(exc, CarrierFailure):
        return _refused(CARRIER_REFUSED, reason)
    if isinstance(exc, ConflictError) and "rate_id" in exc.extra:
        return _refused(RATE_CHANGED, reason)
    if isinstance(exc, UnprocessableError):
        return _refused(_UNPROCESSABLE_CODES.get(first.get("type", ""), INVALID_REQUEST), reason)
    return _refused(REFUSED, reason)


async def _one_at_a_time(session: AsyncSession, order_id: str, step: str) -> None:
    """Queue commands for one order's step behind each other until commit.

    On Postgres a transaction-scoped advisory lock, so a concurrent repeat of a
    booking waits and then finds the shipment instead of booking a second one with the
    carrier (the unique index would refuse it only after). SQLite needs nothing: its
    writers are serialised (``BEGIN IMMEDIATE`` and the process's write slot).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(
        f"ehub-logistics-saga:{order_id}:{step}".encode(), digest_size=8
    ).digest()
    key = int.from_bytes(digest, "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


@dataclass(frozen=True)
class LogisticsCommands:
    """The command handlers, bound to this hub's carriers and shipments topic."""

    registry: CarrierRegistry
    publishing: Publishing
    on_booked: Callable[[], None] = lambda: None

    def handlers(self) -> dict[str, CommandHandler]:
        return {BOOK_SHIPMENT: self.book_shipment, CANCEL_SHIPMENT: self.cancel_shipment}

    async def book_shipment(self, session: AsyncSession, body: dict[str, Any]) -> Reply:
        order_id = str(body["order_id"])
        step = str(body.get("step", BOOK_SHIPMENT))
        await _one_at_a_time(session, order_id, step)
        repo = ShipmentRepository(session)
        held = await repo.holding_saga_step(order_id, step)
        if held is not None:
            if held.status != TrackingStatus.CANCELLED.value:
                return SHIPMENT_READY, shipment_ready(held)
            # Cancelled outside the saga (the API, or the carrier): the step is free.
            held.saga_slot = None
            await session.flush()
        if len(step) > MAX_STEP_LENGTH:
            return _refused(INVALID_REQUEST, f"step: at most {MAX_STEP_LENGTH} characters")
        ignored = sorted(set(body) - _BOOKING_FIELDS - {"order_id", "step"})
        if ignored:
            log.info("BookShipment for %s/%s: ignoring fields %s", order_id, step, ignored)
        try:
            data = ShipmentCreate.model_validate(
                {**{k: v for k, v in body.items() if k in _BOOKING_FIELDS}, "order_id": order_id}
            )
        except ValidationError as exc:
            return _refused(INVALID_REQUEST, _validation_reason(exc))
        try:
            shipment, _records = await service.book_shipment(
                session,
                registry=self.registry,
                publishing=self.publishing,
                data=data,
                saga_step=step,
            )
        except DomainError as exc:
            return _domain_refusal(exc)
        try:
            await session.flush()
        except Exception:
            await self._void(shipment)
            raise
        self.on_booked()
        return SHIPMENT_READY, shipment_ready(shipment)

    async def _void(self, shipment: Shipment) -> None:
        """Best effort: cancel a carrier booking whose shipment could not be recorded."""
        try:
            await self.registry.get(shipment.carrier).cancel(shipment.tracking_number)
        except Exception:
            log.exception(
                "could not void %s %s after a failed booking of order %s",
                shipment.carrier,
                shipment.tracking_number,
                shipment.order_id,
            )

    async def cancel_shipment(self, session: AsyncSession, body: dict[str, Any]) -> Reply:
        order_id = str(body["order_id"])
        target = str(body.get("target_step") or DEFAULT_TARGET_STEP)
        await _one_at_a_time(session, order_id, target)
        repo = ShipmentRepository(session)
        shipment = await repo.holding_saga_step(order_id, target)
        if shipment is None:
            # Never booked, or already cancelled (which freed the step).
            last = await repo.last_for_saga_step(order_id, target)
            return SHIPMENT_CANCELLED, {"shipment_id": last.id if last else None}
        if shipment.status == TrackingStatus.CANCELLED.value:
            shipment.saga_slot = None  # cancelled outside the saga
            return SHIPMENT_CANCELLED, {"shipment_id": shipment.id}
        try:
            await service.cancel_shipment(
                session, registry=self.registry, publishing=self.publishing, shipment_id=shipment.id
            )
        except ConflictError as exc:
            # Past pick-up (the hub saw the scan, or the carrier says so).
            return SHIPMENT_CANCEL_REFUSED, {
                "shipment_id": shipment.id,
                "reason_code": PICKED_UP,
                "reason": exc.detail,
            }
        return SHIPMENT_CANCELLED, {"shipment_id": shipment.id}


async def start_consumers(app: FastAPI, ctx: ServiceContext) -> None:
    """Apply the saga's logistics commands (needs the carriers loaded first)."""
    hub = ctx.settings.hub_id
    handlers = LogisticsCommands(
        registry=app.state.carriers,
        publishing=Publishing(topic=streams.hub_topic(hub, streams.TRACKING)),
        on_booked=lambda: ensure_simulation(app),
    )
    app.state.logistics_commands = handlers
    ctx.subscribe(
        [streams.hub_topic(hub, streams.LOGISTICS_COMMANDS)],
        f"ehub-{hub.lower()}-logistics-commands",
        commands.command_consumer(
            ctx.db,
            hub,
            handlers.handlers(),
            notify=ctx.relay.notify if ctx.relay is not None else None,
        ),
    )

"""Shipments: book (idempotent), read, print the label, cancel before pick-up."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.errors import problem_responses
from ehub_core.idempotency import IdempotencyKey, run_once
from ehub_core.partners import GuardedRoute
from ehub_logistics.api.deps import (
    PublishingDep,
    ShipmentsReader,
    ShipmentsWriter,
)
from ehub_logistics.carriers.registry import CarriersDep
from ehub_logistics.shipments import service
from ehub_logistics.shipments.presenters import shipment_read
from ehub_logistics.shipments.schemas import ShipmentCreate, ShipmentRead
from ehub_logistics.simulation import ensure_simulation

router = APIRouter(prefix="/v1/shipments", tags=["shipments"], route_class=GuardedRoute)


@router.post(
    "",
    status_code=201,
    response_model=ShipmentRead,
    summary="Book a shipment with a chosen rate; returns tracking number and PDF label",
    responses=problem_responses(
        {
            409: "The rate_id is stale: re-rate and book with the new one",
            502: "The carrier refused the booking",
        }
    ),
)
async def create_shipment(
    body: ShipmentCreate,
    request: Request,
    session: SessionDep,
    carriers: CarriersDep,
    publishing: PublishingDep,
    caller: ShipmentsWriter,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Books a parcel with the chosen carrier and service; answers with the tracking number and
    the label's URL. Takes an `Idempotency-Key`."""

    async def create() -> tuple[int, Any]:
        shipment, records = await service.book_shipment(
            session, registry=carriers, publishing=publishing, data=body, owner=caller.partner_id
        )
        read = shipment_read(shipment, records, include_label=True)
        return 201, read.model_dump(mode="json")

    outcome = await run_once(
        session,
        scope=caller.idempotency_scope("POST /v1/shipments"),
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        create=create,
    )
    ensure_simulation(request.app)
    headers = {"Location": f"/v1/shipments/{outcome.body['id']}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get("", summary="The shipments of an order, each with its timeline")
async def list_shipments(
    session: ReadSessionDep,
    caller: ShipmentsReader,
    order_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> list[ShipmentRead]:
    """The caller's shipments of an order, each with its timeline."""
    found = await service.shipments_for_order(session, order_id, visible_to=caller.visible_to)
    return [shipment_read(shipment, records) for shipment, records in found]


@router.get("/{shipment_id}", summary="A shipment and its timeline")
async def read_shipment(
    shipment_id: str, session: ReadSessionDep, caller: ShipmentsReader
) -> ShipmentRead:
    """One of the caller's shipments and its timeline of carrier events."""
    shipment, records = await service.get_shipment(
        session, shipment_id, visible_to=caller.visible_to
    )
    return shipment_read(shipment, records)


@router.get(
    "/{shipment_id}/label.pdf",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/pdf": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "%PDF-1.4 (binary)",
                }
            }
        }
    },
    summary="The shipping label, one 4x6 inch page per parcel",
)
async def read_label(
    shipment_id: str, session: ReadSessionDep, caller: ShipmentsReader
) -> Response:
    """The shipment's printable label (PDF, with Code 128 barcode)."""
    tracking_number, pdf = await service.get_label(
        session, shipment_id, visible_to=caller.visible_to
    )
    disposition = f'inline; filename="{tracking_number}.pdf"'
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": disposition},
    )


@router.post(
    "/{shipment_id}/cancel",
    summary="Cancel before the carrier picks it up",
    responses=problem_responses({409: "Too late (picked up), already cancelled, or refused"}),
)
async def cancel_shipment(
    shipment_id: str,
    session: SessionDep,
    carriers: CarriersDep,
    publishing: PublishingDep,
    caller: ShipmentsWriter,
) -> ShipmentRead:
    """Cancels the shipment with its carrier; 409 once the carrier has picked it up."""
    shipment, records = await service.cancel_shipment(
        session,
        registry=carriers,
        publishing=publishing,
        shipment_id=shipment_id,
        visible_to=caller.visible_to,
    )
    return shipment_read(shipment, records)

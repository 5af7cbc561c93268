"""Operator routes (``Authorization: Bearer <EHUB_INTERNAL_TOKEN>``): the hub's own reads
of any shipment (the order saga's included) and rates for the hub itself (e.g. the
gateway's offers to a peer hub, which no partner makes) (docs/partners.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ehub_core.deps import ReadSessionDep
from ehub_core.partners import GuardedRoute, authenticate_operator
from ehub_logistics.api.rates import shop_rates
from ehub_logistics.carriers.registry import CarriersDep
from ehub_logistics.shipments import service
from ehub_logistics.shipments.presenters import shipment_read
from ehub_logistics.shipments.schemas import RateRequestIn, RatesRead, ShipmentRead

router = APIRouter(
    prefix="/operator/v1",
    tags=["operator"],
    route_class=GuardedRoute,
    dependencies=[Depends(authenticate_operator)],
)


@router.post("/rates", summary="Rates for the hub itself (as POST /v1/rates)")
async def create_rates(body: RateRequestIn, carriers: CarriersDep) -> RatesRead:
    """Rates for the hub itself, as `POST /v1/rates`."""
    return await shop_rates(body, carriers)


@router.get("/shipments", summary="Every shipment of an order, whoever booked it")
async def list_shipments(
    session: ReadSessionDep, order_id: Annotated[str, Query(min_length=1, max_length=64)]
) -> list[ShipmentRead]:
    """Every shipment of an order, whoever booked it."""
    found = await service.shipments_for_order(session, order_id)
    return [shipment_read(shipment, records) for shipment, records in found]


@router.get("/shipments/{shipment_id}", summary="Any shipment and its timeline")
async def read_shipment(shipment_id: str, session: ReadSessionDep) -> ShipmentRead:
    """Any shipment and its timeline, whoever booked it."""
    shipment, records = await service.get_shipment(session, shipment_id)
    return shipment_read(shipment, records)

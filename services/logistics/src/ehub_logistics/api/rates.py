"""``POST /v1/rates``: every carrier's options for a shipment, in one call."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from ehub_core.partners import GuardedRoute
from ehub_logistics.api.deps import RatesReader
from ehub_logistics.carriers.registry import CarrierRegistry, CarriersDep
from ehub_logistics.rates import choose_carriers, shop
from ehub_logistics.shipments.presenters import rates_read
from ehub_logistics.shipments.schemas import CarrierRead, RateRequestIn, RatesRead

router = APIRouter(prefix="/v1", tags=["rates"], route_class=GuardedRoute)


@router.post("/rates", summary="Compare every carrier's price and transit time")
async def create_rates(
    body: RateRequestIn, carriers: CarriersDep, _caller: RatesReader
) -> RatesRead:
    """Chargeable weight is max(actual, volumetric) per each carrier's rules; money is
    decimal strings with ISO 4217 codes. Carriers that cannot serve the request are
    explained in ``messages``."""
    return await shop_rates(body, carriers)


async def shop_rates(body: RateRequestIn, carriers: CarrierRegistry) -> RatesRead:
    """The rates answer, for partners and for the operator (``/operator/v1/rates``)."""
    adapters = choose_carriers(carriers, body.wishes.carriers)
    request = body.to_request(datetime.now(UTC).date())
    shopping = await shop(adapters, request, currency=body.declared_value.currency)
    return rates_read(shopping, carriers)


@router.get("/carriers", summary="The carriers this hub offers")
async def list_carriers(carriers: CarriersDep, _caller: RatesReader) -> list[CarrierRead]:
    """The carriers and services this hub can book, with their routes."""
    return [CarrierRead(name=a.name, display_name=a.display_name) for a in carriers]

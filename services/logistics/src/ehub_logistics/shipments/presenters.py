"""ORM rows to API schemas."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from decimal import Decimal

from ehub_logistics.carriers.base import RateQuote
from ehub_logistics.carriers.registry import CarrierRegistry
from ehub_logistics.rates import Shopping
from ehub_logistics.shipments.models import Shipment, TrackingEventRecord
from ehub_logistics.shipments.schemas import (
    Charges,
    RatesRead,
    ShipmentRead,
    TimelineEventRead,
    When,
    Where,
)
from ehub_logistics.shipments.timeline import ordered
from ehub_logistics.tracking.mappings import vocabularies
from ehub_logistics.tracking.statuses import TrackingStatus


def label_url(shipment_id: str) -> str:
    """Where a shipment's PDF label is served (``GET /v1/shipments/{id}/label.pdf``)."""
    return f"/v1/shipments/{shipment_id}/label.pdf"


def _rate(quote: RateQuote, rate_id: str, carrier_name: str) -> dict[str, object]:
    return {
        "rate_id": rate_id,
        "carrier": quote.carrier,
        "carrier_name": carrier_name,
        "service": quote.service,
        "service_name": quote.service_name,
        "service_level": quote.service_level,
        "zone": quote.zone,
        "total": quote.total,
        "currency": quote.currency,
        "charges": {
            "base": quote.base,
            "fuel_surcharge": quote.fuel_surcharge,
            "remote_area_fee": quote.remote_area_fee,
        },
        "transit_days": quote.transit_days,
        "estimated_delivery": quote.estimated_delivery,
        "weights": {
            "actual_kg": quote.actual_weight_kg,
            "volumetric_kg": quote.volumetric_weight_kg,
            "chargeable_kg": quote.chargeable_weight_kg,
        },
        "rate_card": quote.rate_card,
    }


def rates_read(shopping: Shopping, registry: CarrierRegistry) -> RatesRead:
    names = {a.name: a.display_name for a in registry}
    rates = [
        _rate(q, shopping.rate_id(q), names.get(q.carrier, q.carrier)) for q in shopping.by_price
    ]
    by_transit = [shopping.rate_id(q) for q in shopping.by_transit]
    # One validation call for the whole document (pydantic-core), not one per object.
    return RatesRead.model_validate(
        {
            "rates": rates,
            "by_transit": by_transit,
            "cheapest": rates[0]["rate_id"] if rates else None,
            "fastest": by_transit[0] if by_transit else None,
            "messages": shopping.messages,
        }
    )


def event_read(record: TrackingEventRecord) -> TimelineEventRead:
    return TimelineEventRead(
        id=record.id,
        status=record.status,
        what=record.description,
        carrier_code=record.carrier_code,
        when=When(occurred_at=record.occurred_at, received_at=record.received_at),
        where=Where(place=record.place, country=record.country),
        why=record.reason_code,
        source=record.source,
        anomaly=record.anomaly,
        vocabularies=vocabularies(TrackingStatus(record.status)),
    )


def shipment_read(
    shipment: Shipment, records: Sequence[TrackingEventRecord], *, include_label: bool = False
) -> ShipmentRead:
    events = ordered(records)
    return ShipmentRead(
        id=shipment.id,
        status=shipment.status,
        carrier=shipment.carrier,
        service=shipment.service,
        service_name=shipment.service_name,
        tracking_number=shipment.tracking_number,
        order_id=shipment.order_id,
        reference=shipment.reference,
        origin_country=shipment.origin_country,
        destination_country=shipment.destination_country,
        shipper=shipment.shipper,
        recipient=shipment.recipient,
        parcels=list(shipment.parcels),
        customs=shipment.customs,
        rate_id=shipment.rate_id,
        total=shipment.total,
        currency=shipment.currency,
        charges=Charges(**{k: Decimal(v) for k, v in shipment.charges.items()}),
        chargeable_weight_kg=shipment.chargeable_weight_kg,
        transit_days=shipment.transit_days,
        ship_date=shipment.ship_date,
        estimated_delivery=shipment.estimated_delivery,
        label_url=label_url(shipment.id),
        label_pdf_base64=base64.b64encode(shipment.label_pdf).decode() if include_label else None,
        owner=shipment.owner,
        timeline=[event_read(r) for r in events if r.applied],
        anomalies=[event_read(r) for r in events if not r.applied],
        created_at=shipment.created_at,
        updated_at=shipment.updated_at,
    )

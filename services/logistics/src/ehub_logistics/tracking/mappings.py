"""The hub's statuses in other vocabularies: Karrio, GS1 EPCIS 2.0 / CBV 2.0, DCSA T&T.

* **Karrio** ``TrackerStatus`` (``karrio.core.units``): pending, on_hold, in_transit,
  out_for_delivery, delivery_failed, delivered, return_to_sender, cancelled, ... It
  has no customs states; holds become ``on_hold`` and clearances ``in_transit``.
  ``picked_up`` maps to ``in_transit``, as in Karrio releases without a pick-up status.
* **EPCIS 2.0**: each event is an ObjectEvent whose ``bizStep`` and ``disposition``
  are CBV 2.0 terms (bare form, e.g. ``departing``; URI form via :func:`epcis_uri`).
  ``disposition`` is None where CBV has no honest term (a voided booking).
* **DCSA Track & Trace**: ``(eventType, eventTypeCode)``. Customs holds and releases
  are SHIPMENT HOLD / RELS, moves are TRANSPORT DEPA / ARRI, hand-overs are EQUIPMENT
  PICK / DROP. ``returned`` and ``exception`` have no DCSA code and map to None.
"""

from __future__ import annotations

from typing import Literal

from ehub_logistics.tracking.statuses import TrackingStatus as S

KarrioStatus = Literal[
    "pending",
    "on_hold",
    "in_transit",
    "out_for_delivery",
    "delivery_failed",
    "delivered",
    "return_to_sender",
    "cancelled",
    "delivery_delayed",
    "unknown",
]

KARRIO: dict[S, KarrioStatus] = {
    S.CREATED: "pending",
    S.PICKED_UP: "in_transit",
    S.EXPORT_HELD: "on_hold",
    S.EXPORT_CLEARED: "in_transit",
    S.DEPARTED: "in_transit",
    S.IN_TRANSIT: "in_transit",
    S.ARRIVED_DESTINATION: "in_transit",
    S.IMPORT_HELD: "on_hold",
    S.IMPORT_CLEARED: "in_transit",
    S.OUT_FOR_DELIVERY: "out_for_delivery",
    S.DELIVERY_FAILED: "delivery_failed",
    S.DELIVERED: "delivered",
    S.RETURNED: "return_to_sender",
    S.CANCELLED: "cancelled",
    S.EXCEPTION: "delivery_delayed",
}

#: status -> (CBV bizStep, CBV disposition)
EPCIS: dict[S, tuple[str, str | None]] = {
    S.CREATED: ("staging_outbound", "in_progress"),
    S.PICKED_UP: ("accepting", "in_transit"),
    S.EXPORT_HELD: ("holding", "unavailable"),
    S.EXPORT_CLEARED: ("inspecting", "in_transit"),
    S.DEPARTED: ("departing", "in_transit"),
    S.IN_TRANSIT: ("transporting", "in_transit"),
    S.ARRIVED_DESTINATION: ("arriving", "in_transit"),
    S.IMPORT_HELD: ("holding", "unavailable"),
    S.IMPORT_CLEARED: ("inspecting", "in_transit"),
    S.OUT_FOR_DELIVERY: ("transporting", "in_transit"),
    S.DELIVERY_FAILED: ("storing", "in_transit"),
    S.DELIVERED: ("receiving", "in_progress"),
    S.RETURNED: ("receiving", "returned"),
    S.CANCELLED: ("void_shipping", None),
    S.EXCEPTION: ("other", "unknown"),
}

DcsaEventType = Literal["SHIPMENT", "TRANSPORT", "EQUIPMENT"]

#: status -> (DCSA eventType, eventTypeCode), or None where DCSA has no equivalent
DCSA: dict[S, tuple[DcsaEventType, str] | None] = {
    S.CREATED: ("SHIPMENT", "CONF"),
    S.PICKED_UP: ("EQUIPMENT", "PICK"),
    S.EXPORT_HELD: ("SHIPMENT", "HOLD"),
    S.EXPORT_CLEARED: ("SHIPMENT", "RELS"),
    S.DEPARTED: ("TRANSPORT", "DEPA"),
    S.IN_TRANSIT: ("EQUIPMENT", "GTIN"),
    S.ARRIVED_DESTINATION: ("TRANSPORT", "ARRI"),
    S.IMPORT_HELD: ("SHIPMENT", "HOLD"),
    S.IMPORT_CLEARED: ("SHIPMENT", "RELS"),
    S.OUT_FOR_DELIVERY: ("EQUIPMENT", "GTOT"),
    S.DELIVERY_FAILED: ("EQUIPMENT", "AVPU"),
    S.DELIVERED: ("EQUIPMENT", "DROP"),
    S.RETURNED: None,
    S.CANCELLED: ("SHIPMENT", "CANC"),
    S.EXCEPTION: None,
}


#: status -> ``ehub.v1.ShipmentStatus`` name, for the cross-hub event contract. The
#: contract has no departed / arrived / exception yet: they travel as IN_TRANSIT and
#: DELIVERY_DELAYED, with the exact status in the outbox header ``ehub_status``.
PROTO: dict[S, str] = {
    S.CREATED: "SHIPMENT_STATUS_PENDING",
    S.PICKED_UP: "SHIPMENT_STATUS_PICKED_UP",
    S.EXPORT_HELD: "SHIPMENT_STATUS_EXPORT_HELD",
    S.EXPORT_CLEARED: "SHIPMENT_STATUS_EXPORT_CLEARED",
    S.DEPARTED: "SHIPMENT_STATUS_IN_TRANSIT",
    S.IN_TRANSIT: "SHIPMENT_STATUS_IN_TRANSIT",
    S.ARRIVED_DESTINATION: "SHIPMENT_STATUS_IN_TRANSIT",
    S.IMPORT_HELD: "SHIPMENT_STATUS_IMPORT_HELD",
    S.IMPORT_CLEARED: "SHIPMENT_STATUS_IMPORT_CLEARED",
    S.OUT_FOR_DELIVERY: "SHIPMENT_STATUS_OUT_FOR_DELIVERY",
    S.DELIVERY_FAILED: "SHIPMENT_STATUS_DELIVERY_FAILED",
    S.DELIVERED: "SHIPMENT_STATUS_DELIVERED",
    S.RETURNED: "SHIPMENT_STATUS_RETURNED",
    S.CANCELLED: "SHIPMENT_STATUS_CANCELLED",
    S.EXCEPTION: "SHIPMENT_STATUS_DELIVERY_DELAYED",
}


def epcis_uri(kind: Literal["BizStep", "Disp"], term: str) -> str:
    """The CBV 2.0 web URI of a term, e.g. ``https://ref.gs1.org/cbv/BizStep-departing``."""
    return f"https://ref.gs1.org/cbv/{kind}-{term}"


def vocabularies(status: S) -> dict[str, object]:
    """All three mappings of ``status``, as the API shows them on each timeline event."""
    biz_step, disposition = EPCIS[status]
    dcsa = DCSA[status]
    return {
        "karrio": KARRIO[status],
        "epcis": {"bizStep": biz_step, "disposition": disposition},
        "dcsa": {"eventType": dcsa[0], "eventTypeCode": dcsa[1]} if dcsa else None,
    }

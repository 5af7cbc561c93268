"""The hub's canonical tracking vocabulary.

One status set for every carrier: customs-aware (export and import clearance are
milestones of their own, as a cross-border seller lives them) and mapped to the
aggregators' and standards' vocabularies in :mod:`ehub_logistics.tracking.mappings`.
"""

from __future__ import annotations

from enum import StrEnum


class TrackingStatus(StrEnum):
    CREATED = "created"
    PICKED_UP = "picked_up"
    EXPORT_HELD = "export_held"
    EXPORT_CLEARED = "export_cleared"
    DEPARTED = "departed"
    IN_TRANSIT = "in_transit"
    ARRIVED_DESTINATION = "arrived_destination"
    IMPORT_HELD = "import_held"
    IMPORT_CLEARED = "import_cleared"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERED = "delivered"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    EXCEPTION = "exception"


#: Position on the main line from the seller to the buyer. ``in_transit`` and
#: ``exception`` have none: they are scans that say "still moving" or "something is
#: wrong" without moving the shipment along its journey.
MILESTONE_RANK: dict[TrackingStatus, int] = {
    TrackingStatus.CREATED: 0,
    TrackingStatus.PICKED_UP: 10,
    TrackingStatus.EXPORT_HELD: 20,
    TrackingStatus.EXPORT_CLEARED: 30,
    TrackingStatus.DEPARTED: 40,
    TrackingStatus.ARRIVED_DESTINATION: 50,
    TrackingStatus.IMPORT_HELD: 60,
    TrackingStatus.IMPORT_CLEARED: 70,
    TrackingStatus.OUT_FOR_DELIVERY: 80,
    TrackingStatus.DELIVERY_FAILED: 85,
    TrackingStatus.DELIVERED: 90,
    TrackingStatus.RETURNED: 100,
    TrackingStatus.CANCELLED: 100,
}

#: No event may follow these (``delivered`` admits only ``returned``, see the machine).
TERMINAL: frozenset[TrackingStatus] = frozenset({TrackingStatus.RETURNED, TrackingStatus.CANCELLED})


class ReasonCode(StrEnum):
    """Why an event happened; carried on holds, failures, returns and exceptions."""

    CUSTOMS_DOCUMENTS = "customs_documents"  # missing or inconsistent paperwork
    CUSTOMS_INSPECTION = "customs_inspection"  # selected for physical inspection
    DUTIES_UNPAID = "duties_unpaid"
    RESTRICTED_GOODS = "restricted_goods"
    RECIPIENT_ABSENT = "recipient_absent"
    ADDRESS_PROBLEM = "address_problem"
    REFUSED_BY_RECIPIENT = "refused_by_recipient"
    UNCLAIMED = "unclaimed"  # not collected after failed delivery attempts
    DAMAGED = "damaged"
    WEATHER_DELAY = "weather_delay"
    CAPACITY_DELAY = "capacity_delay"
    SENDER_REQUEST = "sender_request"
    OTHER = "other"

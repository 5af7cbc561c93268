"""Simulated express courier: fast, door to door, its own two-letter event codes.

Tracking numbers are ``EX`` plus ten digits whose last is the first nine modulo 7,
the check-digit scheme of integrator air waybills.
"""

from __future__ import annotations

import secrets
from typing import Any

from ehub_logistics.carriers.base import Address
from ehub_logistics.carriers.simulators.adapter import SimulatorAdapter, build_simulator
from ehub_logistics.carriers.simulators.engine import NativeCode, SimulatorProfile, Step
from ehub_logistics.tracking.statuses import ReasonCode as R
from ehub_logistics.tracking.statuses import TrackingStatus as S

CODES = {
    "PU": NativeCode(S.PICKED_UP, "Shipment picked up"),
    "PL": NativeCode(S.IN_TRANSIT, "Processed at facility"),
    "HE": NativeCode(S.EXPORT_HELD, "Held by export customs", R.CUSTOMS_DOCUMENTS),
    "CE": NativeCode(S.EXPORT_CLEARED, "Export customs cleared"),
    "DF": NativeCode(S.DEPARTED, "Departed facility"),
    "AF": NativeCode(S.ARRIVED_DESTINATION, "Arrived at destination gateway"),
    "HI": NativeCode(S.IMPORT_HELD, "Held by import customs", R.CUSTOMS_DOCUMENTS),
    "CR": NativeCode(S.IMPORT_CLEARED, "Clearance released"),
    "WC": NativeCode(S.OUT_FOR_DELIVERY, "With courier for delivery"),
    "NH": NativeCode(S.DELIVERY_FAILED, "Recipient not home", R.RECIPIENT_ABSENT),
    "OK": NativeCode(S.DELIVERED, "Delivered"),
    "RT": NativeCode(S.RETURNED, "Returned to shipper", R.UNCLAIMED),
    "CA": NativeCode(S.CANCELLED, "Shipment cancelled", R.SENDER_REQUEST),
    "MS": NativeCode(S.EXCEPTION, "Delayed: missed connection", R.CAPACITY_DELAY),
}

_OUTBOUND = (
    Step("PU", 2, "origin"),
    Step("PL", 4, "origin"),
    Step("CE", 6, "origin"),
    Step("DF", 8, "origin"),
    Step("AF", 26, "destination"),
)

SCENARIOS = {
    "delivered": (
        *_OUTBOUND,
        Step("CR", 30, "destination"),
        Step("WC", 40, "destination"),
        Step("OK", 46, "destination"),
    ),
    "import_hold": (
        *_OUTBOUND,
        Step("HI", 28, "destination"),
        Step("CR", 52, "destination"),
        Step("WC", 64, "destination"),
        Step("OK", 70, "destination"),
    ),
    "failed_once": (
        *_OUTBOUND,
        Step("CR", 30, "destination"),
        Step("WC", 40, "destination"),
        Step("NH", 44, "destination"),
        Step("WC", 64, "destination"),
        Step("OK", 68, "destination"),
    ),
    "returned": (
        *_OUTBOUND,
        Step("CR", 30, "destination"),
        Step("WC", 40, "destination"),
        Step("NH", 44, "destination"),
        Step("WC", 64, "destination"),
        Step("NH", 68, "destination"),
        Step("RT", 240, "destination"),
    ),
}


def tracking_number(_service: str, _origin: Address) -> str:
    serial = secrets.randbelow(10**9)
    return f"EX{serial:09d}{serial % 7}"


PROFILE = SimulatorProfile(
    name="express",
    display_name="ehub Express (simulated courier)",
    codes=CODES,
    scenarios=SCENARIOS,
    scenario_odds={"delivered": 80, "import_hold": 8, "failed_once": 10, "returned": 2},
    new_tracking_number=tracking_number,
)


def create(settings: Any) -> SimulatorAdapter:
    """Entry point of the ``ehub.carriers`` plugin ``express``."""
    return build_simulator(PROFILE, settings)

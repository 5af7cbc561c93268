"""Simulated postal operator: UPU-style event codes and S10 item identifiers.

Its codes follow the UPU EMSEVT pattern (EMA posting, EMC departure from the outward
office of exchange, EMD arrival at the inward one, EMI final delivery, ...). Like many
posts it reports no export clearance event on the normal path: the hub must accept
a journey that skips that milestone.
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
    "EMA": NativeCode(S.PICKED_UP, "Posting / collection"),
    "EMB": NativeCode(S.IN_TRANSIT, "Arrival at outward office of exchange"),
    "EXB": NativeCode(S.EXPORT_HELD, "Held at export customs", R.CUSTOMS_DOCUMENTS),
    "EXC": NativeCode(S.EXPORT_CLEARED, "Export customs release"),
    "EMC": NativeCode(S.DEPARTED, "Departure from outward office of exchange"),
    "EMD": NativeCode(S.ARRIVED_DESTINATION, "Arrival at inward office of exchange"),
    "EDA": NativeCode(S.IMPORT_HELD, "Held at inward office of exchange", R.CUSTOMS_INSPECTION),
    "EDC": NativeCode(S.IMPORT_CLEARED, "Returned from customs (released)"),
    "EMF": NativeCode(S.IN_TRANSIT, "Departure from inward office of exchange"),
    "EMG": NativeCode(S.IN_TRANSIT, "Arrival at delivery office"),
    "EDG": NativeCode(S.OUT_FOR_DELIVERY, "Out for delivery"),
    "EMH": NativeCode(S.DELIVERY_FAILED, "Unsuccessful delivery", R.RECIPIENT_ABSENT),
    "EMI": NativeCode(S.DELIVERED, "Final delivery"),
    "RTS": NativeCode(S.RETURNED, "Returned to sender", R.UNCLAIMED),
}

_OUTBOUND = (
    Step("EMA", 4, "origin"),
    Step("EMB", 30, "origin"),
    Step("EMC", 54, "origin"),
    Step("EMD", 120, "destination"),
)

SCENARIOS = {
    "delivered": (
        *_OUTBOUND,
        Step("EDC", 140, "destination"),
        Step("EMG", 160, "destination"),
        Step("EDG", 170, "destination"),
        Step("EMI", 176, "destination"),
    ),
    "import_hold": (
        *_OUTBOUND,
        Step("EDA", 124, "destination", R.DUTIES_UNPAID),
        Step("EDC", 200, "destination"),
        Step("EDG", 220, "destination"),
        Step("EMI", 226, "destination"),
    ),
    "returned": (
        *_OUTBOUND,
        Step("EDC", 140, "destination"),
        Step("EDG", 170, "destination"),
        Step("EMH", 174, "destination"),
        Step("RTS", 600, "destination"),
    ),
}

_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
_S10_SERVICE = {"ems": "EE", "priority_parcel": "CP", "surface_parcel": "CS"}


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an eight-digit serial number."""
    total = sum(int(d) * w for d, w in zip(serial, _S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def tracking_number(service: str, origin: Address) -> str:
    serial = f"{secrets.randbelow(10**8):08d}"
    return f"{_S10_SERVICE.get(service, 'CP')}{serial}{s10_check_digit(serial)}{origin.country}"


PROFILE = SimulatorProfile(
    name="postal",
    display_name="ehub Post (simulated postal service)",
    codes=CODES,
    scenarios=SCENARIOS,
    scenario_odds={"delivered": 85, "import_hold": 10, "returned": 5},
    new_tracking_number=tracking_number,
)


def create(settings: Any) -> SimulatorAdapter:
    """Entry point of the ``ehub.carriers`` plugin ``postal``."""
    return build_simulator(PROFILE, settings)

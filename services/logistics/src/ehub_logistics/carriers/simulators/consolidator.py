"""Simulated sea/air consolidator: DCSA-flavoured four-letter event codes, days not
hours between milestones, and customs hold/release (HOLD/RELS) at both ends."""

from __future__ import annotations

import secrets
from typing import Any

from ehub_logistics.carriers.base import Address
from ehub_logistics.carriers.simulators.adapter import SimulatorAdapter, build_simulator
from ehub_logistics.carriers.simulators.engine import NativeCode, SimulatorProfile, Step
from ehub_logistics.tracking.statuses import ReasonCode as R
from ehub_logistics.tracking.statuses import TrackingStatus as S

CODES = {
    "PICK": NativeCode(S.PICKED_UP, "Cargo collected from shipper"),
    "GTIN": NativeCode(S.IN_TRANSIT, "Received at origin consolidation station"),
    "STUF": NativeCode(S.IN_TRANSIT, "Consolidated into container / air unit"),
    "EHLD": NativeCode(S.EXPORT_HELD, "Export customs hold", R.CUSTOMS_INSPECTION),
    "ECLR": NativeCode(S.EXPORT_CLEARED, "Export customs cleared"),
    "DEPA": NativeCode(S.DEPARTED, "Departed port of loading"),
    "ARRI": NativeCode(S.ARRIVED_DESTINATION, "Arrived at port of discharge"),
    "HOLD": NativeCode(S.IMPORT_HELD, "Import customs hold", R.CUSTOMS_INSPECTION),
    "RELS": NativeCode(S.IMPORT_CLEARED, "Import customs released"),
    "STRP": NativeCode(S.IN_TRANSIT, "Deconsolidated at destination station"),
    "OFDL": NativeCode(S.OUT_FOR_DELIVERY, "Out for final-mile delivery"),
    "DFAL": NativeCode(S.DELIVERY_FAILED, "Delivery attempt failed", R.ADDRESS_PROBLEM),
    "DROP": NativeCode(S.DELIVERED, "Delivered to consignee"),
    "RTRN": NativeCode(S.RETURNED, "Returned to shipper", R.REFUSED_BY_RECIPIENT),
    "EXCP": NativeCode(S.EXCEPTION, "Rolled to next sailing", R.CAPACITY_DELAY),
}

_OUTBOUND = (
    Step("PICK", 12, "origin"),
    Step("GTIN", 24, "origin"),
    Step("STUF", 72, "origin"),
    Step("ECLR", 96, "origin"),
    Step("DEPA", 120, "origin"),
    Step("ARRI", 600, "destination"),
)

SCENARIOS = {
    "delivered": (
        *_OUTBOUND,
        Step("RELS", 640, "destination"),
        Step("STRP", 660, "destination"),
        Step("OFDL", 690, "destination"),
        Step("DROP", 700, "destination"),
    ),
    "inspected": (
        *_OUTBOUND,
        Step("HOLD", 620, "destination"),
        Step("RELS", 760, "destination"),
        Step("STRP", 770, "destination"),
        Step("OFDL", 790, "destination"),
        Step("DROP", 800, "destination"),
    ),
    "rolled": (
        Step("PICK", 12, "origin"),
        Step("GTIN", 24, "origin"),
        Step("ECLR", 96, "origin"),
        Step("EXCP", 120, "origin"),
        Step("DEPA", 288, "origin"),
        Step("ARRI", 760, "destination"),
        Step("RELS", 800, "destination"),
        Step("OFDL", 830, "destination"),
        Step("DROP", 840, "destination"),
    ),
}


def tracking_number(_service: str, origin: Address) -> str:
    return f"CSL{origin.country}{secrets.randbelow(10**9):09d}"


PROFILE = SimulatorProfile(
    name="consolidator",
    display_name="ehub Freight Consolidation (simulated sea/air consolidator)",
    codes=CODES,
    scenarios=SCENARIOS,
    scenario_odds={"delivered": 80, "inspected": 12, "rolled": 8},
    new_tracking_number=tracking_number,
)


def create(settings: Any) -> SimulatorAdapter:
    """Entry point of the ``ehub.carriers`` plugin ``consolidator``."""
    return build_simulator(PROFILE, settings)

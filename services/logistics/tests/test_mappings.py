"""Every hub status maps into Karrio, EPCIS 2.0 (CBV 2.0) and DCSA T&T vocabularies."""

from __future__ import annotations

import pytest

from ehub_core.proto.ehub.v1.logistics_pb2 import ShipmentStatus
from ehub_logistics.tracking.mappings import DCSA, EPCIS, KARRIO, PROTO, epcis_uri, vocabularies
from ehub_logistics.tracking.statuses import TrackingStatus as S

# Karrio's TrackerStatus enum (karrio.core.units).
KARRIO_VALUES = {
    "pending",
    "unknown",
    "on_hold",
    "cancelled",
    "delivered",
    "in_transit",
    "delivery_delayed",
    "out_for_delivery",
    "ready_for_pickup",
    "delivery_failed",
    "return_to_sender",
}
# CBV 2.0 business steps and dispositions used by EPCIS 2.0.
CBV_BIZ_STEPS = {
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
}
CBV_DISPOSITIONS = {
    "active",
    "container_closed",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "no_pedigree_match",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
}
# DCSA Track & Trace event type codes.
DCSA_CODES = {
    "SHIPMENT": {
        "RECE",
        "DRFT",
        "PENA",
        "PENU",
        "REJE",
        "APPR",
        "ISSU",
        "SURR",
        "SUBM",
        "VOID",
        "CONF",
        "REQS",
        "CMPL",
        "HOLD",
        "RELS",
        "CANC",
    },
    "TRANSPORT": {"ARRI", "DEPA"},
    "EQUIPMENT": {
        "LOAD",
        "DISC",
        "GTIN",
        "GTOT",
        "STUF",
        "STRP",
        "PICK",
        "DROP",
        "INSP",
        "RSEA",
        "RMVD",
        "AVPU",
        "AVDO",
        "CUSS",
        "CUSI",
        "CUSR",
        "CROS",
    },
}


@pytest.mark.parametrize("status", list(S))
def test_every_status_has_a_mapping_in_each_vocabulary(status):
    assert KARRIO[status] in KARRIO_VALUES
    biz_step, disposition = EPCIS[status]
    assert biz_step in CBV_BIZ_STEPS
    assert disposition is None or disposition in CBV_DISPOSITIONS
    dcsa = DCSA[status]
    assert dcsa is None or dcsa[1] in DCSA_CODES[dcsa[0]]
    assert ShipmentStatus.Value(PROTO[status]) > 0  # a value of the ehub.v1 contract


@pytest.mark.parametrize(
    ("status", "karrio", "epcis", "dcsa"),
    [
        (S.CREATED, "pending", ("staging_outbound", "in_progress"), ("SHIPMENT", "CONF")),
        (S.PICKED_UP, "in_transit", ("accepting", "in_transit"), ("EQUIPMENT", "PICK")),
        (S.EXPORT_HELD, "on_hold", ("holding", "unavailable"), ("SHIPMENT", "HOLD")),
        (S.EXPORT_CLEARED, "in_transit", ("inspecting", "in_transit"), ("SHIPMENT", "RELS")),
        (S.DEPARTED, "in_transit", ("departing", "in_transit"), ("TRANSPORT", "DEPA")),
        (S.ARRIVED_DESTINATION, "in_transit", ("arriving", "in_transit"), ("TRANSPORT", "ARRI")),
        (S.IMPORT_HELD, "on_hold", ("holding", "unavailable"), ("SHIPMENT", "HOLD")),
        (S.IMPORT_CLEARED, "in_transit", ("inspecting", "in_transit"), ("SHIPMENT", "RELS")),
        (
            S.OUT_FOR_DELIVERY,
            "out_for_delivery",
            ("transporting", "in_transit"),
            ("EQUIPMENT", "GTOT"),
        ),
        (S.DELIVERY_FAILED, "delivery_failed", ("storing", "in_transit"), ("EQUIPMENT", "AVPU")),
        (S.DELIVERED, "delivered", ("receiving", "in_progress"), ("EQUIPMENT", "DROP")),
        (S.RETURNED, "return_to_sender", ("receiving", "returned"), None),
        (S.CANCELLED, "cancelled", ("void_shipping", None), ("SHIPMENT", "CANC")),
        (S.EXCEPTION, "delivery_delayed", ("other", "unknown"), None),
    ],
)
def test_documented_mapping(status, karrio, epcis, dcsa):
    assert (KARRIO[status], EPCIS[status], DCSA[status]) == (karrio, epcis, dcsa)


def test_customs_holds_and_releases_are_dcsa_hold_and_rels():
    holds = {s for s, code in DCSA.items() if code == ("SHIPMENT", "HOLD")}
    releases = {s for s, code in DCSA.items() if code == ("SHIPMENT", "RELS")}
    assert holds == {S.EXPORT_HELD, S.IMPORT_HELD}
    assert releases == {S.EXPORT_CLEARED, S.IMPORT_CLEARED}


def test_vocabularies_as_shown_on_a_timeline_event():
    assert vocabularies(S.DEPARTED) == {
        "karrio": "in_transit",
        "epcis": {"bizStep": "departing", "disposition": "in_transit"},
        "dcsa": {"eventType": "TRANSPORT", "eventTypeCode": "DEPA"},
    }
    assert vocabularies(S.RETURNED)["dcsa"] is None
    assert epcis_uri("BizStep", "departing") == "https://ref.gs1.org/cbv/BizStep-departing"

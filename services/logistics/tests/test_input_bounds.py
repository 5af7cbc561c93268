"""Fuzz findings kept as regression tests (docs/security.md): carrier deliveries are
capped, control characters never reach a label or a timeline, numbers are bounded.
Each refusal records nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pypdf
import pytest
from sqlalchemy import text

from ehub_logistics.api.webhooks import MAX_EVENTS_PER_DELIVERY

TABLES = ("logistics_shipments", "logistics_tracking_events", "ehub_outbox", "ehub_idempotency")


@pytest.fixture
def rows(app):
    async def count() -> dict[str, int]:
        async with app.state.ctx.db.reader() as session:
            return {
                t: int((await session.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one())
                for t in TABLES
            }

    return count


def _events(carrier, tracking: str, n: int, **over: str) -> list[dict[str, object]]:
    start = datetime.now(UTC) - timedelta(hours=2)
    return [
        carrier.native_event(
            tracking, "PU", start + timedelta(seconds=i), country="CA", event_id=f"ev{i:06d}"
        )
        | over
        for i in range(n)
    ]


async def test_a_delivery_of_10000_events_is_413_and_records_nothing(book, carrier, send, rows):
    shipment = await book()
    express = carrier("express")
    before = await rows()
    r = await send(express.deliver(_events(express, shipment["tracking_number"], 10_000)))
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    # ~2.5 MB: the body limit (1 MiB) refuses it before the event cap would.
    assert r.json()["type"].endswith(("/body-too-large", "/too-many-events"))
    assert await rows() == before


async def test_one_event_over_the_cap_is_refused_and_the_cap_itself_accepted(
    book, carrier, send, rows
):
    shipment = await book()
    express = carrier("express")
    tracking = shipment["tracking_number"]
    before = await rows()
    r = await send(express.deliver(_events(express, tracking, MAX_EVENTS_PER_DELIVERY + 1)))
    assert r.status_code == 413
    problem = r.json()
    assert problem["type"].endswith("/too-many-events")
    assert problem["max_events"] == MAX_EVENTS_PER_DELIVERY == 100
    assert await rows() == before
    r = await send(express.deliver(_events(express, tracking, MAX_EVENTS_PER_DELIVERY)))
    assert r.status_code == 200, r.text
    assert r.json()["received"] == MAX_EVENTS_PER_DELIVERY


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"remark": "parcel \x1b[2J\x1b[31mLOST"}, "events.0.description"),
        ({"location": {"place": "Hali\x00fax", "country": "CA"}}, "events.0.place"),
        ({"id": "ev\x07bell"}, "events.0.event_id"),
    ],
)
async def test_control_characters_from_a_carrier_are_422_naming_the_field(
    book, carrier, send, rows, over, field
):
    shipment = await book()
    express = carrier("express")
    before = await rows()
    r = await send(express.deliver(_events(express, shipment["tracking_number"], 1, **over)))
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert await rows() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"recipient": {"name": "Li\x00Lei"}}, "recipient.name"),
        ({"recipient": {"street": ["\x1b[31m1 Harbour Rd"]}}, "recipient.street.0"),
        ({"shipper": {"company": "Lobster\x9b2J Co"}}, "shipper.company"),
        ({"reference": "ref\u202egnp"}, "reference"),
        ({"customs": {"items": [{"description": "lob\x08ster"}]}}, "customs.items.0.description"),
    ],
)
async def test_control_characters_in_a_booking_are_422_naming_the_field(
    client, shipment_body, rows, change, field
):
    body = shipment_body()
    for key, value in change.items():
        if key == "customs":
            body["customs"]["items"][0].update(value["items"][0])
        elif isinstance(value, dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    before = await rows()
    r = await client.post("/v1/shipments", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in r.json()["errors"]}
    assert await rows() == before


async def test_labels_carry_no_control_characters(book, client):
    shipment = await book()
    pdf = (await client.get(shipment["label_url"])).content
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        printed = page.extract_text()
        assert not [c for c in printed if ord(c) < 0x20 and c not in "\n\t\r"], printed


RATES = {
    "origin": {"country": "CA", "postal_code": "B3H 1A1"},
    "destination": {"country": "CN", "postal_code": "518000"},
    "declared_value": {"amount": "180.00", "currency": "USD"},
}


@pytest.mark.parametrize(
    ("parcel", "field"),
    [
        ({"weight": "1e400"}, "parcels.0.weight"),
        ({"weight": "Infinity"}, "parcels.0.weight"),
        ({"weight": "NaN"}, "parcels.0.weight"),
        ({"length": 10**400}, "parcels.0.length"),
        ({"height": "0.0000000001"}, "parcels.0.height"),
    ],
)
async def test_measures_are_finite_and_bounded(client, parcel, field):
    parcels = [{"weight": "1.5", "length": 30, "width": 20, "height": 10} | parcel]
    r = await client.post("/v1/rates", json=RATES | {"parcels": parcels})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]


@pytest.mark.parametrize("ship_date", ["9999-12-31", "0001-01-01", 0, "2026-1-5"])
async def test_a_ship_date_is_a_date_of_this_century(client, ship_date):
    # 9999-12-31 overflowed every carrier's transit arithmetic ("rating failed
    # (OverflowError)" in an answer of no rates); 0 was read as 1970-01-01.
    parcels = [{"weight": "1.5", "length": 30, "width": 20, "height": 10}]
    body = RATES | {"parcels": parcels, "ship_date": ship_date}
    r = await client.post("/v1/rates", json=body)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["ship_date"]

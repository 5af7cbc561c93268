"""Booking, label, idempotency and cancellation through the API."""

from __future__ import annotations

import base64
import io

import pypdf
from google.protobuf.json_format import ParseDict

from ehub_core.proto.ehub.v1.logistics_pb2 import ShipmentBooked, ShipmentEvent, ShipmentStatus


async def test_booking_returns_tracking_number_label_and_publishes(client, book, outbox):
    shipment = await book()
    assert shipment["id"].startswith("shp_")
    assert shipment["status"] == "created"
    assert shipment["tracking_number"].startswith("EX")
    assert shipment["total"] == "480.00" and shipment["currency"] == "USD"
    pdf = base64.b64decode(shipment["label_pdf_base64"])
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert shipment["tracking_number"] in text and "HS 030632" in text and "DDP" in text
    r = await client.get(shipment["label_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content == pdf
    r = await client.get(f"/v1/shipments/{shipment['id']}")
    read = r.json()
    assert read["label_pdf_base64"] is None
    assert [e["status"] for e in read["timeline"]] == ["created"]
    rows = await outbox()
    assert [(row["type"], row["topic"], row["key"]) for row in rows] == [
        ("ShipmentBooked", "ehub.ca.tracking", "ord_test_1"),
        ("ShipmentEvent", "ehub.ca.tracking", "ord_test_1"),
    ]
    booked = ParseDict(rows[0]["payload"], ShipmentBooked())  # the ehub.v1 contract
    assert booked.tracking_number == shipment["tracking_number"]
    assert (booked.cost.amount, booked.cost.currency) == ("480.00", "USD")
    assert booked.weight_grams == 13500 and booked.service_level == "express"
    assert booked.destination.country == "CN" and booked.destination.name == ""
    assert rows[0]["headers"]["target_hub"] == "CN"
    created = ParseDict(rows[1]["payload"], ShipmentEvent())
    assert ShipmentStatus.Name(created.status) == "SHIPMENT_STATUS_PENDING"


async def test_same_idempotency_key_and_body_replays_the_first_booking(
    client, shipment_body, outbox
):
    headers = {"Idempotency-Key": "book-1"}
    first = await client.post("/v1/shipments", json=shipment_body(), headers=headers)
    again = await client.post("/v1/shipments", json=shipment_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await outbox()) == 2  # booked once
    other = await client.post("/v1/shipments", json=shipment_body(reference="x"), headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"


async def test_booking_with_a_quoted_rate_id_and_a_stale_one(client, shipment_body):
    rates = await client.post(
        "/v1/rates",
        json={
            "origin": {"country": "CA", "postal_code": "B3H 1A1"},
            "destination": {"country": "CN", "postal_code": "518000"},
            "parcels": shipment_body()["parcels"],
            "declared_value": {"amount": "180", "currency": "USD"},
        },
    )
    quote = next(q for q in rates.json()["rates"] if q["service"] == "express_worldwide")
    r = await client.post("/v1/shipments", json=shipment_body(rate_id=quote["rate_id"]))
    assert r.status_code == 201 and r.json()["rate_id"] == quote["rate_id"]
    stale = await client.post("/v1/shipments", json=shipment_body(rate_id="rte_stale"))
    assert stale.status_code == 409
    assert stale.json()["rate_id"] == quote["rate_id"]


async def test_cross_border_without_customs_names_the_customs_field(client, shipment_body):
    r = await client.post("/v1/shipments", json=shipment_body(customs=None))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["customs"]


async def test_domestic_shipment_needs_no_customs(book, shipment_body):
    recipient = shipment_body()["shipper"] | {"city": "Toronto", "postal_code": "M5V 2T6"}
    shipment = await book(recipient=recipient, customs=None)
    assert shipment["destination_country"] == "CA" and shipment["customs"] is None


async def test_unknown_carrier_and_unserved_service_name_their_fields(client, shipment_body):
    r = await client.post("/v1/shipments", json=shipment_body(carrier="dhl"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "carrier"
    r = await client.post("/v1/shipments", json=shipment_body(service="overnight"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "service"


async def test_bad_shipment_input_names_the_field(client, shipment_body):
    parcels = [{"weight": "-2", "length": 10, "width": 10, "height": 10}]
    r = await client.post("/v1/shipments", json=shipment_body(parcels=parcels))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parcels.0.weight"
    recipient = shipment_body()["recipient"] | {"street": []}
    r = await client.post("/v1/shipments", json=shipment_body(recipient=recipient))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "recipient.street"


async def test_unknown_shipment_is_a_404_problem(client):
    r = await client.get("/v1/shipments/shp_missing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/shipments/shp_missing/label.pdf")).status_code == 404


async def test_cancel_before_pickup_voids_and_publishes(client, book, carrier, outbox):
    shipment = await book()
    r = await client.post(f"/v1/shipments/{shipment['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert [e["status"] for e in r.json()["timeline"]] == ["created", "cancelled"]
    assert shipment["tracking_number"] not in carrier("express").active()
    last = (await outbox())[-1]
    assert last["type"] == "ShipmentEvent" and last["headers"]["ehub_status"] == "cancelled"
    assert last["payload"]["status"] == "SHIPMENT_STATUS_CANCELLED"
    again = await client.post(f"/v1/shipments/{shipment['id']}/cancel")
    assert again.status_code == 409


async def test_cancel_after_pickup_is_refused(client, book, carrier, send):
    shipment = await book()
    r = await send(carrier("express").advance(shipment["tracking_number"]))
    assert r.status_code == 200
    r = await client.post(f"/v1/shipments/{shipment['id']}/cancel")
    assert r.status_code == 409
    assert "cancelled after pick-up" in r.json()["detail"]
    assert (await client.get(f"/v1/shipments/{shipment['id']}")).json()["status"] == "picked_up"


async def test_an_orders_shipments_are_listed_with_their_timelines(client, book):
    first = await book()
    second = await book(order_id="ord_other")
    third = await book()
    r = await client.get("/v1/shipments", params={"order_id": "ord_test_1"})
    assert r.status_code == 200
    assert [s["id"] for s in r.json()] == [first["id"], third["id"]]
    assert all(s["timeline"][0]["status"] == "created" for s in r.json())
    assert second["id"] not in {s["id"] for s in r.json()}
    assert (await client.get("/v1/shipments")).status_code == 422


async def test_the_hubs_carriers_are_listed(client):
    r = await client.get("/v1/carriers")
    assert [c["name"] for c in r.json()] == ["consolidator", "express", "postal"]

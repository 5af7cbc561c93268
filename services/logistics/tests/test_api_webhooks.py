"""POST /v1/carriers/{carrier}/events: signed, deduplicated, ordered, published."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.json_format import ParseDict

from ehub_core.envelope import PAYLOAD_TYPES
from ehub_logistics.carriers.signing import sign_delivery, simulator_signing_key
from ehub_logistics.carriers.simulators.adapter import RETIRED_PUBLIC_SEED
from ehub_logistics.carriers.simulators.engine import WebhookDelivery
from ehub_logistics.simulation import simulation_tick


async def shipment_state(client, shipment_id):
    return (await client.get(f"/v1/shipments/{shipment_id}")).json()


async def test_a_journey_pushed_by_the_carrier_ends_delivered_and_is_published(
    client, book, carrier, send, outbox
):
    shipment = await book()
    express = carrier("express")
    express.set_scenario(shipment["tracking_number"], "import_hold")
    while (delivery := express.advance(shipment["tracking_number"], 3)) is not None:
        r = await send(delivery)
        assert r.status_code == 200, r.text
        assert r.json()["anomalies"] == []
    read = await shipment_state(client, shipment["id"])
    assert read["status"] == "delivered" and read["anomalies"] == []
    assert [e["status"] for e in read["timeline"]] == [
        "created",
        "picked_up",
        "in_transit",
        "export_cleared",
        "departed",
        "arrived_destination",
        "import_held",
        "import_cleared",
        "out_for_delivery",
        "delivered",
    ]
    held = read["timeline"][6]
    assert held["what"] == "Held by import customs" and held["why"] == "customs_documents"
    assert held["where"] == {"place": "Shenzhen", "country": "CN"}
    assert held["carrier_code"] == "HI"
    assert held["vocabularies"]["dcsa"] == {"eventType": "SHIPMENT", "eventTypeCode": "HOLD"}
    rows = await outbox()
    for row in rows:  # every payload is the ehub.v1 contract, as the gateway will seal it
        ParseDict(row["payload"], PAYLOAD_TYPES[row["type"]]())
    steps = [row for row in rows if row["type"] == "ShipmentEvent"]
    assert [r["headers"]["ehub_status"] for r in steps] == [e["status"] for e in read["timeline"]]
    held_event = steps[6]["payload"]
    assert held_event["status"] == "SHIPMENT_STATUS_IMPORT_HELD"
    assert held_event["reason_code"] == "customs_documents"
    assert held_event["where"] == {"name": "Shenzhen", "country": "CN"}
    assert held_event["carrier_status_code"] == "HI" and held_event["order_id"] == "ord_test_1"
    assert steps[-1]["headers"]["shipment_status"] == "delivered"
    assert steps[-1]["headers"]["target_hub"] == "CN"
    (confirmed,) = [row["payload"] for row in rows if row["type"] == "DeliveryConfirmed"]
    assert confirmed["delivered_at"] == steps[-1]["payload"]["occurred_at"]


async def test_a_bad_signature_is_401_and_changes_nothing(client, book, carrier, send, outbox):
    shipment = await book()
    delivery = carrier("express").advance(shipment["tracking_number"], 2)
    signature = base64.b64decode(delivery.headers["X-Carrier-Signature"].removeprefix("ed25519="))
    forged = bytes([signature[0] ^ 1]) + signature[1:]
    bad = {
        **delivery.headers,
        "X-Carrier-Signature": "ed25519=" + base64.b64encode(forged).decode(),
    }
    before = len(await outbox())
    r = await send(WebhookDelivery(delivery.carrier, delivery.path, bad, delivery.body))
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    read = await shipment_state(client, shipment["id"])
    assert read["status"] == "created" and len(read["timeline"]) == 1 and read["anomalies"] == []
    assert len(await outbox()) == before


async def test_tampered_body_stale_timestamp_and_other_carrier_key_are_401(
    book, carrier, send, simulator_seed
):
    shipment = await book()
    delivery = carrier("express").advance(shipment["tracking_number"])
    tampered = delivery.body.replace(b'"PU"', b'"OK"')
    assert (
        await send(WebhookDelivery("express", delivery.path, delivery.headers, tampered))
    ).status_code == 401
    stale = carrier("express").deliver(
        json.loads(delivery.body)["events"], now=datetime.now(UTC) - timedelta(minutes=10)
    )
    assert (await send(stale)).status_code == 401
    postal_key = simulator_signing_key("postal", simulator_seed)
    wrong = {"Content-Type": "application/json", **sign_delivery(postal_key, delivery.body)}
    assert (
        await send(WebhookDelivery("express", delivery.path, wrong, delivery.body))
    ).status_code == 401
    assert (await send(delivery)).status_code == 200


async def test_unknown_carrier_is_404(client):
    r = await client.post("/v1/carriers/dhl/events", content=b"{}")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_redelivered_events_are_acknowledged_and_ignored(client, book, carrier, send, outbox):
    shipment = await book()
    delivery = carrier("express").advance(shipment["tracking_number"], 2)
    first = (await send(delivery)).json()
    assert (first["accepted"], first["duplicates"]) == (2, 0)
    count = len(await outbox())
    again = (await send(delivery)).json()
    assert (again["received"], again["accepted"], again["duplicates"]) == (2, 0, 2)
    assert len(await outbox()) == count
    assert len((await shipment_state(client, shipment["id"]))["timeline"]) == 3


async def test_out_of_order_batches_are_ordered_by_carrier_time(
    client, book, carrier, send, outbox
):
    shipment = await book()
    express = carrier("express")
    express.set_scenario(shipment["tracking_number"], "delivered")
    early = express.advance(shipment["tracking_number"], 4)  # PU PL CE DF
    late = express.advance(shipment["tracking_number"], 10)  # AF CR WC OK
    r = (await send(late)).json()
    assert r["accepted"] == 0
    assert {a["reason"] for a in r["anomalies"]} == {
        "arrived_destination before picked_up",
        "import_cleared before picked_up",
        "out_for_delivery before picked_up",
        "delivered before picked_up",
    }
    assert (await shipment_state(client, shipment["id"]))["status"] == "created"
    r = (await send(early)).json()
    assert r["accepted"] == 4 and r["anomalies"] == []
    read = await shipment_state(client, shipment["id"])
    assert read["status"] == "delivered" and read["anomalies"] == []
    published = [
        row["headers"]["ehub_status"] for row in await outbox() if row["type"] == "ShipmentEvent"
    ]
    assert published[-8:] == [
        "picked_up",
        "in_transit",
        "export_cleared",
        "departed",
        "arrived_destination",
        "import_cleared",
        "out_for_delivery",
        "delivered",
    ]


async def test_an_impossible_step_is_kept_as_an_anomaly_not_applied(client, book, carrier, send):
    shipment = await book()
    express, number = carrier("express"), shipment["tracking_number"]
    express.set_scenario(number, "delivered")
    await send(express.advance(number, 100))
    after = datetime.now(UTC) + timedelta(days=5)
    stray = express.native_event(number, "WC", after, country="CN", place="Shenzhen")
    r = (await send(express.deliver([stray]))).json()
    assert r["anomalies"] == [
        {
            "event_id": stray["id"],
            "tracking_number": number,
            "status": "out_for_delivery",
            "reason": "only returned may follow delivered",
        }
    ]
    read = await shipment_state(client, shipment["id"])
    assert read["status"] == "delivered"
    assert [(a["status"], a["anomaly"]) for a in read["anomalies"]] == [
        ("out_for_delivery", "only returned may follow delivered")
    ]


async def test_a_late_event_that_voids_a_published_step_retracts_it(book, carrier, send, outbox):
    shipment = await book()
    express, number = carrier("express"), shipment["tracking_number"]
    pickup = express.advance(number)
    await send(pickup)
    picked_at = datetime.fromisoformat(json.loads(pickup.body)["events"][0]["time"])
    cancel = express.native_event(number, "CA", picked_at - timedelta(minutes=5), country="CA")
    await send(express.deliver([cancel]))
    steps = [row for row in await outbox() if row["type"] == "ShipmentEvent"]
    assert [(r["headers"]["ehub_status"], r["headers"]["retracted"]) for r in steps[-3:]] == [
        ("picked_up", "false"),
        ("cancelled", "false"),
        ("picked_up", "true"),
    ]
    withdrawn = steps[-1]["payload"]
    assert withdrawn["reason_code"] == "retracted"
    assert withdrawn["description"] == "retracted: nothing may follow cancelled"


async def test_unknown_tracking_numbers_are_acknowledged_and_listed(book, carrier, send):
    await book()
    express = carrier("express")
    ghost = express.native_event("EX0000000000", "PU", datetime.now(UTC), country="CA")
    r = await send(express.deliver([ghost]))
    assert r.status_code == 200
    assert r.json()["unknown_tracking_numbers"] == ["EX0000000000"]


async def test_a_signed_but_malformed_delivery_is_422(client, simulator_seed):
    body = b'{"carrier":"express","events":[{"code":"PU"}]}'
    key = simulator_signing_key("express", simulator_seed)
    r = await client.post(
        "/v1/carriers/express/events", content=body, headers=sign_delivery(key, body)
    )
    assert r.status_code == 422


async def test_a_delivery_signed_with_the_retired_public_seed_is_401_and_changes_nothing(
    book, carrier, send, client
):
    # Every hub once derived its simulators' keys from this published seed, so anyone
    # could move a shipment to delivered; keys now come from a secret of each hub.
    shipment = await book()
    before = (await client.get(f"/v1/shipments/{shipment['id']}")).json()
    genuine = carrier("express").advance(shipment["tracking_number"])
    forged_key = simulator_signing_key("express", RETIRED_PUBLIC_SEED)
    forged = {"Content-Type": "application/json", **sign_delivery(forged_key, genuine.body)}
    r = await send(WebhookDelivery("express", genuine.path, forged, genuine.body))
    assert r.status_code == 401, r.text
    assert (await client.get(f"/v1/shipments/{shipment['id']}")).json() == before
    assert (await send(genuine)).status_code == 200  # the carrier's own key still works


@pytest.mark.parametrize("settings_overrides", [{"carrier_simulation": True}])
async def test_live_simulation_drives_shipments_through_the_webhook(app, client, book):
    shipment = await book()
    assert app.state.logistics_simulation is not None  # started by the first booking
    for _ in range(3):
        assert await simulation_tick(app, client, datetime.now(UTC)) == 1
    read = await shipment_state(client, shipment["id"])
    assert [e["status"] for e in read["timeline"]][:2] == ["created", "picked_up"]
    assert len(read["timeline"]) == 4 and read["anomalies"] == []


async def test_concurrent_deliveries_for_one_shipment_both_apply(client, book, carrier, send):
    shipment = await book()
    express, number = carrier("express"), shipment["tracking_number"]
    express.set_scenario(number, "delivered")
    first, second = express.advance(number, 3), express.advance(number, 3)
    results = await asyncio.gather(send(second), send(first))
    assert [r.status_code for r in results] == [200, 200]
    read = await shipment_state(client, shipment["id"])
    assert len(read["timeline"]) == 7 and read["anomalies"] == []
    assert read["status"] == "import_cleared"  # PU PL CE | DF AF CR


async def test_odd_carrier_fields_are_bounded_not_fatal(client, book, carrier, send):
    shipment = await book()
    express, number = carrier("express"), shipment["tracking_number"]
    odd = express.native_event(
        number, "PU", datetime.now(UTC), country="CAN", place="x" * 500, event_id="e" * 300
    )
    r = await send(express.deliver([odd]))
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert (await send(express.deliver([odd]))).json()["duplicates"] == 1
    event = (await shipment_state(client, shipment["id"]))["timeline"][1]
    assert event["where"]["country"] is None and len(event["where"]["place"]) == 200

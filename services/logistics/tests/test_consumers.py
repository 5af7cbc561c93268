"""The order saga's logistics commands: BookShipment and CancelShipment (docs/orders.md).

Most tests feed command messages straight into the app's command consumer (the same
``command_consumer`` the service subscribes, minus the broker) and read the reply it
wrote to the outbox; the last one goes through the real embedded broker.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import undefer

from ehub_core import commands
from ehub_core.bus import Message
from ehub_core.testing import serve_in_process
from ehub_logistics.app import create_app
from ehub_logistics.settings import LogisticsSettings
from ehub_logistics.shipments.models import Shipment

HUB = "CA"
REPLIES = f"ehub.{HUB.lower()}.saga-replies"

Command = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def command(app, outbox) -> Command:
    """Deliver one command to the logistics consumer; return the reply it wrote."""
    consumer = commands.command_consumer(
        app.state.ctx.db, HUB, app.state.logistics_commands.handlers(), retry_delay=0
    )

    async def _command(
        name: str, body: dict[str, Any], *, order_id: str, step: str, attempt: int = 0
    ) -> dict[str, Any]:
        cmd_id = commands.command_id(order_id, step, attempt)
        payload = {**body, "order_id": order_id, "step": step}
        await consumer(
            Message(
                topic=commands.topic(HUB, commands.LOGISTICS_COMMANDS),
                value=json.dumps(payload).encode(),
                key=order_id.encode(),
                headers=(("event_type", name.encode()), ("event_id", cmd_id.encode())),
            )
        )
        replies = [r for r in await outbox() if r["topic"] == REPLIES and r["key"] == order_id]
        mine = [r for r in replies if r["payload"]["command_id"] == cmd_id]
        assert len(mine) == 1, replies
        reply = mine[0]
        assert reply["payload"]["order_id"] == order_id
        assert reply["payload"]["step"] == step
        return {"type": reply["type"], **reply["payload"]}

    return _command


@pytest.fixture
def booking(shipment_body) -> Callable[..., dict[str, Any]]:
    """A BookShipment body (order_id and step are added by ``command``)."""

    def _booking(**over: Any) -> dict[str, Any]:
        body = shipment_body(reference="PO-42", **over)
        body.pop("order_id")
        return body

    return _booking


async def shipments(app, order_id: str) -> list[Shipment]:
    async with app.state.ctx.db.sessionmaker() as session:
        stmt = select(Shipment).where(Shipment.order_id == order_id).order_by(Shipment.created_at)
        return list((await session.scalars(stmt)).all())


async def shipment_count(app) -> int:
    async with app.state.ctx.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Shipment)) or 0)


def order() -> str:
    return f"ord_{uuid.uuid4().hex[:12]}"


# --- BookShipment ----------------------------------------------------------------------


async def test_book_shipment_books_and_answers_ready(app, client, command, booking, outbox):
    order_id = order()
    reply = await command("BookShipment", booking(), order_id=order_id, step="ship")

    assert reply["type"] == "ShipmentReady"
    [shipment] = await shipments(app, order_id)
    assert reply == {
        "type": "ShipmentReady",
        "order_id": order_id,
        "step": "ship",
        "command_id": commands.command_id(order_id, "ship"),
        "shipment_id": shipment.id,
        "carrier": "express",
        "service": "express_worldwide",
        "tracking_number": shipment.tracking_number,
        "amount": str(shipment.total),
        "currency": shipment.currency,
        "label_url": f"/v1/shipments/{shipment.id}/label.pdf",
        "estimated_delivery": shipment.estimated_delivery.isoformat(),
    }
    assert shipment.saga_step == "ship" and shipment.status == "created"
    assert shipment.reference == "PO-42"
    assert reply["amount"].count(".") == 1 and reply["currency"] == "USD"

    label = await client.get(reply["label_url"])
    assert label.status_code == 200 and label.content.startswith(b"%PDF")

    read = (await client.get(f"/v1/shipments/{shipment.id}")).json()
    assert read["order_id"] == order_id and read["tracking_number"] == reply["tracking_number"]

    events = [r for r in await outbox() if r["topic"] == "ehub.ca.tracking"]
    assert [e["type"] for e in events] == ["ShipmentBooked", "ShipmentEvent"]
    for event in events:
        assert event["key"] == order_id
        assert event["headers"]["order_id"] == order_id
        assert event["headers"]["saga_step"] == "ship"
        assert event["payload"]["order_id"] == order_id


async def test_a_repeated_booking_answers_the_same_shipment_without_booking_again(
    app, command, booking, carrier
):
    order_id = order()
    first = await command("BookShipment", booking(), order_id=order_id, step="ship")
    booked_at_carrier = len(carrier("express").active())

    # The saga re-sends (a new attempt), even with a different body: nothing changes.
    again = await command(
        "BookShipment", booking(carrier="postal"), order_id=order_id, step="ship", attempt=1
    )

    assert again["type"] == "ShipmentReady"
    strip = {"command_id"}
    assert {k: v for k, v in again.items() if k not in strip} == {
        k: v for k, v in first.items() if k not in strip
    }
    assert len(await shipments(app, order_id)) == 1
    assert len(carrier("express").active()) == booked_at_carrier
    assert carrier("postal").active() == []


async def test_a_redelivered_command_answers_the_same_reply(app, command, booking, outbox):
    order_id = order()
    first = await command("BookShipment", booking(), order_id=order_id, step="ship")
    again = await command("BookShipment", booking(), order_id=order_id, step="ship")
    assert again == first
    assert len(await shipments(app, order_id)) == 1


async def test_concurrent_bookings_of_one_step_book_once(app, command, booking):
    order_id = order()
    replies = await asyncio.gather(
        *(
            command("BookShipment", booking(), order_id=order_id, step="ship", attempt=n)
            for n in range(3)
        )
    )
    assert {r["type"] for r in replies} == {"ShipmentReady"}
    assert len({r["shipment_id"] for r in replies}) == 1
    assert len(await shipments(app, order_id)) == 1


async def test_the_database_refuses_two_live_shipments_for_one_step(app, command, booking):
    order_id = order()
    await command("BookShipment", booking(), order_id=order_id, step="ship")
    [shipment] = await shipments(app, order_id)
    with pytest.raises(IntegrityError):
        async with app.state.ctx.db.transaction() as session:
            twin = await session.get(Shipment, shipment.id, options=[undefer(Shipment.label_pdf)])
            assert twin is not None
            columns = {c.key: getattr(twin, c.key) for c in Shipment.__mapper__.column_attrs}
            session.add(Shipment(**{**columns, "id": "shp_twin", "tracking_number": "EX-twin"}))


@pytest.mark.parametrize(
    ("over", "field"),
    [
        (
            {"parcels": [{"weight": "0", "length": 10, "width": 10, "height": 10}]},
            "parcels.0.weight",
        ),
        (
            {"recipient": {"country": "CN", "city": "Shenzhen", "street": ["1 Rd"]}},
            "recipient.name",
        ),
        ({"parcels": []}, "parcels"),
        ({"carrier": ""}, "carrier"),
        ({"customs": None}, "customs"),
    ],
)
async def test_an_invalid_booking_is_refused_naming_the_field(app, command, booking, over, field):
    order_id = order()
    reply = await command("BookShipment", booking(**over), order_id=order_id, step="ship")

    assert reply["type"] == "ShipmentRefused"
    assert reply["reason_code"] == "invalid_request"
    assert reply["reason"].startswith(f"{field}: "), reply["reason"]
    assert set(reply) == {"type", "order_id", "step", "command_id", "reason_code", "reason"}
    assert await shipments(app, order_id) == []


async def test_a_missing_body_field_is_refused(app, command, booking):
    body = booking()
    del body["shipper"]
    reply = await command("BookShipment", body, order_id=order(), step="ship")
    assert reply["reason_code"] == "invalid_request"
    assert reply["reason"] == "shipper: Field required"


async def test_unknown_fields_are_ignored(app, command, booking):
    reply = await command("BookShipment", booking(seller_id="sel_1"), order_id=order(), step="ship")
    assert reply["type"] == "ShipmentReady"


async def test_an_unknown_carrier_is_refused(app, command, booking):
    order_id = order()
    reply = await command("BookShipment", booking(carrier="pigeon"), order_id=order_id, step="ship")
    assert reply["type"] == "ShipmentRefused"
    assert reply["reason_code"] == "unknown_carrier"
    assert reply["reason"].startswith("carrier: No carrier 'pigeon' on this hub")
    assert await shipments(app, order_id) == []


async def test_a_service_the_carrier_does_not_offer_is_refused(app, command, booking):
    order_id = order()
    reply = await command(
        "BookShipment", booking(service="teleport"), order_id=order_id, step="ship"
    )
    assert reply["type"] == "ShipmentRefused"
    assert reply["reason_code"] == "service_unavailable"
    assert reply["reason"].startswith("service: express/teleport cannot carry this shipment")
    assert await shipments(app, order_id) == []


async def test_a_stale_rate_id_is_refused_as_rate_changed(app, command, booking):
    reply = await command("BookShipment", booking(rate_id="stale"), order_id=order(), step="ship")
    assert reply["type"] == "ShipmentRefused"
    assert reply["reason_code"] == "rate_changed"


async def test_outbound_and_return_shipments_of_one_order_coexist(
    app, client, command, booking, shipment_body
):
    order_id = order()
    outbound = await command("BookShipment", booking(), order_id=order_id, step="ship")
    back = booking(
        shipper=shipment_body()["recipient"],
        recipient=shipment_body()["shipper"],
        customs={**shipment_body()["customs"], "contents_type": "return_of_goods"},
    )
    returned = await command("BookShipment", back, order_id=order_id, step="return")

    assert outbound["type"] == returned["type"] == "ShipmentReady"
    assert outbound["shipment_id"] != returned["shipment_id"]
    listed = (await client.get("/v1/shipments", params={"order_id": order_id})).json()
    assert [(s["id"], s["origin_country"]) for s in listed] == [
        (outbound["shipment_id"], "CA"),
        (returned["shipment_id"], "CN"),
    ]
    # Repeats find each step's own shipment.
    again = await command("BookShipment", back, order_id=order_id, step="return", attempt=1)
    assert again["shipment_id"] == returned["shipment_id"]

    # Cancelling the return leaves the outbound shipment alone.
    cancel = await command(
        "CancelShipment", {"target_step": "return"}, order_id=order_id, step="cancel_return"
    )
    assert cancel["shipment_id"] == returned["shipment_id"]
    statuses = {s.id: s.status for s in await shipments(app, order_id)}
    assert statuses == {outbound["shipment_id"]: "created", returned["shipment_id"]: "cancelled"}


# --- CancelShipment --------------------------------------------------------------------


async def test_cancel_before_pickup_cancels(app, client, command, booking, carrier, outbox):
    order_id = order()
    ready = await command("BookShipment", booking(), order_id=order_id, step="ship")

    reply = await command(
        "CancelShipment", {"target_step": "ship"}, order_id=order_id, step="cancel"
    )

    assert reply == {
        "type": "ShipmentCancelled",
        "order_id": order_id,
        "step": "cancel",
        "command_id": commands.command_id(order_id, "cancel"),
        "shipment_id": ready["shipment_id"],
    }
    read = (await client.get(f"/v1/shipments/{ready['shipment_id']}")).json()
    assert read["status"] == "cancelled"
    assert ready["tracking_number"] not in carrier("express").active()
    last = [r for r in await outbox() if r["topic"] == "ehub.ca.tracking"][-1]
    assert last["headers"]["ehub_status"] == "cancelled"
    assert last["headers"]["order_id"] == order_id

    # A repeat answers the same; the target step defaults to "ship".
    again = await command("CancelShipment", {}, order_id=order_id, step="cancel", attempt=1)
    assert again["type"] == "ShipmentCancelled"
    assert again["shipment_id"] == ready["shipment_id"]


async def test_cancel_without_a_shipment_answers_cancelled_with_no_id(app, command):
    reply = await command("CancelShipment", {}, order_id=order(), step="cancel")
    assert reply["type"] == "ShipmentCancelled"
    assert reply["shipment_id"] is None


async def test_cancel_after_pickup_is_refused(app, client, command, booking, carrier, send):
    order_id = order()
    ready = await command("BookShipment", booking(), order_id=order_id, step="ship")
    r = await send(carrier("express").advance(ready["tracking_number"]))  # pick-up scan
    assert r.status_code == 200 and r.json()["accepted"] == 1

    reply = await command("CancelShipment", {}, order_id=order_id, step="cancel")

    assert reply["type"] == "ShipmentCancelRefused"
    assert reply["reason_code"] == "picked_up"
    assert reply["shipment_id"] == ready["shipment_id"]
    assert reply["reason"].endswith("cannot be cancelled: cancelled after pick-up")
    read = (await client.get(f"/v1/shipments/{ready['shipment_id']}")).json()
    assert read["status"] == "picked_up"
    # The step still holds its shipment: a repeated booking answers it.
    again = await command("BookShipment", booking(), order_id=order_id, step="ship", attempt=1)
    assert again["shipment_id"] == ready["shipment_id"]


async def test_a_cancelled_step_can_be_booked_again(app, client, command, booking):
    order_id = order()
    first = await command("BookShipment", booking(), order_id=order_id, step="ship")
    await command("CancelShipment", {}, order_id=order_id, step="cancel")

    second = await command("BookShipment", booking(), order_id=order_id, step="ship", attempt=1)
    assert second["type"] == "ShipmentReady"
    assert second["shipment_id"] != first["shipment_id"]

    # Cancelled through the API this time: the saga's next booking still gets a new one.
    r = await client.post(f"/v1/shipments/{second['shipment_id']}/cancel")
    assert r.status_code == 200
    third = await command("BookShipment", booking(), order_id=order_id, step="ship", attempt=2)
    assert third["shipment_id"] not in {first["shipment_id"], second["shipment_id"]}
    assert [s.status for s in await shipments(app, order_id)] == [
        "cancelled",
        "cancelled",
        "created",
    ]
    cancel = await command("CancelShipment", {}, order_id=order_id, step="cancel", attempt=1)
    assert cancel["shipment_id"] == third["shipment_id"]


# --- through the broker ----------------------------------------------------------------


async def wait_for_reply(bootstrap: str, topic: str, order_id: str, timeout: float = 30.0):
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.key == order_id.encode():
                        return record
    finally:
        await consumer.stop()
    raise AssertionError(f"no reply for {order_id} on {topic} within {timeout} s")


async def test_book_shipment_through_the_broker(database_url, tmp_path, broker, shipment_body):
    # A hub of its own per database, so its topics and consumer group are this test's
    # (a group that another run just left would make the next one wait to rebalance).
    hub = "LU" if database_url.startswith("sqlite") else "LI"
    settings = LogisticsSettings(
        database_url=database_url,
        var_dir=tmp_path,
        hub_id=hub,
        kafka_bootstrap=broker.bootstrap,
        relay_poll_interval=5,  # the consumer wakes the relay after each reply
    )
    app = create_app(settings)
    order_id = order()
    body = shipment_body()
    body.pop("order_id")
    async with serve_in_process(app) as client:
        async with app.state.ctx.db.transaction() as session:
            cmd_id = await commands.send_command(
                session,
                hub_id=hub,
                stream=commands.LOGISTICS_COMMANDS,
                command="BookShipment",
                order_id=order_id,
                step="ship",
                body=body,
            )
        record = await wait_for_reply(
            broker.bootstrap, commands.topic(hub, commands.SAGA_REPLIES), order_id
        )
        headers = {k: v.decode() for k, v in record.headers}
        reply = json.loads(record.value)
        assert headers["event_type"] == "ShipmentReady"
        assert headers["event_id"] == commands.reply_id(cmd_id, "ShipmentReady")
        assert reply["command_id"] == cmd_id and reply["step"] == "ship"
        read = (await client.get(f"/v1/shipments/{reply['shipment_id']}")).json()
        assert read["order_id"] == order_id
        assert read["tracking_number"] == reply["tracking_number"]

"""Only an order's other hub may speak of it: CA refuses a peer's event about an order
that peer is not the other hub of (403 ``not-order-party``, over signed HTTP) and
writes nothing, in any table; over the backbone the same event is dropped unreceipted.

CA holds two orders: one it sells to CN (``ord_sold``) and one it buys from CN
(``ord_bought``). CN and MY are both peers, allowed every event type, signing for real.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import func, inspect, select, text

from ehub_core.bus import Message
from ehub_core.db import Database
from ehub_core.envelope import ENVELOPE_CONTEXT, read_unverified, seal
from ehub_core.migrations import upgrade
from ehub_core.models import NonceRecord
from ehub_core.proto.ehub.v1 import customs_pb2, logistics_pb2, orders_pb2
from ehub_core.proto.ehub.v1.envelope_pb2 import Envelope, EnvelopeBatch, SignedEnvelope
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt, ReceiptOutcome, SignedReceipt
from ehub_core.signing import HubKey, KeyRing, sign_request
from ehub_core.signing.detached import sign_detached
from ehub_core.testing import serve_in_process
from ehub_gateway.app import create_app
from ehub_gateway.federation.backbone import Backbone
from ehub_gateway.federation.trust import add_peer
from ehub_gateway.federation.wellknown import build_document
from ehub_gateway.orders.models import Order
from ehub_gateway.settings import GatewaySettings

URL = "http://testserver/federation/v1/events"
ACCEPTED = ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED
DUPLICATE = ReceiptOutcome.RECEIPT_OUTCOME_DUPLICATE
REJECTED = ReceiptOutcome.RECEIPT_OUTCOME_REJECTED
SOLD, BOUGHT = "ord_sold", "ord_bought"  # CA sells SOLD to CN, buys BOUGHT from CN


def _order(order_id: str, *, role: str, buyer_hub: str, seller_hub: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        id=order_id,
        role=role,
        state="accepted",
        buyer_hub=buyer_hub,
        seller_hub=seller_hub,
        seller_id="sel_1",
        buyer_ref="b" * 64,
        ship_to={"country": buyer_hub},
        lines=[],
        currency="CNY",
        seller_currency="CAD",
        money={},
        shipping={"carrier": "postal", "service": "surface_parcel"},
        declarations={},
        created_at=now,
        updated_at=now,
    )


async def _trust(db: Database, key: HubKey) -> None:
    doc = build_document(
        hub_id=key.hub_id,
        name=key.hub_id,
        base_url=f"http://{key.hub_id.lower()}.invalid",
        keys=[key.public_info],
        signers=[key],
        now=datetime.now(UTC),
    )
    await add_peer(
        db,
        own_hub="CA",
        base_url=f"http://{key.hub_id.lower()}.invalid",
        fingerprint=key.fingerprint,
        document=doc,
    )


@pytest.fixture
async def hub(tmp_path, database_url) -> Any:
    """CA's gateway in process, trusting CN and MY, holding SOLD and BOUGHT."""
    keys = {h: KeyRing(tmp_path / f"{h.lower()}-keys", h).ensure_active() for h in ("CN", "MY")}
    db = Database(database_url)
    await upgrade(db, "ehub_gateway.migrations")
    for key in keys.values():
        await _trust(db, key)
    async with db.transaction() as session:
        session.add(_order(SOLD, role="seller", buyer_hub="CN", seller_hub="CA"))
        session.add(_order(BOUGHT, role="buyer", buyer_hub="CA", seller_hub="CN"))
    await db.dispose()
    app = create_app(GatewaySettings(hub_id="CA", var_dir=tmp_path, database_url=database_url))
    async with serve_in_process(app) as client:
        yield app, client, keys


def sealed(key: HubKey, payload: ProtoMessage, subject: str) -> bytes:
    return seal(payload, key, target_hub="CA", subject=subject)


def placed(order_id: str, buyer: str = "CN", seller: str = "CA") -> orders_pb2.OrderPlaced:
    return orders_pb2.OrderPlaced(order_id=order_id, buyer_hub=buyer, seller_hub=seller)


async def post(client: httpx.AsyncClient, key: HubKey, *envelopes: bytes) -> httpx.Response:
    body = EnvelopeBatch(envelopes=list(envelopes)).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    headers |= sign_request("POST", URL, headers, body, key, key.hub_id)
    return await client.post("/federation/v1/events", content=body, headers=headers)


def outcomes(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    receipt = Receipt.FromString(SignedReceipt.FromString(response.content).receipt)
    return [e.outcome for e in receipt.entries]


async def table_counts(app: Any) -> dict[str, int]:
    """Rows of every table of CA's gateway database (core, federation, orders, ...)."""
    async with app.state.ctx.db.reader() as session:
        conn = await session.connection()
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert {"fed_received", "ehub_inbox", "ehub_outbox", "ehub_nonces", "orders"} <= set(names)
        return {n: int(await session.scalar(text(f'SELECT count(*) FROM "{n}"'))) for n in names}


def assert_not_order_party(response: httpx.Response, envelope: bytes, hub: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    env = read_unverified(envelope)
    assert problem["type"] == "https://ehub.dev/problems/not-order-party", problem
    assert problem["status"] == 403
    assert problem["event_id"] == env.event_id  # the sender dead-letters that one event
    assert problem["hub"] == hub and problem["order_id"] in problem["detail"]
    assert hub in problem["detail"]


# -- a third hub --------------------------------------------------------------------------

THIRD_HUB_EVENTS = {
    "accepted-our-purchase": (orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT),
    "ships-our-purchase": (
        logistics_pb2.ShipmentBooked(order_id=BOUGHT, shipment_id="shp_x"),
        BOUGHT,
    ),
    "tracks-our-purchase": (
        logistics_pb2.ShipmentEvent(
            order_id=BOUGHT, status=logistics_pb2.SHIPMENT_STATUS_IN_TRANSIT
        ),
        BOUGHT,
    ),
    "delivers-our-purchase": (logistics_pb2.DeliveryConfirmed(order_id=BOUGHT), BOUGHT),
    "cancels-our-sale": (orders_pb2.OrderCancelled(order_id=SOLD), SOLD),
    "returns-our-sale": (orders_pb2.ReturnRequested(order_id=SOLD), SOLD),
    "clears-our-sale": (customs_pb2.ClearanceDecided(order_id=SOLD), SOLD),
    "order-id-only-in-subject": (orders_pb2.OrderRejected(), SOLD),
    "an-order-nobody-has": (orders_pb2.OrderAccepted(order_id="ord_nobody"), "ord_nobody"),
    "re-places-our-sale": (placed(SOLD, buyer="MY"), SOLD),
}


@pytest.mark.parametrize("case", sorted(THIRD_HUB_EVENTS))
async def test_a_third_hub_speaking_of_an_order_is_403_and_changes_nothing(hub, case) -> None:
    app, client, keys = hub
    payload, order_id = THIRD_HUB_EVENTS[case]
    envelope = sealed(keys["MY"], payload, order_id)
    before = await table_counts(app)
    response = await post(client, keys["MY"], envelope)
    assert_not_order_party(response, envelope, "MY")
    assert response.json()["order_id"] == order_id
    assert await table_counts(app) == before


async def test_a_third_hub_learns_nothing_about_our_orders_from_the_refusal(hub) -> None:
    _, client, keys = hub
    ours = await post(client, keys["MY"], sealed(keys["MY"], orders_pb2.OrderAccepted(), SOLD))
    nobodys = await post(
        client, keys["MY"], sealed(keys["MY"], orders_pb2.OrderAccepted(), "ord_nobody")
    )
    assert ours.json()["detail"].replace(SOLD, "X") == nobodys.json()["detail"].replace(
        "ord_nobody", "X"
    )


# -- the rightful peer --------------------------------------------------------------------


async def test_the_orders_other_hub_is_still_heard(hub) -> None:
    app, client, keys = hub
    cn = keys["CN"]
    events = [
        sealed(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT),
        sealed(cn, logistics_pb2.ShipmentBooked(order_id=BOUGHT, shipment_id="s"), BOUGHT),
        sealed(cn, logistics_pb2.DeliveryConfirmed(order_id=BOUGHT), BOUGHT),
        sealed(cn, orders_pb2.OrderCancelled(order_id=SOLD), SOLD),
        sealed(cn, orders_pb2.ReturnRequested(order_id=SOLD), SOLD),
        sealed(cn, placed(SOLD), SOLD),  # a repeat of the OrderPlaced that made SOLD
    ]
    before = await table_counts(app)
    response = await post(client, cn, *events)
    assert outcomes(response) == [ACCEPTED] * len(events)
    after = await table_counts(app)
    assert after["fed_received"] == before["fed_received"] + len(events)
    assert after["ehub_nonces"] == before["ehub_nonces"] + 1


# -- OrderPlaced ----------------------------------------------------------------------------

WRONG_PLACEMENTS = {
    "names-another-seller-hub": (placed("ord_new", seller="MY"), "ord_new"),
    "names-another-buyer-hub": (placed("ord_new", buyer="MY"), "ord_new"),
    "names-no-hubs": (orders_pb2.OrderPlaced(order_id="ord_new"), "ord_new"),
    "keyed-under-another-order": (placed("ord_new"), SOLD),
    "claims-an-order-we-buy": (placed(BOUGHT), BOUGHT),
}


@pytest.mark.parametrize("case", sorted(WRONG_PLACEMENTS))
async def test_an_order_placed_not_between_its_sender_and_us_is_refused(hub, case) -> None:
    app, client, keys = hub
    payload, subject = WRONG_PLACEMENTS[case]
    envelope = sealed(keys["CN"], payload, subject)
    before = await table_counts(app)
    response = await post(client, keys["CN"], envelope)
    assert_not_order_party(response, envelope, "CN")
    assert await table_counts(app) == before


async def test_a_new_order_belongs_to_the_hub_that_placed_it_before_the_saga_makes_it(
    hub,
) -> None:
    app, client, keys = hub
    cn, my = keys["CN"], keys["MY"]
    first = sealed(cn, placed("ord_new"), "ord_new")
    assert outcomes(await post(client, cn, first)) == [ACCEPTED]
    # The saga has not made the order yet (no broker here); the OrderPlaced stands for it.
    async with app.state.ctx.db.reader() as session:
        assert await session.get(Order, "ord_new") is None
    cancel = sealed(cn, orders_pb2.OrderCancelled(order_id="ord_new"), "ord_new")
    assert outcomes(await post(client, cn, cancel)) == [ACCEPTED]
    again = sealed(cn, placed("ord_new"), "ord_new")  # the same order, another event id
    assert outcomes(await post(client, cn, first, again)) == [DUPLICATE, ACCEPTED]

    before = await table_counts(app)
    for payload in (orders_pb2.OrderCancelled(order_id="ord_new"), placed("ord_new", "MY")):
        envelope = sealed(my, payload, "ord_new")
        assert_not_order_party(await post(client, my, envelope), envelope, "MY")
    assert await table_counts(app) == before


async def test_an_order_placed_and_spoken_of_in_one_batch_is_accepted(hub) -> None:
    _, client, keys = hub
    cn = keys["CN"]
    response = await post(
        client,
        cn,
        sealed(cn, placed("ord_batch"), "ord_batch"),
        sealed(cn, orders_pb2.OrderCancelled(order_id="ord_batch"), "ord_batch"),
    )
    assert outcomes(response) == [ACCEPTED, ACCEPTED]


# -- batches and groups -------------------------------------------------------------------


async def test_one_foreign_event_refuses_its_batch_naming_it_and_the_rest_goes_again(
    hub,
) -> None:
    app, client, keys = hub
    cn = keys["CN"]
    good = sealed(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT)
    foreign = sealed(cn, orders_pb2.OrderAccepted(order_id="ord_of_others"), "ord_of_others")
    before = await table_counts(app)
    response = await post(client, cn, good, foreign)
    assert_not_order_party(response, foreign, "CN")
    assert await table_counts(app) == before
    # What the sender does next (federation/delivery.py): the named event is dead-lettered,
    # the others are sent again at once, and are accepted.
    assert outcomes(await post(client, cn, good)) == [ACCEPTED]


async def test_a_refused_request_does_not_hold_back_the_others_of_its_ingest_group(hub) -> None:
    app, client, keys = hub
    cn, my = keys["CN"], keys["MY"]
    goods = [(cn, sealed(cn, placed(f"ord_g{i}"), f"ord_g{i}")) for i in range(12)]
    bad = (my, sealed(my, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT))
    requests = [*goods[:6], bad, *goods[6:]]
    before = await table_counts(app)
    answers = await asyncio.gather(*(post(client, key, env) for key, env in requests))
    assert [a.status_code for a in answers] == [200] * 6 + [403] + [200] * 6
    assert all(outcomes(a) == [ACCEPTED] for i, a in enumerate(answers) if i != 6)
    after = await table_counts(app)
    # Twelve requests recorded, nonce and all; the refused one kept nothing.
    assert after["ehub_nonces"] == before["ehub_nonces"] + 12
    assert after["fed_received"] == before["fed_received"] + 12
    async with app.state.ctx.db.reader() as session:
        kids = (await session.scalars(select(NonceRecord.key_id))).all()
    assert my.kid not in kids


async def test_an_order_event_whose_payload_does_not_decode_is_rejected_in_the_receipt(
    hub,
) -> None:
    _, client, keys = hub
    cn = keys["CN"]
    good = SignedEnvelope.FromString(sealed(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT))
    env = Envelope.FromString(good.envelope)
    env.payload = b"\xff\xff\xff"  # not an OrderAccepted: which order it is about is unknown
    data = env.SerializeToString()
    broken = SignedEnvelope(
        envelope=data, key_id=cn.kid, signature=sign_detached(ENVELOPE_CONTEXT, data, cn)
    ).SerializeToString()
    response = await post(client, cn, broken)
    receipt = Receipt.FromString(SignedReceipt.FromString(response.content).receipt)
    assert [(e.outcome, e.reason_code) for e in receipt.entries] == [
        (REJECTED, "malformed_payload")
    ]


# -- the backbone -------------------------------------------------------------------------


def backbone_of(app: Any) -> Backbone:
    fed = app.state.fed
    return Backbone(
        settings=fed.settings, trust=fed.trust, delivery=fed.delivery, writer=fed.writer
    )


def on_topic(envelope: bytes, source: str) -> Message:
    env = read_unverified(envelope)
    headers = (
        ("event_id", env.event_id.encode()),
        ("kind", b"envelope"),
        ("source_hub", source.encode()),
    )
    return Message("ehub.fed.ca", envelope, env.subject.encode(), headers)


async def test_over_the_backbone_a_third_hubs_event_is_dropped_and_nothing_written(hub) -> None:
    app, _, keys = hub
    backbone = backbone_of(app)
    my, cn = keys["MY"], keys["CN"]
    before = await table_counts(app)
    for payload, subject in (
        (orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT),
        (placed("ord_k", seller="MY"), "ord_k"),
    ):
        await backbone.handle(on_topic(sealed(my, payload, subject), "MY"))
    # Refused as every 403 is on this path: no receipt (nothing is enqueued for MY), no
    # inbox entry, nothing received; logged and counted (outcome "forbidden").
    assert await table_counts(app) == before

    rightful = sealed(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT)
    await backbone.handle(on_topic(rightful, "CN"))
    after = await table_counts(app)
    assert after["fed_received"] == before["fed_received"] + 1
    async with app.state.ctx.db.reader() as session:
        receipts = await session.scalar(
            text("SELECT count(*) FROM ehub_outbox WHERE topic = 'ehub.fed.cn'")
        )
        orders = await session.scalar(select(func.count()).select_from(Order))
    assert receipts == 1 and orders == 2  # CN's receipt is on its way; no order was made


async def test_a_backbone_fetch_with_refused_events_records_the_rest_each_once(hub) -> None:
    # handle_batch (what one fetch brings): a third hub's event about our order is
    # dropped unreceipted; a forged one is answered REJECTED; CN's two events in the same
    # fetch are recorded together, each with a receipt of its own; a copy of one later in
    # the fetch is a duplicate (receipted again, recorded once).
    import contextlib

    app, _, keys = hub
    backbone = backbone_of(app)
    my, cn = keys["MY"], keys["CN"]
    before = await table_counts(app)
    first = sealed(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT)
    second = sealed(cn, logistics_pb2.ShipmentBooked(order_id=BOUGHT, shipment_id="s"), BOUGHT)
    intruder = sealed(my, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT)
    forged = bytearray(sealed(cn, orders_pb2.OrderRejected(order_id=BOUGHT), BOUGHT))
    forged[-3] ^= 0xFF  # inside the signature
    spans: list[str] = []

    @contextlib.contextmanager
    def span(message: Message):
        spans.append(message.header("event_id") or "")
        yield

    fetch = [
        on_topic(first, "CN"),
        on_topic(intruder, "MY"),
        on_topic(bytes(forged), "CN"),
        on_topic(second, "CN"),
        on_topic(first, "CN"),
    ]
    await backbone.handle_batch(fetch, span)
    after = await table_counts(app)
    assert after["fed_received"] == before["fed_received"] + 2
    async with app.state.ctx.db.reader() as session:
        receipts = await session.scalar(
            text("SELECT count(*) FROM ehub_outbox WHERE topic = 'ehub.fed.cn'")
        )
        to_my = await session.scalar(
            text("SELECT count(*) FROM ehub_outbox WHERE topic = 'ehub.fed.my'")
        )
    assert receipts == 4 and to_my == 0  # one per CN message; none for the intruder
    assert len(spans) == len(fetch)  # each message verified in its own trace


async def test_a_signed_event_without_its_required_fields_is_rejected_and_nothing_written(
    hub,
) -> None:
    # An empty KeyRevoked, signed by a trusted peer, used to be accepted and republished.
    from ehub_core.proto.ehub.v1 import catalog_pb2, trust_pb2

    app, client, keys = hub
    cn = keys["CN"]
    before = await table_counts(app)
    empty = [
        sealed(cn, trust_pb2.KeyRevoked(), "CN"),
        sealed(cn, trust_pb2.KeyPublished(hub_id="CN"), "CN"),
        sealed(cn, catalog_pb2.ProductListed(listing=catalog_pb2.Listing(product_id="p")), "p"),
        sealed(cn, catalog_pb2.ProductDelisted(version=2), "p"),
    ]
    response = await post(client, cn, *empty)
    assert response.status_code == 200, response.text
    receipt = Receipt.FromString(SignedReceipt.FromString(response.content).receipt)
    assert [(e.outcome, e.reason_code) for e in receipt.entries] == [
        (REJECTED, "malformed_payload")
    ] * len(empty)
    after = await table_counts(app)
    assert after.pop("ehub_nonces") == before.pop("ehub_nonces") + 1  # the request's own
    assert after == before
    # The same types with their fields are accepted.
    good = sealed(cn, trust_pb2.KeyRevoked(hub_id="CN", kid="CN#old"), "CN")
    response = await post(client, cn, good)
    receipt = Receipt.FromString(SignedReceipt.FromString(response.content).receipt)
    assert [e.outcome for e in receipt.entries] == [ACCEPTED]

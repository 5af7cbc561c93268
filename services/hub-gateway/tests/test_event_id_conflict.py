"""A DUPLICATE receipt promises the same event id *and* the same bytes. An event whose id
CA already holds with other content, or from another hub, is REJECTED
``event_id_conflict`` and changes nothing; a true repeat is still a DUPLICATE. Over
signed HTTP, with real keys, through the ingest group writer; and over the backbone,
whose messages take the same path and whose receipts go back through the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ehub_core.envelope import read_unverified
from ehub_core.ids import uuid7
from ehub_core.models import OutboxRecord
from ehub_core.proto.ehub.v1 import orders_pb2
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt, SignedReceipt

from .test_order_party import (
    ACCEPTED,
    BOUGHT,
    DUPLICATE,
    REJECTED,
    SOLD,
    backbone_of,
    hub,  # noqa: F401  (the fixture)
    on_topic,
    post,
    table_counts,
)


def entries(response: Any) -> list[tuple[int, str]]:
    assert response.status_code == 200, response.text
    receipt = Receipt.FromString(SignedReceipt.FromString(response.content).receipt)
    return [(e.outcome, e.reason_code) for e in receipt.entries]


async def test_the_same_id_with_other_bytes_is_a_conflict_not_a_duplicate(hub) -> None:  # noqa: F811
    app, client, keys = hub
    cn = keys["CN"]
    event_id = str(uuid7())
    first = sealed_with(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT, event_id)
    assert entries(await post(client, cn, first)) == [(ACCEPTED, "")]
    before = await table_counts(app)

    other = sealed_with(cn, orders_pb2.OrderCancelled(order_id=SOLD), SOLD, event_id)
    assert read_unverified(other).event_id == event_id
    assert entries(await post(client, cn, other)) == [(REJECTED, "event_id_conflict")]
    assert entries(await post(client, cn, first)) == [(DUPLICATE, "")]  # a true repeat
    after = await table_counts(app)
    assert {k: v for k, v in after.items() if k != "ehub_nonces"} == {
        k: v for k, v in before.items() if k != "ehub_nonces"
    }


async def test_an_id_another_hub_sent_is_a_conflict_for_the_second(hub) -> None:  # noqa: F811
    app, client, keys = hub
    cn, my = keys["CN"], keys["MY"]
    event_id = str(uuid7())
    placed_by_cn = sealed_with(cn, _placed("ord_new", "CN"), "ord_new", event_id)
    assert entries(await post(client, cn, placed_by_cn)) == [(ACCEPTED, "")]
    before = await table_counts(app)
    placed_by_my = sealed_with(my, _placed("ord_mine", "MY"), "ord_mine", event_id)
    assert entries(await post(client, my, placed_by_my)) == [(REJECTED, "event_id_conflict")]
    after = await table_counts(app)
    assert after["fed_received"] == before["fed_received"]
    assert after["ehub_outbox"] == before["ehub_outbox"]


async def test_two_copies_of_one_id_in_a_batch_take_the_first(hub) -> None:  # noqa: F811
    app, client, keys = hub
    cn = keys["CN"]
    event_id = str(uuid7())
    a = sealed_with(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT, event_id)
    b = sealed_with(cn, orders_pb2.OrderCancelled(order_id=SOLD), SOLD, event_id)
    before = await table_counts(app)
    assert entries(await post(client, cn, a, b, a)) == [
        (ACCEPTED, ""),
        (REJECTED, "event_id_conflict"),
        (ACCEPTED, ""),  # the same bytes again: the event that took effect now
    ]
    after = await table_counts(app)
    assert after["fed_received"] == before["fed_received"] + 1


async def test_the_backbone_path_binds_the_bytes_too(hub) -> None:  # noqa: F811
    app, _, keys = hub
    cn = keys["CN"]
    backbone = backbone_of(app)
    event_id = str(uuid7())
    first = sealed_with(cn, orders_pb2.OrderAccepted(order_id=BOUGHT), BOUGHT, event_id)
    other = sealed_with(cn, orders_pb2.OrderCancelled(order_id=SOLD), SOLD, event_id)
    for envelope in (first, other, first):
        await backbone.handle(on_topic(envelope, "CN"))
    async with app.state.ctx.db.reader() as session:
        receipts = (
            await session.scalars(
                select(OutboxRecord.payload)
                .where(OutboxRecord.topic == "ehub.fed.cn")
                .order_by(OutboxRecord.id)
            )
        ).all()
    outcomes = [
        [(e.event_id, e.outcome, e.reason_code) for e in receipt_of(r).entries]
        for r in receipts[-3:]
    ]
    assert outcomes == [
        [(event_id, ACCEPTED, "")],
        [(event_id, REJECTED, "event_id_conflict")],
        [(event_id, DUPLICATE, "")],
    ]


def receipt_of(signed: bytes) -> Receipt:
    return Receipt.FromString(SignedReceipt.FromString(signed).receipt)


def sealed_with(key: Any, payload: Any, subject: str, event_id: str) -> bytes:
    from ehub_core.envelope import seal

    return seal(payload, key, target_hub="CA", subject=subject, event_id=event_id)


def _placed(order_id: str, buyer: str) -> orders_pb2.OrderPlaced:
    return orders_pb2.OrderPlaced(order_id=order_id, buyer_hub=buyer, seller_hub="CA")


async def test_an_event_over_the_size_limit_is_rejected_and_changes_nothing(hub) -> None:  # noqa: F811
    """Republished as it is, an oversized event would stop at the broker and hold back
    every event behind it: it is refused at the door (``max_event_bytes``, 256 KiB)."""
    app, client, keys = hub
    cn = keys["CN"]
    big = orders_pb2.OrderRejected(order_id=BOUGHT, reason_code="x", reason="y" * 300_000)
    small = orders_pb2.OrderAccepted(order_id=BOUGHT)
    before = await table_counts(app)
    response = await post(client, cn, sealed_with(cn, big, BOUGHT, str(uuid7())))
    assert entries(response) == [(REJECTED, "event_too_large")]
    after = await table_counts(app)
    assert after["fed_received"] == before["fed_received"]
    assert after["ehub_outbox"] == before["ehub_outbox"]
    response = await post(client, cn, sealed_with(cn, small, BOUGHT, str(uuid7())))
    assert entries(response) == [(ACCEPTED, "")]

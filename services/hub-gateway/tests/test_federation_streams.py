"""Streams and event types have one home (``ehub_core.streams``); outbox writes go through
core (``enqueue_many``); outbound statuses are an enum; retries wait with full jitter."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import select

from ehub_core.db import Database
from ehub_core.envelope import PAYLOAD_TYPES
from ehub_core.migrations import upgrade
from ehub_core.models import OutboxRecord
from ehub_core.outbox import OUTBOX_DIRTY, NewEvent, enqueue_many
from ehub_core.streams import (
    EVENT_TYPES,
    ORDER_STREAMS,
    RELAYABLE_TYPES,
    STREAMS,
    Encoding,
    Senders,
    fed_topic,
    hub_topic,
)
from ehub_core.testing import serve_in_process
from ehub_gateway.app import create_app
from ehub_gateway.federation.delivery_outcomes import full_jitter
from ehub_gateway.federation.models import DeliveryStatus
from ehub_gateway.settings import GatewaySettings


def test_topic_names() -> None:
    assert hub_topic("CN", "orders") == "ehub.cn.orders"
    assert hub_topic("ca", "saga-replies") == "ehub.ca.saga-replies"
    assert fed_topic("MY") == "ehub.fed.my"


def test_every_event_type_is_a_registered_payload_on_a_known_stream() -> None:
    # The envelope's payload table and the registry name the same types and messages.
    assert {n: t.message for n, t in EVENT_TYPES.items()} == dict(PAYLOAD_TYPES)
    assert all(t.stream in STREAMS for t in EVENT_TYPES.values())
    # Peers' events are republished as signed envelopes: their streams carry that encoding.
    assert all(
        Encoding.SIGNED_ENVELOPE in STREAMS[t.stream].encodings for t in EVENT_TYPES.values()
    )
    assert {"orders", "customs", "shipments"} == ORDER_STREAMS
    assert {n for n, t in EVENT_TYPES.items() if t.senders is Senders.ANY_PEER} == {
        "KeyPublished",
        "KeyRevoked",
        "ProductListed",  # a hub speaks of its own products: the envelope's source
        "ProductUpdated",
        "ProductDelisted",
    }
    assert "OrderPlaced" in RELAYABLE_TYPES and "KeyRevoked" not in RELAYABLE_TYPES
    # One encoding per stream: peers' signed events and this hub's own JSON (tracking,
    # officers' decisions) travel on topics of their own (docs/federation-wire.md).
    assert [s.name for s in STREAMS.values() if s.mixed] == []
    assert STREAMS["tracking"].encodings == STREAMS["clearance"].encodings == (Encoding.JSON,)


def test_full_jitter_stays_within_its_bounds_and_uses_all_of_them() -> None:
    rng = random.Random(20261202)
    for attempt, ceiling in ((0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (40, 30.0)):
        waits = [full_jitter(attempt, base=0.5, cap=30.0, rng=rng) for _ in range(2000)]
        assert all(0 <= w <= ceiling for w in waits), attempt
        # Full jitter, not "half to full": a good share of waits are below half the ceiling,
        # and they reach near both ends.
        assert sum(w < ceiling / 2 for w in waits) > 800
        assert min(waits) < ceiling * 0.01 and max(waits) > ceiling * 0.99


def test_delivery_status_values_are_the_stored_strings() -> None:
    assert [s.value for s in DeliveryStatus] == ["pending", "sent", "receipted", "dead"]
    assert DeliveryStatus("dead") is DeliveryStatus.DEAD


async def test_enqueue_many_writes_every_event_in_the_transaction(tmp_path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    await upgrade(db, "ehub_gateway.migrations")
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            ids = await enqueue_many(
                session,
                [
                    NewEvent("ehub.ca.orders", "OrderPlaced", b"\x01\x02", key="ord_1"),
                    NewEvent(
                        "ehub.ca.tracking",
                        "ShipmentEvent",
                        {"n": 1},
                        event_id="e-2",
                        headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
                    ),
                ],
                current_trace=False,
                now=now,
            )
            assert session.info[OUTBOX_DIRTY] is True
            assert await enqueue_many(session, []) == []
        async with db.reader() as session:
            rows = (await session.scalars(select(OutboxRecord).order_by(OutboxRecord.id))).all()
    finally:
        await db.dispose()
    assert ids[1] == "e-2" and len(set(ids)) == 2
    assert [(r.event_id, r.topic, r.key, r.payload) for r in rows] == [
        (ids[0], "ehub.ca.orders", "ord_1", b"\x01\x02"),
        ("e-2", "ehub.ca.tracking", None, b'{"n": 1}'),
    ]
    assert rows[0].headers == {"event_id": ids[0], "event_type": "OrderPlaced"}
    assert rows[1].headers["traceparent"].startswith("00-111")
    assert all(r.sent_at is None and r.attempts == 0 for r in rows)


async def test_the_internal_api_refuses_a_type_that_is_not_relayable(tmp_path) -> None:
    settings = GatewaySettings(hub_id="CA", var_dir=tmp_path, internal_token="t" * 32)
    app = create_app(settings)
    event = {"type": "KeyRevoked", "target_hub": "CN", "subject": "k", "payload": {}}
    async with serve_in_process(app) as client:
        r = await client.post(
            "/internal/v1/events",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {'t' * 32}"},
        )
        async with app.state.ctx.db.reader() as s:
            outbound = (await s.execute(select(OutboxRecord.id))).all()
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "events.0.type" in {e["field"] for e in r.json()["errors"]}
    assert outbound == []

"""Signed ingest commits many requests together; each still gets its own answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from ehub_core.db import Database
from ehub_core.envelope import seal
from ehub_core.migrations import upgrade
from ehub_core.models import NonceRecord
from ehub_core.proto.ehub.v1.envelope_pb2 import EnvelopeBatch
from ehub_core.proto.ehub.v1.orders_pb2 import OrderPlaced
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt, ReceiptOutcome, SignedReceipt
from ehub_core.signing import KeyRing, sign_request
from ehub_core.testing import serve_in_process
from ehub_gateway.app import create_app
from ehub_gateway.federation.models import ReceivedEvent
from ehub_gateway.federation.trust import add_peer
from ehub_gateway.federation.wellknown import build_document
from ehub_gateway.settings import GatewaySettings

URL = "http://testserver/federation/v1/events"


async def ca_gateway_trusting_cn(tmp_path, database_url):
    cn = KeyRing(tmp_path / "cn-keys", "CN")
    key = cn.ensure_active()
    db = Database(database_url)
    await upgrade(db, "ehub_gateway.migrations")
    doc = build_document(
        hub_id="CN",
        name="CN",
        base_url="http://cn.invalid",
        keys=[key.public_info],
        signers=[key],
        now=datetime.now(UTC),
    )
    await add_peer(
        db, own_hub="CA", base_url="http://cn.invalid", fingerprint=key.fingerprint, document=doc
    )
    await db.dispose()
    app = create_app(GatewaySettings(hub_id="CA", var_dir=tmp_path, database_url=database_url))
    return app, key


def placed(order_id: str) -> OrderPlaced:
    return OrderPlaced(order_id=order_id, buyer_hub="CN", seller_hub="CA")


def signed_request(key, subjects):
    body = EnvelopeBatch(
        envelopes=[seal(placed(s), key, target_hub="CA", subject=s) for s in subjects]
    ).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    headers |= sign_request("POST", URL, headers, body, key, "CN")
    return body, headers


def outcomes(response) -> list[int]:
    receipt = Receipt.FromString(SignedReceipt.FromString(response.content).receipt)
    return [e.outcome for e in receipt.entries]


async def test_concurrent_requests_each_get_their_receipt(tmp_path, database_url):
    app, key = await ca_gateway_trusting_cn(tmp_path, database_url)
    requests = [signed_request(key, [f"ord_{i}_a", f"ord_{i}_b"]) for i in range(40)]
    async with serve_in_process(app) as client:
        answers = await asyncio.gather(
            *(client.post("/federation/v1/events", content=b, headers=h) for b, h in requests)
        )
        async with app.state.ctx.db.reader() as s:
            received = await s.scalar(select(func.count()).select_from(ReceivedEvent))
            nonces = await s.scalar(select(func.count()).select_from(NonceRecord))
    assert [a.status_code for a in answers] == [200] * 40
    accepted = ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED
    assert all(outcomes(a) == [accepted, accepted] for a in answers)
    assert received == 80 and nonces == 40


async def test_same_request_sent_concurrently_is_accepted_once(tmp_path, database_url):
    app, key = await ca_gateway_trusting_cn(tmp_path, database_url)
    body, headers = signed_request(key, ["ord_once"])
    async with serve_in_process(app) as client:
        answers = await asyncio.gather(
            *(
                client.post("/federation/v1/events", content=body, headers=headers)
                for _ in range(10)
            )
        )
        async with app.state.ctx.db.reader() as s:
            received = await s.scalar(select(func.count()).select_from(ReceivedEvent))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [401] * 9
    assert {a.json()["reason"] for a in answers if a.status_code == 401} == {"replayed_nonce"}
    assert received == 1


async def test_an_event_in_two_concurrent_requests_takes_effect_once(tmp_path, database_url):
    app, key = await ca_gateway_trusting_cn(tmp_path, database_url)
    envelope = seal(placed("ord_shared"), key, target_hub="CA", subject="ord_shared")
    bodies = []
    for _ in range(2):
        body = EnvelopeBatch(envelopes=[envelope]).SerializeToString()
        headers = {"Content-Type": "application/x-protobuf"}
        headers |= sign_request("POST", URL, headers, body, key, "CN")  # fresh nonce each
        bodies.append((body, headers))
    async with serve_in_process(app) as client:
        answers = await asyncio.gather(
            *(client.post("/federation/v1/events", content=b, headers=h) for b, h in bodies)
        )
        async with app.state.ctx.db.reader() as s:
            received = await s.scalar(select(func.count()).select_from(ReceivedEvent))
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(outcomes(a)[0] for a in answers) == [
        ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED,
        ReceiptOutcome.RECEIPT_OUTCOME_DUPLICATE,
    ]
    assert received == 1

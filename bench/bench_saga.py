"""The order saga's consumer alone: messages handled per second, in process.

CN holds ``EHUB_BENCH_ORDERS`` buyer-side orders in transit; the benchmark feeds the
saga ``EHUB_BENCH_EVENTS`` signed ``ShipmentEvent``s from CA about them (each a real
transition: inbox row, timeline step, webhook fan-out check) the way the consumer loop
hands them over, in batches of ``EHUB_BENCH_BATCH`` (what one ``getmany`` returns), and
reports messages/s, once a message per transaction (``Saga.handle``) and once a batch per
transaction (``Saga.handle_batch``, what the consumer does), each on a fresh database.
``EHUB_BENCH_POSTGRES`` (a server URL) adds a Postgres run.

No broker and no HTTP: this is the bound the consumer itself puts on the order flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import report

from ehub_core.bus import Message
from ehub_core.db import Database
from ehub_core.envelope import read_unverified, seal
from ehub_core.migrations import upgrade
from ehub_core.proto.ehub.v1 import logistics_pb2
from ehub_core.signing import HubKey
from ehub_gateway.orders.models import Order
from ehub_gateway.saga.runner import Saga

ORDERS = int(os.environ.get("EHUB_BENCH_ORDERS", "200"))
EVENTS = int(os.environ.get("EHUB_BENCH_EVENTS", "2000"))
BATCH = int(os.environ.get("EHUB_BENCH_BATCH", "100"))


def _order(order_id: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        id=order_id,
        role="buyer",
        state="in_transit",
        buyer_hub="CN",
        seller_hub="CA",
        seller_id="sel_1",
        buyer_ref="b" * 64,
        ship_to={"country": "CN"},
        lines=[],
        currency="CNY",
        seller_currency="CAD",
        money={},
        shipping={"carrier": "postal", "service": "surface_parcel"},
        declarations={},
        shipment={"shipment_id": f"shp_{order_id}", "carrier": "postal"},
        created_at=now,
        updated_at=now,
    )


def _messages(order_ids: list[str]) -> list[Message]:
    now = datetime.now(UTC)
    key = HubKey.generate(
        kid="CA#bench", not_before=now - timedelta(days=1), not_after=now + timedelta(days=1)
    )
    out = []
    for i in range(EVENTS):
        oid = order_ids[i % len(order_ids)]
        event = logistics_pb2.ShipmentEvent(
            order_id=oid,
            shipment_id=f"shp_{oid}",
            carrier="postal",
            tracking_number="T1",
            status=logistics_pb2.SHIPMENT_STATUS_IN_TRANSIT,
        )
        data = seal(event, key, target_hub="CN", subject=oid)
        headers = (
            ("event_id", read_unverified(data).event_id.encode()),
            ("content-type", b"application/x-protobuf"),
        )
        out.append(Message("ehub.cn.shipments", data, oid.encode(), headers))
    return out


async def run(url: str, *, batched: bool = True) -> dict:
    db = Database(url)
    try:
        await upgrade(db, "ehub_gateway.migrations")
        ids = [f"ord_{uuid.uuid4().hex[:20]}" for _ in range(ORDERS)]
        async with db.transaction() as session:
            session.add_all([_order(o) for o in ids])
        messages = _messages(ids)
        saga = Saga(db, "CN", key=lambda: None)
        started = time.perf_counter()
        for i in range(0, len(messages), BATCH):
            chunk = messages[i : i + BATCH]
            if batched:
                await saga.handle_batch(chunk, lambda m: contextlib.nullcontext())
            else:
                for m in chunk:
                    await saga.handle(m)
        seconds = time.perf_counter() - started
        return {"messages": len(messages), "per_s": round(len(messages) / seconds, 1)}
    finally:
        await db.dispose()


def main() -> None:
    result: dict = {"batch": BATCH}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("per_message", "batched"):
            url = f"sqlite+aiosqlite:///{Path(tmp) / mode}.db"
            result[f"sqlite_{mode}"] = asyncio.run(run(url, batched=mode == "batched"))
    pg = os.environ.get("EHUB_BENCH_POSTGRES")
    if pg:
        import asyncpg

        name = f"bench_saga_{uuid.uuid4().hex[:8]}"

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(pg)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        base = pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        for mode in ("per_message", "batched"):
            asyncio.run(admin(f"CREATE DATABASE {name}_{mode}"))
            try:
                url = f"{base}/{name}_{mode}"
                result[f"postgres_{mode}"] = asyncio.run(run(url, batched=mode == "batched"))
            finally:
                asyncio.run(admin(f"DROP DATABASE {name}_{mode} WITH (FORCE)"))
    report("saga", result)


if __name__ == "__main__":
    main()

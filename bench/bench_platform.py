"""Platform benchmarks.

1. A service's ``/healthz`` (full middleware stack: metrics, tracing, problem handlers)
   vs a bare FastAPI app, same run, same core, same load generator.
2. Outbox relay events/s (SQLite and, if EHUB_TEST_POSTGRES_URL is set, Postgres) vs a
   raw aiokafka producer (acks=all) on the same embedded broker.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, report, server, uvicorn_cmd, wrk

from ehub_core.broker import EmbeddedBroker
from ehub_core.bus import KafkaBus, Message
from ehub_core.db import Database
from ehub_core.migrations import upgrade
from ehub_core.outbox import OutboxRelay, enqueue

N_EVENTS = 20_000
PAYLOAD = {
    "order_id": "ord_0193",
    "amount": "129.90",
    "currency": "CNY",
    "lines": 3,
    "note": "x" * 200,
}


def bench_healthz() -> dict:
    bare_port, svc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as var:
        env = {"EHUB_VAR_DIR": var, "EHUB_HUB_ID": "CN"}
        with server(
            uvicorn_cmd("bare_app:app", bare_port),
            bare_port,
            env={"PYTHONPATH": str(Path(__file__).parent)},
        ) as bare:
            bare_r = wrk(bare + "/healthz")
        cmd = [sys.executable, "-m", "ehub_cli", "serve", "catalog", "--port", str(svc_port)]
        with server(cmd, svc_port, env=env) as svc:
            svc_r = wrk(svc + "/healthz")
    return {
        "bare_fastapi": bare_r,
        "catalog_healthz": svc_r,
        "ratio": round(svc_r["rps"] / bare_r["rps"], 3),
    }


async def raw_producer(bootstrap: str, topic: str) -> float:
    bus = KafkaBus(bootstrap)
    import json

    body = json.dumps(PAYLOAD).encode()
    msgs = [
        Message(
            topic=topic,
            value=body,
            key=f"ord_{i % 97}".encode(),
            headers=(("event_id", str(uuid.uuid4()).encode()),),
        )
        for i in range(N_EVENTS)
    ]
    await bus.start()
    start = time.perf_counter()
    for i in range(0, N_EVENTS, 500):
        await bus.publish(msgs[i : i + 500])
    elapsed = time.perf_counter() - start
    await bus.stop()
    return N_EVENTS / elapsed


async def relay_rate(url: str, bootstrap: str, topic: str) -> float:
    db = Database(url)
    await upgrade(db, "ehub_catalog.migrations")
    for i in range(0, N_EVENTS, 1000):
        async with db.transaction() as s:
            for j in range(1000):
                await enqueue(
                    s,
                    topic=topic,
                    event_type="OrderPlaced",
                    payload=PAYLOAD,
                    key=f"ord_{(i + j) % 97}",
                )
    bus = KafkaBus(bootstrap)
    await bus.start()
    relay = OutboxRelay(db, bus, batch_size=2000)
    start = time.perf_counter()
    sent = 0
    while sent < N_EVENTS:
        sent += await relay.publish_pending()
    elapsed = time.perf_counter() - start
    await bus.stop()
    await db.dispose()
    return N_EVENTS / elapsed


async def bench_relay() -> dict:
    out: dict = {"events": N_EVENTS}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        raw = await raw_producer(broker.bootstrap, "bench.raw")
        out["raw_aiokafka_events_per_s"] = round(raw)
        sqlite = await relay_rate(
            f"sqlite+aiosqlite:///{tmp}/relay.db", broker.bootstrap, "bench.relay.sqlite"
        )
        out["relay_sqlite_events_per_s"] = round(sqlite)
        out["ratio_sqlite"] = round(sqlite / raw, 3)
        pg_admin = os.environ.get("EHUB_TEST_POSTGRES_URL")
        if pg_admin:
            import asyncpg

            name = f"ehub_bench_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(pg_admin)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            base = pg_admin.rsplit("/", 1)[0].split("://", 1)[1]
            pg = await relay_rate(
                f"postgresql+asyncpg://{base}/{name}", broker.bootstrap, "bench.relay.pg"
            )
            out["relay_postgres_events_per_s"] = round(pg)
            out["ratio_postgres"] = round(pg / raw, 3)
    return out


def main() -> None:
    report("platform_healthz", bench_healthz())
    report("platform_outbox_relay", asyncio.run(bench_relay()))


if __name__ == "__main__":
    main()

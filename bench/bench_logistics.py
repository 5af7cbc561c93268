"""Logistics benchmarks (docs/logistics.md).

(a) pricing alone, in process: rate requests/s across the three simulators, 2 parcels;
(b) ``POST /v1/rates`` (3 carriers, 2 parcels) on the logistics app vs a bare FastAPI
    POST of the same body in the same run, each under uvicorn with one worker on core 0,
    loaded by wrk on core 1 (goal >= 0.5x). For scale, the same run also measures the
    platform floor: an echo POST mounted on the logistics app (same middleware, tracing
    and metrics as every service route, no logistics work);
(c) carrier webhook ingest events/s: signed deliveries (one event each, and batches of
    eight) for booked shipments, sent by an httpx load generator on core 1 with 16
    requests in flight; every event is verified, deduplicated, replayed through the
    state machine and written with its outbox row (SQLite, the default store).
Prints one JSON document (and writes var/bench/logistics.json).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bare_baseline, free_port, post_script, report, server, uvicorn_cmd, wrk

from ehub_logistics.carriers.registry import load_carriers
from ehub_logistics.carriers.simulators import express
from ehub_logistics.carriers.simulators.adapter import SimulatorAdapter
from ehub_logistics.carriers.simulators.engine import WebhookDelivery
from ehub_logistics.shipments.schemas import RateRequestIn

RATES_BODY = {
    "origin": {"country": "CA", "postal_code": "B3H 1A1"},
    "destination": {"country": "CN", "postal_code": "518000"},
    "parcels": [
        {"weight": "1.2", "length": 30, "width": 20, "height": 10},
        {"weight": "12", "length": 60, "width": 40, "height": 40},
    ],
    "declared_value": {"amount": "180.00", "currency": "USD"},
}
SHIPMENT_BODY = {
    "carrier": "express",
    "service": "express_worldwide",
    "shipper": {"country": "CA", "city": "Halifax", "name": "Maritime Lobster Co",
                "postal_code": "B3H 1A1", "street": ["1 Harbour Rd"]},
    "recipient": {"country": "CN", "city": "Shenzhen", "name": "Li Lei",
                  "postal_code": "518000", "street": ["8 Nanshan Ave"]},
    "parcels": [{"weight": "2", "length": 30, "width": 20, "height": 10}],
    "customs": {"items": [{"description": "Live lobster", "hs_code": "030632", "quantity": 2,
                           "unit_value": "45.00", "origin_country": "CA"}],
                "currency": "USD", "incoterm": "DDP"},
}  # fmt: skip
SHIPMENTS_PER_MODE = 300
IN_FLIGHT = 16


def floor_app() -> Any:
    """The logistics app plus a bench-only echo route: what any traced POST costs."""
    from ehub_core.settings import load_settings
    from ehub_logistics.app import create_app
    from ehub_logistics.settings import LogisticsSettings

    app = create_app(load_settings(LogisticsSettings))

    @app.post("/bench/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    return app


def pricing_qps(seconds: float = 3.0) -> dict:
    registry = load_carriers(SimpleNamespace())
    request = RateRequestIn.model_validate(RATES_BODY).to_request(date(2026, 3, 2))
    adapters = [a for a in registry if isinstance(a, SimulatorAdapter)]

    def once() -> int:
        return sum(len(a.carrier.quote(request).quotes) for a in adapters)

    quotes = once()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            once()
        n += 200
    elapsed = time.perf_counter() - start
    return {"rate_requests_per_s": round(n / elapsed), "quotes_per_request": quotes}


def _pin_to_core(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


async def _run_all(client: httpx.AsyncClient, jobs: list, in_flight: int) -> list[httpx.Response]:
    queue: asyncio.Queue = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    responses: list[httpx.Response] = []

    async def worker() -> None:
        while not queue.empty():
            method, path, kwargs = queue.get_nowait()
            responses.append(await client.request(method, path, **kwargs))

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return responses


def _deliveries(numbers: list[str], per_delivery: int) -> list[WebhookDelivery]:
    """The whole 'delivered' journey of each shipment, signed by the express key the
    service trusts (both sides derive it from the default simulator seed)."""
    carrier = express.create(SimpleNamespace()).carrier
    script = express.SCENARIOS["delivered"]
    booked_at = datetime.now(UTC) - timedelta(days=3)
    journeys = []
    for number in numbers:
        events = [
            carrier.native_event(
                number,
                step.code,
                booked_at + timedelta(hours=step.after_hours),
                country="CA" if step.at == "origin" else "CN",
                place="Halifax" if step.at == "origin" else "Shenzhen",
                event_id=f"{number}-{i}",
            )
            for i, step in enumerate(script)
        ]
        journeys.append([events[i : i + per_delivery] for i in range(0, len(events), per_delivery)])
    # Interleave shipments: step 1 of every shipment, then step 2, ... as carriers send.
    rounds = max(len(j) for j in journeys)
    return [carrier.deliver(j[r]) for r in range(rounds) for j in journeys if r < len(j)]


async def ingest_rate(url: str, in_flight: int = IN_FLIGHT) -> dict:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        book = [("POST", "/v1/shipments", {"json": SHIPMENT_BODY})] * (2 * SHIPMENTS_PER_MODE)
        booked = await _run_all(client, book, 8)
        assert all(r.status_code == 201 for r in booked), booked[0].text
        numbers = [r.json()["tracking_number"] for r in booked]
        ids = [r.json()["id"] for r in booked]
        out = {}
        half = SHIPMENTS_PER_MODE
        for label, per, chunk, chunk_ids in (
            ("one_event_per_delivery", 1, numbers[:half], ids[:half]),
            ("eight_events_per_delivery", 8, numbers[half:], ids[half:]),
        ):
            deliveries = _deliveries(chunk, per)
            jobs = [("POST", d.path, {"content": d.body, "headers": d.headers}) for d in deliveries]
            start = time.perf_counter()
            responses = await _run_all(client, jobs, in_flight)
            elapsed = time.perf_counter() - start
            assert all(r.status_code == 200 for r in responses), responses[0].text
            accepted = sum(r.json()["accepted"] for r in responses)
            anomalies = sum(len(r.json()["anomalies"]) for r in responses)
            reads = await _run_all(
                client, [("GET", f"/v1/shipments/{i}", {}) for i in chunk_ids], 8
            )
            out[label] = {
                "deliveries": len(deliveries),
                "events": accepted + anomalies,
                "accepted": accepted,
                # Steps of one shipment racing each other: refused on arrival, applied
                # once the earlier step lands (the final states below prove it).
                "anomalies_on_arrival": anomalies,
                "shipments_delivered": sum(r.json()["status"] == "delivered" for r in reads),
                "shipments": len(chunk_ids),
                "seconds": round(elapsed, 2),
                "events_per_s": round((accepted + anomalies) / elapsed),
                "deliveries_per_s": round(len(deliveries) / elapsed),
            }
        return out


def http(seconds: int = 8) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        script = post_script(tmpdir, RATES_BODY)
        bare = bare_baseline("/echo", seconds=seconds, script=script)
        port = free_port()
        env = {
            "EHUB_VAR_DIR": str(tmpdir / "var"),
            "EHUB_HUB_ID": "CA",
            "EHUB_LOG_LEVEL": "WARNING",
        }
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent)
        with server(
            uvicorn_cmd("bench_logistics:floor_app", port, factory=True), port, env=env
        ) as url:
            floor = wrk(url + "/bench/echo", seconds=seconds, script=script)
            rates = wrk(url + "/v1/rates", seconds=seconds, script=script)
            _pin_to_core(1)
            ingest = asyncio.run(ingest_rate(url))
        pg_ingest = _postgres_ingest(env) if os.environ.get("EHUB_TEST_POSTGRES_URL") else None
    return {
        "bare_fastapi_post": bare,
        "platform_floor_echo_post": floor,
        "logistics_rates_3_carriers_2_parcels": rates,
        "ratio": round(rates["rps"] / bare["rps"], 3) if bare["rps"] else None,
        "goal_ratio": 0.5,
        "floor_ratio": round(floor["rps"] / bare["rps"], 3) if bare["rps"] else None,
        "rates_vs_floor": round(rates["rps"] / floor["rps"], 3) if floor["rps"] else None,
        "webhook_ingest_sqlite": ingest,
        "webhook_ingest_postgres": pg_ingest or "skipped: EHUB_TEST_POSTGRES_URL not set",
    }


def _postgres_ingest(env: dict[str, str]) -> dict:
    """The same ingest run against Postgres, where row locks let shipments proceed
    in parallel instead of queueing on SQLite's single writer."""
    import asyncpg

    admin = os.environ["EHUB_TEST_POSTGRES_URL"]
    name = f"ehub_bench_logistics_{os.getpid()}"

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    base = admin.rsplit("/", 1)[0].split("://", 1)[1]
    port = free_port()
    pg_env = {**env, "EHUB_DATABASE_URL": f"postgresql+asyncpg://{base}/{name}"}
    with server(
        uvicorn_cmd("ehub_logistics.app:create_app", port, factory=True), port, env=pg_env
    ) as url:
        return asyncio.run(ingest_rate(url))


def main() -> None:
    result: dict = {"pricing_in_process": pricing_qps()}
    if "--pricing-only" not in sys.argv:
        result["http"] = http()
    report("logistics", result)


if __name__ == "__main__":
    main()

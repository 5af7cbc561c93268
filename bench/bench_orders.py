"""Cross-border orders end to end on a local two-hub network (CN buys from CA).

Places orders at CN's gateway with a marketplace key for a fixed time at a fixed
concurrency, lets the simulated carriers deliver them, and reads both hubs' timelines
from their databases:

- placement: ``POST /v1/orders`` answered 201 per second (signed live offer from CA,
  landed cost at CN's customs, order + import pre-declaration in one transaction);
- place -> import decision at CN (the customs command and its reply), p50/p99;
- carrier event at CA -> visible in CN's timeline (logistics received it at CA; CN's
  saga recorded it), p50/p99;
- delivered orders per second once the carriers run (bounded by the simulation's step).

Everything (8 services, the broker, this load) shares the machine's cores: the figures
are what one 2-core box does with the whole network on it, not per-service capacity.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
from common import local_network, report

SECONDS = int(os.environ.get("EHUB_BENCH_SECONDS", "20"))
CONCURRENCY = int(os.environ.get("EHUB_BENCH_CONCURRENCY", "16"))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def place_for(
    client: httpx.AsyncClient, url: str, body: dict, key: str, until: float
) -> list[str]:
    made = []
    while time.monotonic() < until:
        resp = await client.post(
            f"{url}/v1/orders",
            json={**body, "partner_reference": uuid.uuid4().hex[:12]},
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex},
        )
        if resp.status_code == 201:
            made.append(resp.json()["id"])
    return made


def steps(db: Path) -> list[tuple[str, str, str, dict]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT order_id, what, at, detail FROM order_steps").fetchall()
    return [(o, w, a, json.loads(d)) for o, w, a, d in rows]


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main() -> None:
    keep = os.environ.get("EHUB_BENCH_VAR")  # a directory to keep the network's state in
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(keep) if keep else Path(tmp) / "var"
        settings = {"EHUB_CARRIER_SIMULATION_INTERVAL": "1", "EHUB_RELAY_POLL_INTERVAL": "0.2"}
        with local_network(var, **settings) as manifest:
            cn = manifest["hubs"]["CN"]["gateway"]["url"]
            ca = manifest["hubs"]["CA"]["gateway"]["url"]
            demo = manifest["demo"]
            seller_key = demo["CA"]["seller_key"]
            product = httpx.post(
                f"{ca}/v1/products",
                json={
                    "seller_id": demo["CA"]["seller_id"],
                    "title": "Maple syrup, 500 ml",
                    "hs_code": "170220",
                    "origin_country": "CA",
                    "price": "12.00",
                    "currency": "CAD",
                    "weight_kg": "0.700",
                    "stock": 1_000_000,
                },
                headers={"Authorization": f"Bearer {seller_key}"},
                timeout=30,
            ).json()["id"]
            body = {
                "seller_hub": "CA",
                "seller_id": demo["CA"]["seller_id"],
                "buyer": {"id": "bench", "identity_number": "110101199003074578"},
                "ship_to": {
                    "name": "Li Wei",
                    "street": ["88 Century Avenue"],
                    "city": "Shanghai",
                    "postal_code": "200120",
                    "country": "CN",
                },
                "lines": [{"product_id": product, "quantity": 1}],
                "currency": "CNY",
            }

            async def load() -> list[str]:
                limits = httpx.Limits(max_connections=CONCURRENCY)
                async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                    until = time.monotonic() + SECONDS
                    parts = await asyncio.gather(
                        *(
                            place_for(client, cn, body, demo["CN"]["marketplace_key"], until)
                            for _ in range(CONCURRENCY)
                        )
                    )
                return [o for part in parts for o in part]

            started = time.monotonic()
            orders = asyncio.run(load())
            placed_rate = len(orders) / (time.monotonic() - started)
            # Let the carriers deliver (10 simulated steps) and the timelines settle.
            deadline = time.monotonic() + 240
            delivered_first = None
            while time.monotonic() < deadline:
                done = [
                    o
                    for o, w, _a, _d in steps(var / "cn" / "gateway.db")
                    if w == "DeliveryConfirmed"
                ]
                if delivered_first is None and done:
                    delivered_first = time.monotonic()
                if len(set(done)) >= len(orders):
                    break
                time.sleep(2)
            delivered = len(
                {o for o, w, _a, _d in steps(var / "cn" / "gateway.db") if w == "DeliveryConfirmed"}
            )
            delivered_rate = delivered / max(
                1e-9, time.monotonic() - (delivered_first or time.monotonic())
            )
            cn_steps = steps(var / "cn" / "gateway.db")
            placed_at = {o: ts(a) for o, w, a, _ in cn_steps if w == "OrderPlaced"}
            decided = [
                (ts(a) - placed_at[o]) * 1000
                for o, w, a, _ in cn_steps
                if w == "ImportDecided" and o in placed_at
            ]
            relay = [
                (ts(a) - ts(d["received_at"])) * 1000
                for _o, w, a, d in cn_steps
                if w == "ShipmentEvent" and d.get("received_at")
            ]
            result = {
                "orders_placed": len(orders),
                "placed_per_s": round(placed_rate, 1),
                "concurrency": CONCURRENCY,
                "place_to_import_decision_ms": {
                    "p50": round(pct(decided, 50), 1),
                    "p99": round(pct(decided, 99), 1),
                },
                "carrier_event_at_ca_to_cn_timeline_ms": {
                    "p50": round(pct(relay, 50), 1),
                    "p99": round(pct(relay, 99), 1),
                    "events": len(relay),
                },
                "delivered": delivered,
                "delivered_per_s_after_first": round(delivered_rate, 1),
            }
            report("orders", result)


if __name__ == "__main__":
    main()

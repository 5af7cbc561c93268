"""What the front door costs.

1. The key check in process: the door (``ehub_gateway.partners.door.PartnerDoor``) in
   front of an ASGI app that answers at once, a valid key, scope and rate check per call.
2. ``POST /v1/landed-cost`` through the gateway (key, scope, rate limit, forwarding with
   the partner's identity) vs the same request straight to customs with the gateway's
   credential, in one run on a local network (goal >= 0.7).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
from common import local_network, post_script, report, wrk

from ehub_gateway.partners.door import KeyCache, PartnerDoor, Principal, _Key
from ehub_gateway.partners.service import hash_secret

QUOTE = {
    "origin": "CA",
    "destination": "CN",
    "date": date.today().isoformat(),
    "currency": "CAD",
    "buyer_currency": "CNY",
    "items": [
        {
            "hs_code": "030632",
            "quantity": 2,
            "unit_value": "45.00",
            "country_of_origin": "CA",
            "unit_weight_kg": "0.9",
        }
    ],
    "shipping": "30.00",
}


def key_check() -> dict:
    secret = "s" * 32
    cache = KeyCache(db=None, reload_interval=3600)  # type: ignore[arg-type]
    cache.keys["0123456789ab"] = _Key(
        Principal("prt_bench", "marketplace", frozenset({"quotes:read"}), "0123456789ab", "live"),
        hash_secret(secret),
        None,
        None,
        rate=1e9,
        burst=1e9,
    )

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    door = PartnerDoor(inner)

    class State:
        keys = cache

    class App:
        state = State()

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/landed-cost",
        "headers": [(b"authorization", f"Bearer ek_live_0123456789ab_{secret}".encode())],
        "app": App(),
    }

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message):
        return None

    async def run() -> list[float]:
        samples = []
        for _ in range(200):
            t0 = time.perf_counter()
            for _ in range(100):
                await door(dict(scope), receive, send)
            samples.append((time.perf_counter() - t0) / 100 * 1e6)
        return samples

    samples = asyncio.run(run())
    return {
        "p50_us": round(statistics.median(samples), 1),
        "p99_us": round(sorted(samples)[197], 1),
    }


def through_the_door() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp) / "var"
        with local_network(var) as m:
            gateway = m["hubs"]["CN"]["gateway"]["url"]
            # A partner whose rate limit is above the load: the door's cost, not its 429s.
            key = httpx.post(
                f"{gateway}/operator/v1/partners",
                json={
                    "name": "bench",
                    "role": "marketplace",
                    "rate_per_second": 100000,
                    "burst": 100000,
                },
                headers={"Authorization": f"Bearer {m['internal_token']}"},
                timeout=30,
            ).json()["key"]["key"]
            customs = m["hubs"]["CN"]["customs"]["url"]
            tmpdir = Path(tmp)
            via = wrk(
                gateway + "/v1/landed-cost",
                script=post_script(tmpdir, QUOTE, {"Authorization": f"Bearer {key}"}),
            )
            direct = wrk(
                customs + "/v1/landed-cost",
                script=post_script(
                    tmpdir,
                    QUOTE,
                    {
                        "X-Ehub-Gateway": m["internal_token"],
                        "X-Ehub-Partner": "prt_bench",
                        "X-Ehub-Partner-Role": "marketplace",
                        "X-Ehub-Scopes": "quotes:read",
                    },
                ),
            )
            return {
                "via_gateway": via,
                "direct_to_customs": direct,
                "ratio": round(via["rps"] / direct["rps"], 2) if direct["rps"] else None,
                "note": "both on one 2-core machine with the whole network running",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }


def main() -> None:
    report("door", {"key_check_in_process": key_check(), "landed_cost": through_the_door()})


if __name__ == "__main__":
    main()

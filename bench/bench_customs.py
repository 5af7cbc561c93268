"""Customs landed-cost benchmarks (docs/benchmarks.md).

(a) the engine alone, in process: quotes/s for a 5-line consignment (goal >= 20,000/s);
(b) ``POST /v1/landed-cost`` on the customs app vs a bare FastAPI POST in the same run,
    each under uvicorn with one worker on core 0, loaded by wrk on core 1 (goal >= 0.5x).
Prints one JSON line with the results (and writes var/bench/customs.json).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bare_baseline, free_port, post_script, report, server, uvicorn_cmd, wrk

from ehub_customs.landed_cost.engine import quote
from ehub_customs.landed_cost.quote import Item, QuoteRequest
from ehub_customs.tariffs.loader import load_rulebook

LINES = [
    ("610910", "19.99"),
    ("640411", "59.00"),
    ("851713", "299.00"),
    ("950300", "15.50"),
    ("330499", "42.00"),
]
BODY = {
    "origin": "CN",
    "destination": "GB",
    "date": "2026-11-26",
    "currency": "GBP",
    "items": [
        {"hs_code": hs, "quantity": 2, "unit_value": v, "country_of_origin": "CN"}
        for hs, v in LINES
    ],
    "shipping": "12.00",
    "insurance": "1.00",
    "incoterm": "DDP",
}


def engine_qps(seconds: float = 3.0) -> dict:
    book = load_rulebook()
    req = QuoteRequest(
        origin="CN",
        destination="GB",
        date=date(2026, 11, 26),
        currency="GBP",
        items=tuple(
            Item(hs=hs, quantity=2, unit_value=Decimal(v), country_of_origin="CN")
            for hs, v in LINES
        ),
        shipping=Decimal("12.00"),
        insurance=Decimal("1.00"),
    )
    for _ in range(2000):  # warm the per-date views and FX cache
        quote(book, req)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            quote(book, req)
        n += 1000
    elapsed = time.perf_counter() - start
    return {"quotes": n, "seconds": round(elapsed, 3), "quotes_per_s": round(n / elapsed)}


def http_ratio(seconds: int = 8) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        quote_script = post_script(tmpdir, BODY)
        echo_script = post_script(tmpdir, BODY)
        bare = bare_baseline("/echo", seconds=seconds, script=echo_script)
        port = free_port()
        env = {
            "EHUB_VAR_DIR": str(tmpdir / "var"),
            "EHUB_HUB_ID": "GB",
            "EHUB_LOG_LEVEL": "WARNING",
        }
        with server(
            uvicorn_cmd("ehub_customs.app:create_app", port, factory=True), port, env=env
        ) as url:
            customs = wrk(url + "/v1/landed-cost", seconds=seconds, script=quote_script)
    return {
        "bare_fastapi_post": bare,
        "customs_landed_cost_5_lines": customs,
        "ratio": round(customs["rps"] / bare["rps"], 3) if bare["rps"] else None,
        "goal_ratio": 0.5,
    }


def main() -> None:
    result = {"engine": {**engine_qps(), "goal_quotes_per_s": 20000}}
    if "--engine-only" not in sys.argv:
        result["http"] = http_ratio()
    report("customs", result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

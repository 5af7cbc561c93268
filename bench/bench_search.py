"""Catalog search benchmark (docs/catalog.md, docs/benchmarks.md): reported, not asserted.

10,000 listings (the demo catalog, widened with numbered variants) in a SQLite catalog;
``GET /v1/products?ship_to=..&q=..`` with landed cost on every hit (one batch call per
page to a real customs service) vs a bare FastAPI GET on the same uvicorn settings.
The catalog runs on core 0; customs shares core 1 with wrk (two cores only), so the
figures are a floor. Goal: >= 500 searches/s, p99 < 50 ms.

    python bench/bench_search.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bare_baseline, free_port, report, server, uvicorn_cmd, wrk

from ehub_catalog.catalog.demo import demo_catalog, product_id, seed_demo_catalog, seller_id
from ehub_catalog.catalog.listings import listing_of
from ehub_catalog.catalog.models import Product, Seller
from ehub_core.db import Database
from ehub_core.migrations import upgrade

LISTINGS = 10_000
TOKEN = "bench-internal-token"
QUERIES = ["tea", "coffee", "lobster", "chocolate", "shoes", "silver", "dress", "charger"]
DESTINATIONS = ["CN", "BE", "MY", "CA"]


async def prepare(url: str) -> int:
    """Migrate, load the demo catalog, then numbered variants up to ``LISTINGS``."""
    db = Database(url)
    try:
        await upgrade(db, "ehub_catalog.migrations")
        async with db.sessionmaker() as session:
            await seed_demo_catalog(session, hub="CA")
            await session.commit()
            demo = demo_catalog()["products"]
            sellers: dict[str, Seller] = {}
            for spec in demo_catalog()["sellers"]:
                found = await session.get(Seller, seller_id(spec["key"]))
                assert found is not None
                sellers[found.id] = found
            base = [await session.get(Product, product_id(spec["key"])) for spec in demo]
            n = len(base)
            while n < LISTINGS:
                for template in base:
                    if n >= LISTINGS or template is None:
                        break
                    copy = Product(
                        id=f"prd_bench_{n:06d}",
                        seller_id=template.seller_id,
                        title=f"{template.title} (lot {n})",
                        description=template.description,
                        hs_code=template.hs_code,
                        origin_country=template.origin_country,
                        price=template.price + Decimal(n % 50),
                        currency=template.currency,
                        weight_kg=template.weight_kg,
                        stock=100,
                        dimensions_cm=template.dimensions_cm,
                        owner=None,
                        created_at=template.created_at,
                    )
                    session.add(copy)
                    session.add(listing_of(copy, sellers[template.seller_id], hub="CA"))
                    n += 1
                await session.flush()
            await session.commit()
            return n
    finally:
        await db.dispose()


def search_script(tmpdir: Path) -> str:
    """A wrk script cycling through searches (words x destinations), as the gateway
    forwards them (a marketplace partner's identity headers)."""
    paths = [f"/v1/products?ship_to={d}&q={q}&limit=20" for q in QUERIES for d in DESTINATIONS]
    lua = [
        "local paths = {" + ", ".join(f'"{p}"' for p in paths) + "}",
        "local i = 0",
        f'wrk.headers["X-Ehub-Gateway"] = "{TOKEN}"',
        'wrk.headers["X-Ehub-Partner"] = "prt_bench"',
        'wrk.headers["X-Ehub-Partner-Role"] = "marketplace"',
        'wrk.headers["X-Ehub-Scopes"] = "catalog:read"',
        "request = function()",
        "  i = i % #paths + 1",
        "  return wrk.format(nil, paths[i])",
        "end",
    ]
    path = tmpdir / "search.lua"
    path.write_text("\n".join(lua) + "\n")
    return str(path)


@contextlib.contextmanager
def customs_on_core1(tmpdir: Path) -> Iterator[str]:
    port = free_port()
    taskset = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    env = {
        "EHUB_VAR_DIR": str(tmpdir / "customs-var"),
        "EHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmpdir / 'customs.db'}",
        "EHUB_HUB_ID": "CA",
        "EHUB_INTERNAL_TOKEN": TOKEN,
        "EHUB_LOG_LEVEL": "WARNING",
    }
    cmd = uvicorn_cmd("ehub_customs.app:create_app", port, factory=True)
    proc = subprocess.Popen(
        taskset + cmd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def search_only(tmpdir: Path, db_url: str, seconds: int, customs: str = "") -> tuple[dict, dict]:
    """wrk against the catalog; with ``customs`` empty, no landed cost (pricing off)."""
    port = free_port()
    env = {
        "EHUB_VAR_DIR": str(tmpdir / "var"),
        "EHUB_DATABASE_URL": db_url,
        "EHUB_HUB_ID": "CA",
        "EHUB_INTERNAL_TOKEN": TOKEN,
        "EHUB_CUSTOMS_URL": customs,
        "EHUB_LOG_LEVEL": "WARNING",
    }
    cmd = uvicorn_cmd("ehub_catalog.app:create_app", port, factory=True)
    with server(cmd, port, env=env) as url:
        headers = {
            "X-Ehub-Gateway": TOKEN,
            "X-Ehub-Partner": "prt_bench",
            "X-Ehub-Partner-Role": "marketplace",
            "X-Ehub-Scopes": "catalog:read",
        }
        sample = httpx.get(url + "/v1/products?ship_to=CN&q=tea&limit=20", headers=headers)
        return sample.json(), wrk(url + "/", seconds=seconds, script=search_script(tmpdir))


def run(seconds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        db_url = f"sqlite+aiosqlite:///{tmpdir / 'catalog.db'}"
        listings = asyncio.run(prepare(db_url))
        bare = bare_baseline("/healthz", seconds=seconds)
        bare_only = search_only(tmpdir, db_url, seconds)
        with customs_on_core1(tmpdir) as customs:
            sample, searches = search_only(tmpdir, db_url, seconds, customs)
        priced = sum(1 for h in sample["items"] if h["landed_cost"] is not None)
        return {
            "listings": listings,
            "hits_per_page": len(sample["items"]),
            "priced_in_sample_page": priced,
            "pricing_available": sample["pricing"]["available"],
            "bare_fastapi_get": bare,
            "search_without_landed_cost": bare_only[1],
            "search_with_landed_cost": searches,
            "goal": {"searches_per_s": 500, "p99_ms": 50},
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    report("search", run(args.seconds))


if __name__ == "__main__":
    main()

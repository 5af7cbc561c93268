"""The demo catalog (docs/catalog.md): at least 200 believable products from sellers in
CA, MY, RW, BE and CN over HS headings every customs tariff file prices, loaded at start
when asked, and loaded again without adding or changing anything. SQLite and Postgres."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import text

from ehub_catalog.app import create_app
from ehub_catalog.catalog.demo import demo_catalog
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process

TARIFFS = Path(__file__).resolve().parents[2] / "customs/src/ehub_customs/tariffs/data"


def tariff_headings() -> dict[str, set[str]]:
    """Per tariff file, the HS codes it has a duty rate for (dots removed)."""
    out: dict[str, set[str]] = {}
    for path in TARIFFS.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if "duty" not in data:
            continue
        out[path.stem] = {
            str(rate["hs"]).replace(".", "") for group in data["duty"] for rate in group["rates"]
        }
    return out


def test_the_demo_catalog_is_believable():
    data = demo_catalog()
    sellers = {s["key"]: s for s in data["sellers"]}
    products = data["products"]
    assert len(products) >= 200
    assert {s["country"] for s in sellers.values()} == {"CA", "MY", "RW", "BE", "CN"}
    assert 0 < sum(s["sme_verified"] for s in sellers.values()) < len(sellers)
    tariffs = tariff_headings()
    assert len(tariffs) >= 5
    currency = {"CA": "CAD", "MY": "MYR", "RW": "RWF", "BE": "EUR", "CN": "CNY"}
    for p in products:
        seller = sellers[p["seller"]]
        assert p["origin_country"] == seller["country"]
        assert p["currency"] == currency[seller["country"]]
        assert float(p["price"]) > 0 and 0 < float(p["weight_kg"]) <= 25
        assert all(0 < v <= 100 for v in p["dimensions_cm"].values())
        for country, headings in tariffs.items():
            assert p["hs_code"] in headings, (p["key"], p["hs_code"], country)
    assert len({p["key"] for p in products}) == len(products)
    assert len({p["title"] for p in products}) == len(products)


async def test_seeding_at_start_is_idempotent(database_url, tmp_path):
    settings = CatalogSettings(
        database_url=database_url, var_dir=tmp_path, hub_id="MY", catalog_demo_seed=True
    )
    expected = len(demo_catalog()["products"])

    async def counts(app) -> tuple[int, int, int]:
        async with app.state.ctx.db.engine.connect() as conn:
            q = "SELECT (SELECT count(*) FROM sellers), (SELECT count(*) FROM products), "
            q += "(SELECT count(*) FROM listings WHERE source_hub = 'MY')"
            row = (await conn.execute(text(q))).one()
            return int(row[0]), int(row[1]), int(row[2])

    app = create_app(settings)
    async with serve_in_process(app) as client:
        assert await counts(app) == (len(demo_catalog()["sellers"]), expected, expected)
        async with app.state.ctx.db.engine.begin() as conn:
            await conn.execute(text("UPDATE products SET stock = 7"))
        r = await client.get("/v1/products", params={"ship_to": "CN", "q": "batik"})
        assert len(r.json()["items"]) >= 5
    again = create_app(settings)
    async with serve_in_process(again):
        assert await counts(again) == (len(demo_catalog()["sellers"]), expected, expected)
        async with again.state.ctx.db.engine.connect() as conn:
            stocks = (await conn.execute(text("SELECT DISTINCT stock FROM products"))).all()
        assert stocks == [(7,)]

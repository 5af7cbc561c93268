"""Fuzz findings kept as regression tests (docs/security.md): integers fit their columns,
free text has no control characters; each refusal is a 422 naming the field and records
nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from ehub_core.limits import INT32_MAX

TABLES = ("sellers", "products", "ehub_idempotency", "ehub_outbox")


@pytest.fixture
async def served(database_url, tmp_path):
    from ehub_catalog.app import create_app
    from ehub_catalog.settings import CatalogSettings
    from ehub_core.testing import serve_in_process

    app = create_app(CatalogSettings(database_url=database_url, var_dir=tmp_path))
    async with serve_in_process(app) as client:

        async def rows() -> dict[str, int]:
            async with app.state.ctx.db.reader() as session:
                return {
                    t: int((await session.execute(text(f"SELECT COUNT(*) FROM {t}"))).scalar_one())
                    for t in TABLES
                }

        yield client, rows


async def _seller(client) -> str:
    r = await client.post("/v1/sellers", json={"name": "Shop", "country": "CA"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _product(seller_id: str, **over: object) -> dict[str, object]:
    return {
        "seller_id": seller_id,
        "title": "Live lobster",
        "hs_code": "030632",
        "origin_country": "CA",
        "price": "45.00",
        "currency": "CAD",
        "weight_kg": "1.2",
        "stock": 5,
    } | over


def _refused(r, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in r.json()["errors"]}
    assert field in r.json()["detail"]


@pytest.mark.parametrize("stock", [2**63, 2**63 - 1, 2**31, -1, 10**30])
async def test_stock_beyond_its_column_is_422_not_500(served, stock):
    client, rows = served
    seller = await _seller(client)
    before = await rows()
    _refused(await client.post("/v1/products", json=_product(seller, stock=stock)), "stock")
    assert await rows() == before


async def test_the_largest_stock_the_column_holds_is_taken(served):
    client, _rows = served
    r = await client.post("/v1/products", json=_product(await _seller(client), stock=INT32_MAX))
    assert r.status_code == 201, r.text
    assert r.json()["stock"] == INT32_MAX


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Shop\x00"}, "name"),
        ({"name": "\x1b[31mShop\x1b[0m"}, "name"),
        ({"name": "Shop\u202e"}, "name"),
        (
            {
                "ship_from": {
                    "name": "Desk",
                    "street": ["1 Wharf\x07 Rd"],
                    "city": "Halifax",
                    "country": "CA",
                }
            },
            "ship_from.street.0",
        ),
        (
            {
                "ship_from": {
                    "name": "Desk",
                    "street": ["1 Wharf Rd"],
                    "city": "Hali\x9bfax",
                    "country": "CA",
                }
            },
            "ship_from.city",
        ),
    ],
)
async def test_control_characters_in_a_seller_are_422_naming_the_field(served, body, field):
    client, rows = served
    before = await rows()
    r = await client.post("/v1/sellers", json={"name": "Shop", "country": "CA"} | body)
    _refused(r, field)
    assert await rows() == before


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"title": "Lobster\x00"}, "title"),
        ({"title": "Lobster\nnew line"}, "title"),
        ({"description": "fresh \x1b[2J"}, "description"),
        ({"seller_id": "sel\x00"}, "seller_id"),
        ({"weight_kg": "1e400"}, "weight_kg"),
        ({"weight_kg": "NaN"}, "weight_kg"),
        ({"price": "Infinity"}, "price"),
    ],
)
async def test_bad_product_fields_are_422_naming_the_field(served, over, field):
    client, rows = served
    seller = await _seller(client)
    before = await rows()
    _refused(await client.post("/v1/products", json=_product(seller) | over), field)
    assert await rows() == before


async def test_a_description_keeps_its_lines_and_tabs(served):
    client, _rows = served
    product = _product(await _seller(client), description="Live.\n\tKeep cold.\r\n")
    r = await client.post("/v1/products", json=product)
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "Live.\n\tKeep cold.\r\n"


@pytest.mark.parametrize(
    "url", ["/v1/products?q=lob%00ster", "/v1/sellers/sel%00x", "/v1/products?seller_id=%00"]
)
async def test_a_nul_in_the_url_is_400_not_a_database_error(served, url):
    # On Postgres a NUL in a query parameter was a 500 (asyncpg: invalid byte sequence).
    client, _rows = served
    r = await client.get(url)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_nul_in_a_header_is_400_not_a_database_error(served):
    client, rows = served
    seller = await _seller(client)
    before = await rows()
    r = await client.post(
        "/v1/products", json=_product(seller), headers={"Idempotency-Key": "key\x00"}
    )
    assert r.status_code == 400, r.text
    assert await rows() == before

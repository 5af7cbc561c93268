"""Landed cost on every search hit (docs/catalog.md): the real customs service over real
HTTP, one batch call per page; customs down or hung degrades to hits without landed cost
(``pricing.available: false``), never a failed search. SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import uvicorn

from ehub_catalog.app import create_app
from ehub_catalog.catalog import service
from ehub_catalog.catalog.schemas import ProductCreate
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app as create_customs
from ehub_customs.settings import CustomsSettings

TOKEN = "catalog-test-internal-token"
MARKET = {
    "X-Ehub-Gateway": TOKEN,
    "X-Ehub-Partner": "prt_market",
    "X-Ehub-Partner-Role": "marketplace",
    "X-Ehub-Scopes": "catalog:read",
}
BATCH_ROUTE = "/operator/v1/landed-cost/batch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def customs_server(tmp_path) -> AsyncIterator[str]:
    """The real customs app under uvicorn on a loopback port."""
    settings = CustomsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'customs.db'}",
        var_dir=tmp_path,
        hub_id="CA",
        internal_token=TOKEN,
    )
    port = free_port()
    config = uvicorn.Config(
        create_customs(settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def catalog(tmp_path, customs_url: str | None, budget: float = 2.0, cache: float = 60):
    settings = CatalogSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}",
        var_dir=tmp_path,
        hub_id="CA",
        internal_token=TOKEN,
        customs_url=customs_url,
        search_pricing_budget=budget,
        search_price_cache_seconds=cache,
        catalog_demo_seed=True,
    )
    app = create_app(settings)
    async with serve_in_process(app) as client:
        yield client, app


async def search(client, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/products", params=params, headers=MARKET)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def batch_calls(customs_url: str) -> float:
    import httpx

    async with httpx.AsyncClient() as c:
        text = (await c.get(customs_url + "/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("ehub_http_requests_total{") and f'route="{BATCH_ROUTE}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def add_product(app, **over: Any) -> str:
    body = {
        "seller_id": "sel_demo_fundy-lobster",
        "title": "Air rifle, .177 calibre",
        "description": "Spring-piston air rifle",
        "hs_code": "930420",
        "origin_country": "CA",
        "price": "250.00",
        "currency": "CAD",
        "weight_kg": "3.2",
    } | over
    async with app.state.ctx.db.sessionmaker() as session:
        product = await service.create_product(
            session, data=ProductCreate.model_validate(body), hub="CA"
        )
        await session.commit()
        return product.id


async def test_every_hit_priced_by_one_batch_call_per_page(tmp_path):
    async with customs_server(tmp_path) as customs, catalog(tmp_path, customs) as (client, _):
        before = await batch_calls(customs)
        page = await search(client, ship_to="CN", q="tea", limit=20)
        assert await batch_calls(customs) - before == 1
        assert page["pricing"] == {
            "available": True,
            "currency": "CNY",
            "reason": None,
            "unapplied_filters": [],
        }
        priced = [h for h in page["items"] if h["landed_cost"] is not None]
        assert len(priced) >= 10
        for hit in priced:
            lc = {k: Decimal(v) for k, v in hit["landed_cost"].items() if k in AMOUNTS}
            assert hit["landed_cost"]["currency"] == "CNY"
            assert lc["total"] == lc["goods"] + lc["shipping"] + lc["duty"] + lc["tax"]
            assert lc["goods"] > 0 and hit["importable"] is True
        # Chinese tea for a buyer in China is no import: that hit says why it is unpriced.
        domestic = [h for h in page["items"] if h["origin_country"] == "CN"]
        assert domestic and all(h["landed_cost"] is None for h in domestic)
        assert all(h["pricing_problem"]["status"] == 422 for h in domestic)
        # The buyer's currency is the caller's to choose.
        eur = await search(client, ship_to="CN", q="tea", currency="EUR", limit=5)
        assert {h["landed_cost"]["currency"] for h in eur["items"] if h["landed_cost"]} == {"EUR"}


AMOUNTS = ("goods", "shipping", "duty", "tax", "total")


async def test_ewtp_lane_filter_keeps_the_hits_a_lane_applies_to(tmp_path):
    async with customs_server(tmp_path) as customs, catalog(tmp_path, customs) as (client, _):
        everything = await search(client, ship_to="CN", q="tea", limit=100)
        lanes = [h for h in everything["items"] if h["landed_cost"] and h["landed_cost"]["lane"]]
        no_lane = [h for h in everything["items"] if not (h["landed_cost"] or {}).get("lane")]
        assert lanes and no_lane
        only = await search(client, ship_to="CN", q="tea", ewtp_lane="true", limit=100)
        assert [h["id"] for h in only["items"]] == [h["id"] for h in lanes]


async def test_prohibited_goods_are_flagged_or_left_out(tmp_path):
    async with customs_server(tmp_path) as customs, catalog(tmp_path, customs) as (client, app):
        rifle = await add_product(app)
        hits = (await search(client, ship_to="CN", q="rifle"))["items"]
        assert [h["id"] for h in hits] == [rifle]
        assert hits[0]["importable"] is False and hits[0]["restriction"]["kind"] == "prohibited"
        left = await search(client, ship_to="CN", q="rifle", importable_only="true")
        assert left["items"] == [] and left["pricing"]["available"] is True
        # Restricted (not prohibited) goods stay, flagged with the restriction.
        lobster = await search(client, ship_to="CN", q="lobster", importable_only="true")
        assert lobster["items"] and all(h["importable"] for h in lobster["items"])
        assert {h["restriction"]["kind"] for h in lobster["items"]} == {"restricted"}


@pytest.mark.parametrize("cache", [60, 0])
async def test_a_repeated_search_is_priced_from_the_cache(tmp_path, cache):
    async with (
        customs_server(tmp_path) as customs,
        catalog(tmp_path, customs, cache=cache) as (client, _),
    ):
        first = await search(client, ship_to="CN", q="coffee")
        assert any(h["landed_cost"] for h in first["items"])
        before = await batch_calls(customs)
        again = await search(client, ship_to="CN", q="coffee")
        assert again["items"] == first["items"]
        assert await batch_calls(customs) == before + (0 if cache else 1)
        # Another currency is another price: customs is asked.
        await search(client, ship_to="CN", q="coffee", currency="USD")
        assert await batch_calls(customs) == before + (1 if cache else 2)


def test_an_empty_customs_url_means_none():
    assert CatalogSettings(customs_url="").customs_url is None


async def test_customs_down_answers_hits_without_landed_cost(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    async with catalog(tmp_path, closed) as (client, _):
        page = await search(client, ship_to="CN", q="lobster", importable_only="true")
        assert page["items"], "the hits are still answered"
        assert all(h["landed_cost"] is None and h["importable"] is None for h in page["items"])
        pricing = page["pricing"]
        assert pricing["available"] is False and "unreachable" in pricing["reason"]
        assert pricing["unapplied_filters"] == ["importable_only"]


async def test_customs_hung_is_cut_off_at_the_budget(tmp_path):
    """A customs that accepts the connection and never answers."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        async with catalog(tmp_path, f"http://127.0.0.1:{port}", budget=0.3) as (client, _):
            page = await search(client, ship_to="CN", q="coffee")
            assert page["items"]
            assert page["pricing"]["available"] is False
            assert re.search(r"did not answer within 0\.3 s", page["pricing"]["reason"])
            # Searches right after are not held up again: customs is left alone a while.
            page = await search(client, ship_to="CN", q="tea")
            assert page["items"] and page["pricing"]["available"] is False
            assert "customs is asked again within 5 s" in page["pricing"]["reason"]
    finally:
        silent.close()


@pytest.mark.parametrize("budget", [0.0, -1])
def test_a_budget_must_be_positive(budget):
    with pytest.raises(ValueError, match="search_pricing_budget"):
        CatalogSettings(search_pricing_budget=budget)

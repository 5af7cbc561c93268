"""The partner's view (docs/catalog.md): a marketplace's key at the hub's gateway searches
the listings with landed cost, through the real front door, catalog and customs, each
served over HTTP; a bad search comes back as the catalog's 422. SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from ehub_catalog.app import create_app as create_catalog
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app as create_customs
from ehub_customs.settings import CustomsSettings
from ehub_gateway.app import create_app as create_gateway
from ehub_gateway.settings import GatewaySettings

TOKEN = "search-gateway-internal-token"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
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


async def test_a_marketplace_searches_through_the_gateway(tmp_path):
    common: dict[str, Any] = {"var_dir": tmp_path, "hub_id": "CA", "internal_token": TOKEN}
    customs_app = create_customs(
        CustomsSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'customs.db'}", **common)
    )
    async with served(customs_app) as customs:
        catalog_app = create_catalog(
            CatalogSettings(
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}",
                customs_url=customs,
                catalog_demo_seed=True,
                **common,
            )
        )
        async with served(catalog_app) as catalog:
            gateway_app = create_gateway(
                GatewaySettings(
                    database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
                    catalog_url=catalog,
                    customs_url=customs,
                    **common,
                )
            )
            async with serve_in_process(gateway_app) as gateway:
                r = await gateway.post(
                    "/operator/v1/partners",
                    json={"name": "Tmall", "role": "marketplace"},
                    headers=OPERATOR,
                )
                assert r.status_code == 201, r.text
                key = {"Authorization": f"Bearer {r.json()['key']['key']}"}

                r = await gateway.get(
                    "/v1/products", params={"q": "lobster", "ship_to": "CN"}, headers=key
                )
                assert r.status_code == 200, r.text
                page = r.json()
                assert page["items"] and page["pricing"]["available"] is True
                for hit in page["items"]:
                    assert "lobster" in (hit["title"] + hit["description"]).lower()
                    assert hit["landed_cost"]["currency"] == "CNY"
                    assert hit["seller"]["name"] == "Fundy Shore Lobster Co."

                # The partner's own list is still its own: a new marketplace has none.
                r = await gateway.get("/v1/products", params={"q": "lobster"}, headers=key)
                assert r.status_code == 200 and r.json()["items"] == []

                r = await gateway.get(
                    "/v1/products", params={"q": "lobster*", "ship_to": "CN"}, headers=key
                )
                assert r.status_code == 422
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["errors"][0]["field"] == "q"

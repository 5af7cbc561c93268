"""Every service answers bad input with RFC 9457 problem+json and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from ehub_catalog.app import create_app as catalog_app
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app as customs_app
from ehub_customs.settings import CustomsSettings
from ehub_gateway.app import create_app as gateway_app
from ehub_gateway.settings import GatewaySettings
from ehub_logistics.app import create_app as logistics_app
from ehub_logistics.settings import LogisticsSettings

TOKEN = "internal-test-token"

# service -> (app factory, a JSON POST endpoint, a body with a wrong type, the bad field)
CASES: dict[str, tuple[Callable[[Any], FastAPI], str, dict[str, Any], str]] = {
    "catalog": (
        lambda var: catalog_app(CatalogSettings(var_dir=var)),
        "/v1/sellers",
        {"name": "Shop", "country": "CA", "sme_verified": "perhaps"},
        "sme_verified",
    ),
    "customs": (
        lambda var: customs_app(CustomsSettings(var_dir=var)),
        "/v1/landed-cost",
        {"origin": "CA", "destination": "CN", "currency": "CNY", "items": "many"},
        "items",
    ),
    "logistics": (
        lambda var: logistics_app(LogisticsSettings(var_dir=var)),
        "/v1/rates",
        {"origin": {"country": "CA"}, "destination": {"country": "CN"}, "parcels": 3},
        "parcels",
    ),
    "gateway": (
        lambda var: gateway_app(GatewaySettings(var_dir=var, internal_token=TOKEN)),
        "/internal/v1/events",
        {"events": [{"type": "OrderPlaced", "target_hub": "CA", "subject": 7, "payload": []}]},
        "events.0.payload",
    ),
}
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=sorted(CASES))
async def service(request, tmp_path):
    factory, path, bad_body, field = CASES[request.param]
    app = factory(tmp_path)
    async with serve_in_process(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client, path, bad_body, field


def assert_problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


async def test_unknown_route_is_404_problem(service):
    client, *_ = service
    body = assert_problem(await client.get("/v1/no-such-thing"), 404)
    assert "/v1/no-such-thing" in body["detail"]


async def test_wrong_method_is_405_problem(service):
    client, path, *_ = service
    body = assert_problem(await client.delete(path, headers=HEADERS), 405)
    assert "DELETE" in body["detail"]


async def test_malformed_json_is_400_problem(service):
    client, path, *_ = service
    r = await client.post(
        path,
        content=b'{"name": "unterminated',
        headers={**HEADERS, "content-type": "application/json"},
    )
    body = assert_problem(r, 400)
    assert body["type"].endswith("/malformed-json")


async def test_wrong_types_are_422_naming_the_field(service):
    client, path, bad_body, field = service
    body = assert_problem(await client.post(path, json=bad_body, headers=HEADERS), 422)
    assert field in {e["field"] for e in body["errors"]}
    assert field in body["detail"]


async def row_counts(app: FastAPI) -> dict[str, int]:
    db = app.state.ctx.db
    async with db.reader() as session:
        tables = (
            (await session.execute(text("SELECT name FROM sqlite_master WHERE type='table'")))
            .scalars()
            .all()
        )
        return {
            t: int((await session.execute(text(f'SELECT COUNT(*) FROM "{t}"'))).scalar_one())
            for t in tables
        }


async def test_bad_input_changes_nothing(service):
    client, path, bad_body, _ = service
    before = await row_counts(client.app)
    assert_problem(await client.post(path, json=bad_body, headers=HEADERS), 422)
    r = await client.post(
        path, content=b"{", headers={**HEADERS, "content-type": "application/json"}
    )
    assert_problem(r, 400)
    assert await row_counts(client.app) == before

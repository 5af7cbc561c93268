"""ehub_core.partners on a bare app: the gateway credential, the partner's identity and
scopes, the operator's bearer token, development mode, and why routes need
GuardedRoute (FastAPI reads the JSON body before it solves any dependency)."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from ehub_core.errors import install_problem_handlers
from ehub_core.partners import (
    Caller,
    CallerDep,
    GuardedRoute,
    OperatorDep,
    require_scope,
    unguarded_routes,
)
from ehub_core.settings import CoreSettings

TOKEN = "core-test-token"
GW = {"X-Ehub-Gateway": TOKEN, "X-Ehub-Partner": "prt_a1", "X-Ehub-Scopes": "things:write"}


class Thing(BaseModel):
    name: str


def build(token: str | None) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = CoreSettings(internal_token=token)
    guarded = APIRouter(route_class=GuardedRoute)
    plain = APIRouter()

    @guarded.post("/v1/things")
    async def create(thing: Thing, caller: CallerDep) -> dict[str, object]:
        return {"partner": caller.partner_id, "kind": caller.kind, "name": thing.name}

    @guarded.post("/v1/scoped")
    async def scoped(
        thing: Thing, caller: Annotated[Caller, require_scope("things:write")]
    ) -> dict[str, object]:
        return {"scopes": sorted(caller.scopes)}

    @guarded.post("/operator/v1/things")
    async def operate(thing: Thing, caller: OperatorDep) -> dict[str, object]:
        return {"kind": caller.kind}

    @plain.post("/v1/plain")
    async def unguarded(thing: Thing, caller: CallerDep) -> dict[str, object]:
        return {"partner": caller.partner_id}

    app.include_router(guarded)
    app.include_router(plain)
    return app


@pytest.fixture
async def call():
    async def _call(token: str | None, path: str, content: bytes, headers: dict[str, Any]):
        transport = httpx.ASGITransport(app=build(token))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                path, content=content, headers={"content-type": "application/json"} | headers
            )

    return _call


async def test_a_guarded_route_refuses_before_reading_the_body(call):
    r = await call(TOKEN, "/v1/things", b"{not json", {})
    assert r.status_code == 401 and r.json()["title"] == "Gateway credential required"
    # A plain route reads the body first: the request is told about its JSON instead.
    r = await call(TOKEN, "/v1/plain", b"{not json", {})
    assert r.status_code == 400
    r = await call(TOKEN, "/operator/v1/things", b"{not json", {})
    assert r.status_code == 401 and r.json()["title"] == "Operator credential required"
    r = await call(TOKEN, "/v1/scoped", b"{not json", GW | {"X-Ehub-Scopes": "other"})
    assert r.status_code == 403 and r.json()["required_scope"] == "things:write"


async def test_the_gateway_forwards_the_partner(call):
    r = await call(TOKEN, "/v1/things", b'{"name": "x"}', GW)
    assert r.json() == {"partner": "prt_a1", "kind": "partner", "name": "x"}
    r = await call(
        TOKEN, "/v1/scoped", b'{"name": "x"}', GW | {"X-Ehub-Scopes": " a  things:write "}
    )
    assert r.json() == {"scopes": ["a", "things:write"]}
    # Non-ASCII credentials are refused, not a 500.
    r = await call(TOKEN, "/v1/things", b"{}", {"X-Ehub-Gateway": "t\u00e9".encode("latin-1")})
    assert r.status_code == 401
    r = await call(
        TOKEN, "/operator/v1/things", b"{}", {"Authorization": "Bearer \xff".encode("latin-1")}
    )
    assert r.status_code == 401
    r = await call(
        TOKEN, "/operator/v1/things", b'{"name": "x"}', {"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.json() == {"kind": "operator"}


@pytest.mark.parametrize("token", [None, ""])
async def test_development_mode_without_a_token(call, token):
    r = await call(token, "/v1/things", b'{"name": "x"}', {})
    assert r.json() == {"partner": None, "kind": "development", "name": "x"}
    r = await call(token, "/v1/scoped", b'{"name": "x"}', {})
    assert r.status_code == 200  # development callers hold every scope
    r = await call(token, "/operator/v1/things", b'{"name": "x"}', {"Authorization": "Bearer "})
    assert r.status_code == 403 and r.json()["title"] == "Operator API disabled"


def test_unguarded_routes_names_the_plain_one():
    assert unguarded_routes(build(TOKEN)) == ["POST /v1/plain"]
    assert unguarded_routes(build(TOKEN), exempt=["/v1/plain"]) == []


def test_caller_visibility_and_idempotency_scope():
    partner = Caller("prt_a1", "seller", frozenset({"x"}))
    assert partner.visible_to == "prt_a1" and partner.has_scope("x") and not partner.has_scope("y")
    assert partner.idempotency_scope("POST /v1/sellers") == "POST /v1/sellers:prt_a1"
    dev = Caller(None, kind="development")
    assert dev.visible_to is None and dev.has_scope("anything")
    assert dev.idempotency_scope("POST /v1/sellers") == "POST /v1/sellers"
    with pytest.raises(ValueError):
        Caller(None)  # a partner without an id would see every row
    with pytest.raises(ValueError):
        Caller("prt_a1", kind="operator")


def test_the_internal_token_is_a_core_setting_and_the_gateway_still_reads_it(monkeypatch):
    from ehub_gateway.settings import GatewaySettings

    monkeypatch.setenv("EHUB_INTERNAL_TOKEN", "from-env")
    for cls in (CoreSettings, GatewaySettings):
        secret = cls().internal_token
        assert secret is not None and secret.get_secret_value() == "from-env"
        assert "from-env" not in repr(cls())

"""Partner identity at logistics (docs/partners.md): only the gateway's forwarded calls,
scopes per operation, each partner seeing only its own shipments and labels, the
operator's routes; carriers' signed webhooks need no gateway credential. Every refusal
changes nothing. SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from ehub_core.partners import unguarded_routes
from ehub_logistics.api.deps import TRACKING_STREAM
from ehub_logistics.shipments import service
from ehub_logistics.shipments.schemas import ShipmentCreate
from ehub_logistics.shipments.service import Publishing

TOKEN = "logistics-test-internal-token"
A, B = "prt_alpha", "prt_bravo"
ALL = "rates:read shipments:read shipments:write"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
RATES = {
    "origin": {"country": "CA", "postal_code": "B3H 1A1"},
    "destination": {"country": "CN", "postal_code": "518000"},
    "parcels": [{"weight": "1.5", "length": 30, "width": 20, "height": 10}],
    "declared_value": {"amount": "180", "currency": "USD"},
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"internal_token": TOKEN}


def gw(partner: str | None = A, scopes: str = ALL, **over: str) -> dict[str, str]:
    headers = {"X-Ehub-Gateway": TOKEN, "X-Ehub-Partner-Role": "seller", "X-Ehub-Scopes": scopes}
    if partner is not None:
        headers["X-Ehub-Partner"] = partner
    return headers | over


def problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


@pytest.fixture
def counts(app):
    async def _counts() -> dict[str, int]:
        out = {}
        async with app.state.ctx.db.engine.connect() as conn:
            for table in (
                "logistics_shipments",
                "logistics_tracking_events",
                "ehub_outbox",
                "ehub_idempotency",
            ):
                out[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
        return out

    return _counts


@pytest.fixture
def book_as(client, shipment_body):
    async def _book(partner: str, **over: Any) -> dict[str, Any]:
        r = await client.post("/v1/shipments", json=shipment_body(**over), headers=gw(partner))
        assert r.status_code == 201, r.text
        return r.json()

    return _book


def routes(shipment_id: str, body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/v1/rates", RATES),
        ("GET", "/v1/carriers", None),
        ("POST", "/v1/shipments", body),
        ("GET", "/v1/shipments?order_id=ord_test_1", None),
        ("GET", f"/v1/shipments/{shipment_id}", None),
        ("GET", f"/v1/shipments/{shipment_id}/label.pdf", None),
        ("POST", f"/v1/shipments/{shipment_id}/cancel", None),
    ]


async def test_without_the_gateway_credential_every_partner_route_is_401(
    client, book_as, shipment_body, counts
):
    shipment = await book_as(A)
    before = await counts()
    for method, path, body in routes(shipment["id"], shipment_body()):
        for headers in (
            {},
            gw(**{"X-Ehub-Gateway": "wrong"}),
            {k: v for k, v in gw().items() if k != "X-Ehub-Gateway"},
            OPERATOR,
        ):
            r = await client.request(method, path, json=body, headers=headers)
            p = problem(r, 401)
            assert p["title"] == "Gateway credential required", (method, path)
        problem(await client.request(method, path, json=body, headers=gw(partner=None)), 401)
    assert await counts() == before
    r = await client.get(f"/v1/shipments/{shipment['id']}", headers=gw(A))
    assert r.json()["status"] == "created"


@pytest.mark.parametrize("content", [b"{not json", b'{"carrier": 7}', b""], ids=repr)
async def test_an_unauthenticated_malformed_body_is_401(client, counts, content):
    headers = {"content-type": "application/json"}
    for path in ("/v1/shipments", "/v1/rates", "/operator/v1/rates"):
        problem(await client.post(path, content=content, headers=headers), 401)
    r = await client.post(
        "/v1/shipments", content=content, headers=headers | gw(scopes="shipments:read")
    )
    assert problem(r, 403)["required_scope"] == "shipments:write"
    assert set((await counts()).values()) == {0}


async def test_missing_scope_is_403_naming_it(client, book_as, shipment_body, counts):
    shipment = await book_as(A)
    before = await counts()
    needed = [
        "rates:read",
        "rates:read",
        "shipments:write",
        "shipments:read",
        "shipments:read",
        "shipments:read",
        "shipments:write",
    ]
    for (method, path, body), scope in zip(
        routes(shipment["id"], shipment_body()), needed, strict=True
    ):
        others = " ".join(s for s in ALL.split() if s != scope)
        r = await client.request(method, path, json=body, headers=gw(scopes=others))
        p = problem(r, 403)
        assert p["required_scope"] == scope and repr(scope) in p["detail"], (method, path)
    assert await counts() == before


async def test_each_partner_sees_only_its_own_shipments_and_labels(client, book_as, counts):
    mine = await book_as(A)
    theirs = await book_as(B, reference="b-1")
    assert mine["owner"] == A and theirs["owner"] == B

    r = await client.get(f"/v1/shipments/{mine['id']}", headers=gw(A))
    assert r.status_code == 200 and r.json()["owner"] == A
    r = await client.get(mine["label_url"], headers=gw(A))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"

    before = await counts()
    for method, path in [
        ("GET", f"/v1/shipments/{mine['id']}"),
        ("GET", f"/v1/shipments/{mine['id']}/label.pdf"),
        ("POST", f"/v1/shipments/{mine['id']}/cancel"),
    ]:
        p = problem(await client.request(method, path, headers=gw(B)), 404)
        assert p["detail"] == f"No shipment {mine['id']!r}"  # as for an id that never was
    assert await counts() == before
    r = await client.get(f"/v1/shipments/{mine['id']}", headers=gw(A))
    assert r.json()["status"] == "created"  # B's cancel did nothing

    # Both booked for order ord_test_1: each lists only its own.
    r = await client.get("/v1/shipments", params={"order_id": "ord_test_1"}, headers=gw(A))
    assert [s["id"] for s in r.json()] == [mine["id"]]
    r = await client.get("/v1/shipments", params={"order_id": "ord_test_1"}, headers=gw(B))
    assert [s["id"] for s in r.json()] == [theirs["id"]]

    r = await client.post(f"/v1/shipments/{mine['id']}/cancel", headers=gw(A))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_idempotency_keys_are_per_partner(client, shipment_body):
    key = {"Idempotency-Key": "book-1"}
    a = await client.post("/v1/shipments", json=shipment_body(), headers=gw(A) | key)
    b = await client.post("/v1/shipments", json=shipment_body(), headers=gw(B) | key)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers and b.json()["id"] != a.json()["id"]
    again = await client.post("/v1/shipments", json=shipment_body(), headers=gw(A) | key)
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == a.json()["id"]


async def test_rates_and_carriers_with_the_rates_scope(client):
    r = await client.post("/v1/rates", json=RATES, headers=gw(scopes="rates:read"))
    assert r.status_code == 200 and r.json()["rates"]
    r = await client.get("/v1/carriers", headers=gw(scopes="rates:read"))
    assert r.status_code == 200 and {c["name"] for c in r.json()} >= {"express"}


async def test_carrier_webhooks_need_no_gateway_credential(client, book_as, carrier, send):
    shipment = await book_as(A)
    delivery = carrier("express").advance(shipment["tracking_number"], 1)
    assert delivery is not None and "X-Ehub-Gateway" not in delivery.headers
    r = await send(delivery)  # signed by the carrier, straight to logistics
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] >= 1
    r = await client.get(f"/v1/shipments/{shipment['id']}", headers=gw(A))
    assert r.json()["status"] == "picked_up"
    # ... and still refuse what the carrier did not sign.
    r = await client.post(
        delivery.path, content=delivery.body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 401 and "rejected" in r.json()["detail"]


async def test_operator_sees_every_shipment_and_shops_rates(
    app, client, book_as, shipment_body, counts
):
    mine = await book_as(A)
    # A booking of the order saga (no partner), as consumers.py makes it.
    async with app.state.ctx.db.transaction() as session:
        saga, _ = await service.book_shipment(
            session,
            registry=app.state.carriers,
            publishing=Publishing(topic=app.state.ctx.settings.topic(TRACKING_STREAM)),
            data=ShipmentCreate.model_validate(shipment_body(reference="saga")),
            saga_step="ship",
        )
        saga_id = saga.id
    r = await client.get("/v1/shipments", params={"order_id": "ord_test_1"}, headers=gw(A))
    assert [s["id"] for s in r.json()] == [mine["id"]]
    problem(await client.get(f"/v1/shipments/{saga_id}", headers=gw(A)), 404)

    r = await client.get(
        "/operator/v1/shipments", params={"order_id": "ord_test_1"}, headers=OPERATOR
    )
    assert r.status_code == 200
    assert {(s["id"], s["owner"]) for s in r.json()} == {(mine["id"], A), (saga_id, None)}
    r = await client.get(f"/operator/v1/shipments/{saga_id}", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["owner"] is None
    r = await client.post("/operator/v1/rates", json=RATES, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["rates"]

    before = await counts()
    for headers in ({}, gw(A), {"Authorization": "Bearer wrong"}):
        p = problem(await client.post("/operator/v1/rates", json=RATES, headers=headers), 401)
        assert p["title"] == "Operator credential required"
        r = await client.get(f"/operator/v1/shipments/{saga_id}", headers=headers)
        problem(r, 401)
    assert await counts() == before


async def test_every_partner_route_is_guarded_and_the_webhook_is_not(app):
    assert unguarded_routes(app, exempt=["/v1/carriers/"]) == []
    assert unguarded_routes(app) == ["POST /v1/carriers/{carrier}/events"]

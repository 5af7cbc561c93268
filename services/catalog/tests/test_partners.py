"""Partner identity at the catalog (docs/partners.md): only the gateway's forwarded calls,
scopes per operation, each partner seeing only its own sellers and products, the
operator's routes; every refusal changes nothing. SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import pytest

from ehub_core.partners import unguarded_routes

TOKEN = "catalog-test-internal-token"  # as in conftest.py
A, B = "prt_alpha", "prt_bravo"
RW = "catalog:read catalog:write"
SELLER = {"name": "Maritime Lobster Co", "country": "CA"}


def gw(partner: str | None = A, scopes: str = RW, role: str = "seller", **over: str):
    headers = {"X-Ehub-Gateway": TOKEN, "X-Ehub-Partner-Role": role, "X-Ehub-Scopes": scopes}
    if partner is not None:
        headers["X-Ehub-Partner"] = partner
    return headers | over


OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


def product(seller_id: str, **over: Any) -> dict[str, Any]:
    body = {
        "seller_id": seller_id,
        "title": "Live lobster, 1 kg",
        "hs_code": "030632",
        "origin_country": "CA",
        "price": "45.00",
        "currency": "CAD",
        "weight_kg": "1.2",
        "stock": 10,
    }
    return body | over


def problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


async def seller_and_product(client, partner: str = A) -> tuple[str, str]:
    r = await client.post("/v1/sellers", json=SELLER, headers=gw(partner))
    assert r.status_code == 201, r.text
    seller_id = r.json()["id"]
    r = await client.post("/v1/products", json=product(seller_id), headers=gw(partner))
    assert r.status_code == 201, r.text
    return seller_id, r.json()["id"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/sellers", SELLER),
        ("GET", "/v1/sellers/sel_x", None),
        ("POST", "/v1/products", product("sel_x")),
        ("GET", "/v1/products", None),
        ("GET", "/v1/products/prd_x", None),
    ],
)
async def test_without_the_gateway_credential_every_partner_route_is_401(
    secured, method, path, body
):
    before = await secured.counts()
    for headers in (
        {},
        gw(**{"X-Ehub-Gateway": "wrong"}),
        {k: v for k, v in gw().items() if k != "X-Ehub-Gateway"},
        {"Authorization": f"Bearer {TOKEN}"},  # the operator's credential is not the gateway's
    ):
        r = await secured.client.request(method, path, json=body, headers=headers)
        p = problem(r, 401)
        assert p["title"] == "Gateway credential required"
        assert "gateway" in p["detail"] and "partners call" in p["detail"].lower()
    assert await secured.counts() == before


async def test_the_partner_id_is_required_and_checked(secured):
    before = await secured.counts()
    for headers in (gw(partner=None), gw(partner="alpha"), gw(partner="prt_")):
        p = problem(await secured.client.post("/v1/sellers", json=SELLER, headers=headers), 401)
        assert p["title"] == "Partner identity required" and "X-Ehub-Partner" in p["detail"]
    p = problem(await secured.client.post("/v1/sellers", json=SELLER, headers=gw(role="king")), 401)
    assert "X-Ehub-Partner-Role" in p["detail"]
    assert await secured.counts() == before


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"name": 1, "country": 2}', b"[]", b""], ids=repr
)
async def test_an_unauthenticated_malformed_body_is_401_not_400_or_422(secured, content):
    headers = {"content-type": "application/json"}
    for path in ("/v1/sellers", "/v1/products", "/operator/v1/sellers"):
        r = await secured.client.post(path, content=content, headers=headers)
        problem(r, 401)
    # Identified but without the scope: refused before the body is read too.
    r = await secured.client.post(
        "/v1/sellers", content=content, headers=headers | gw(scopes="catalog:read")
    )
    assert problem(r, 403)["required_scope"] == "catalog:write"
    assert await secured.counts() == {"sellers": 0, "products": 0, "ehub_idempotency": 0}


async def test_missing_scope_is_403_naming_it(secured):
    client = secured.client
    seller_id, product_id = await seller_and_product(client)
    before = await secured.counts()
    for method, path, body, scopes, needed in [
        ("POST", "/v1/sellers", SELLER, "catalog:read", "catalog:write"),
        ("POST", "/v1/products", product(seller_id), "catalog:read", "catalog:write"),
        ("GET", f"/v1/sellers/{seller_id}", None, "catalog:write", "catalog:read"),
        ("GET", f"/v1/products/{product_id}", None, "", "catalog:read"),
        ("GET", "/v1/products", None, "quotes:read", "catalog:read"),
    ]:
        r = await client.request(method, path, json=body, headers=gw(scopes=scopes))
        p = problem(r, 403)
        assert p["title"] == "Missing scope" and p["required_scope"] == needed
        assert repr(needed) in p["detail"]
    assert await secured.counts() == before


async def test_each_partner_sees_only_its_own_sellers_and_products(secured):
    client = secured.client
    seller_a, product_a = await seller_and_product(client, A)
    _, product_b = await seller_and_product(client, B)

    r = await client.get(f"/v1/sellers/{seller_a}", headers=gw(A))
    assert r.status_code == 200 and r.json()["owner"] == A
    r = await client.get(f"/v1/products/{product_a}", headers=gw(A))
    assert r.status_code == 200 and r.json()["owner"] == A

    # B: A's ids are not found (404, not 403), exactly like ids that do not exist.
    p = problem(await client.get(f"/v1/sellers/{seller_a}", headers=gw(B)), 404)
    assert p["detail"] == f"No seller {seller_a!r}"
    p = problem(await client.get(f"/v1/products/{product_a}", headers=gw(B)), 404)
    assert p["detail"] == f"No product {product_a!r}"

    # Lists: one's own only, whatever the filters.
    r = await client.get("/v1/products", headers=gw(B))
    assert [p["id"] for p in r.json()["items"]] == [product_b]
    r = await client.get("/v1/products", params={"seller_id": seller_a}, headers=gw(B))
    assert r.json()["items"] == []
    r = await client.get("/v1/products", params={"q": "lobster"}, headers=gw(A))
    assert [p["id"] for p in r.json()["items"]] == [product_a]


async def test_a_product_only_for_a_seller_one_owns(secured):
    client = secured.client
    seller_a, _ = await seller_and_product(client, A)
    before = await secured.counts()
    foreign = await client.post("/v1/products", json=product(seller_a), headers=gw(B))
    unknown = await client.post("/v1/products", json=product("sel_nope"), headers=gw(B))
    # Another's seller answers exactly like a seller that does not exist.
    pf, pu = problem(foreign, 422), problem(unknown, 422)
    assert pf["errors"] == pu["errors"] and pf["errors"][0]["field"] == "seller_id"
    assert pf["detail"] == f"No seller {seller_a!r}"
    assert await secured.counts() == before


async def test_a_partner_cannot_set_sme_verified(secured):
    before = await secured.counts()
    r = await secured.client.post("/v1/sellers", json=SELLER | {"sme_verified": True}, headers=gw())
    p = problem(r, 422)
    assert [e["field"] for e in p["errors"]] == ["sme_verified"]
    assert p["errors"][0]["type"] == "extra_forbidden"
    assert await secured.counts() == before
    r = await secured.client.post("/v1/sellers", json=SELLER, headers=gw())
    assert r.status_code == 201 and r.json()["sme_verified"] is False


async def test_idempotency_keys_are_per_partner(secured):
    client = secured.client
    key = {"Idempotency-Key": "same-key"}
    a = await client.post("/v1/sellers", json=SELLER, headers=gw(A) | key)
    b = await client.post("/v1/sellers", json=SELLER, headers=gw(B) | key)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers  # B never gets A's stored answer
    assert a.json()["id"] != b.json()["id"] and b.json()["owner"] == B
    again = await client.post("/v1/sellers", json=SELLER, headers=gw(A) | key)
    assert again.json() == a.json() and again.headers["idempotent-replayed"] == "true"


async def test_operator_creates_and_verifies_sellers_for_partners(secured):
    client = secured.client
    body = SELLER | {"owner": A, "sme_verified": True, "auto_accept": True}
    r = await client.post("/operator/v1/sellers", json=body, headers=OPERATOR)
    assert r.status_code == 201, r.text
    seller = r.json()
    assert (seller["owner"], seller["sme_verified"], seller["auto_accept"]) == (A, True, True)
    assert (await client.get(f"/v1/sellers/{seller['id']}", headers=gw(A))).status_code == 200
    assert (await client.get(f"/v1/sellers/{seller['id']}", headers=gw(B))).status_code == 404
    # A adds a product to the seller the operator made for it.
    r = await client.post("/v1/products", json=product(seller["id"]), headers=gw(A))
    assert r.status_code == 201 and r.json()["owner"] == A
    product_id = r.json()["id"]

    path = f"/operator/v1/sellers/{seller['id']}/verification"
    r = await client.post(path, json={"sme_verified": False}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert r.json()["sme_verified"] is False
    r = await client.get(f"/v1/sellers/{seller['id']}", headers=gw(A))
    assert r.json()["sme_verified"] is False

    # The operator reads any seller and product (the gateway's offers use these).
    r = await client.get(f"/operator/v1/sellers/{seller['id']}", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["owner"] == A
    r = await client.get(f"/operator/v1/products/{product_id}", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["seller_id"] == seller["id"]
    problem(await client.get("/operator/v1/products/prd_nope", headers=OPERATOR), 404)
    p = problem(
        await client.post(
            "/operator/v1/sellers/sel_nope/verification",
            json={"sme_verified": True},
            headers=OPERATOR,
        ),
        404,
    )
    assert p["detail"] == "No seller 'sel_nope'"


async def test_operator_routes_refuse_everyone_else(secured):
    client = secured.client
    seller_id, _ = await seller_and_product(client, A)
    before = await secured.counts()
    path = f"/operator/v1/sellers/{seller_id}/verification"
    for headers in ({}, gw(A), {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = await client.post(path, json={"sme_verified": True}, headers=headers)
        p = problem(r, 401)
        assert p["title"] == "Operator credential required"
        r = await client.post("/operator/v1/sellers", json=SELLER, headers=headers)
        problem(r, 401)
    assert await secured.counts() == before
    r = await client.get(f"/v1/sellers/{seller_id}", headers=gw(A))
    assert r.json()["sme_verified"] is False
    # Bad operator bodies are still validated (after the credential).
    r = await client.post(path, json={"sme_verified": "perhaps"}, headers=OPERATOR)
    problem(r, 422)
    r = await client.post(
        "/operator/v1/sellers", json=SELLER | {"owner": "alpha"}, headers=OPERATOR
    )
    assert [e["field"] for e in problem(r, 422)["errors"]] == ["owner"]
    assert await secured.counts() == before


async def test_operator_api_is_disabled_without_the_token(client):
    p = problem(
        await client.post(
            "/operator/v1/sellers", json=SELLER, headers={"Authorization": "Bearer x"}
        ),
        403,
    )
    assert p["title"] == "Operator API disabled" and "EHUB_INTERNAL_TOKEN" in p["detail"]


async def test_development_mode_is_anonymous_and_sees_everything(client):
    r = await client.post("/v1/sellers", json=SELLER, headers=gw(A))  # headers ignored
    assert r.status_code == 201 and r.json()["owner"] is None
    r = await client.post("/v1/sellers", json=SELLER | {"sme_verified": True})
    assert r.status_code == 422  # development mode does not reopen sme_verified


async def test_health_needs_no_credential(secured):
    assert (await secured.client.get("/healthz")).status_code == 200
    assert (await secured.client.get("/readyz")).status_code == 200


async def test_every_partner_and_operator_route_is_guarded(secured):
    assert unguarded_routes(secured.app) == []

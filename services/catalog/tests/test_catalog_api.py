"""Catalog API against real SQLite and Postgres."""

from __future__ import annotations

SELLER = {"name": "Maritime Lobster Co", "country": "CA"}


def product(seller_id: str, **over):
    body = {
        "seller_id": seller_id,
        "title": "Live lobster, 1 kg",
        "description": "Atlantic lobster (Homarus americanus), shipped live",
        "hs_code": "030632",
        "origin_country": "CA",
        "price": "45.00",
        "currency": "CAD",
        "weight_kg": "1.2",
        "stock": 100,
    }
    return body | over


async def test_create_and_read_seller_and_product(client):
    r = await client.post("/v1/sellers", json=SELLER)
    assert r.status_code == 201, r.text
    seller = r.json()
    assert seller["id"].startswith("sel_")
    r = await client.post("/v1/products", json=product(seller["id"]))
    assert r.status_code == 201, r.text
    prod = r.json()
    assert prod["id"].startswith("prd_") and prod["price"] == "45.00"
    r = await client.get(f"/v1/products/{prod['id']}")
    assert r.status_code == 200 and r.json()["hs_code"] == "030632"


async def test_search_filters_and_paginates_by_cursor(client):
    seller = (await client.post("/v1/sellers", json=SELLER)).json()
    for i in range(5):
        await client.post("/v1/products", json=product(seller["id"], title=f"Lobster pack {i}"))
    await client.post(
        "/v1/products",
        json=product(seller["id"], title="Maple syrup", description="Grade A", hs_code="170220"),
    )
    r = await client.get("/v1/products", params={"q": "lobster", "limit": 3})
    page1 = r.json()
    assert len(page1["items"]) == 3 and page1["next_cursor"]
    r = await client.get(
        "/v1/products", params={"q": "lobster", "limit": 3, "cursor": page1["next_cursor"]}
    )
    page2 = r.json()
    assert len(page2["items"]) == 2 and page2["next_cursor"] is None
    titles = [p["title"] for p in page1["items"] + page2["items"]]
    assert sorted(titles) == [f"Lobster pack {i}" for i in range(5)]
    r = await client.get("/v1/products", params={"hs_prefix": "1702"})
    assert [p["title"] for p in r.json()["items"]] == ["Maple syrup"]


async def test_idempotency_key_replays_first_result(client):
    headers = {"Idempotency-Key": "k-123"}
    r1 = await client.post("/v1/sellers", json=SELLER, headers=headers)
    r2 = await client.post("/v1/sellers", json=SELLER, headers=headers)
    assert r1.status_code == r2.status_code == 201
    assert r1.json() == r2.json()
    assert "idempotent-replayed" not in r1.headers
    assert r2.headers["idempotent-replayed"] == "true"
    r3 = await client.post("/v1/sellers", json=SELLER | {"name": "Other"}, headers=headers)
    assert r3.status_code == 422
    assert r3.headers["content-type"] == "application/problem+json"


async def test_product_for_unknown_seller_is_422_and_creates_nothing(client):
    r = await client.post("/v1/products", json=product("sel_missing"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "seller_id"
    assert (await client.get("/v1/products")).json()["items"] == []


async def test_bad_hs_code_names_the_field(client):
    seller = (await client.post("/v1/sellers", json=SELLER)).json()
    r = await client.post("/v1/products", json=product(seller["id"], hs_code="03.06"))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["hs_code"]


async def test_unknown_product_is_404_problem(client):
    r = await client.get("/v1/products/prd_nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "No product 'prd_nope'"


SHIP_FROM = {
    "name": "Shipping desk",
    "company": "Maritime Lobster Co",
    "street": ["12 Wharf Rd", "Unit 4"],
    "city": "Halifax",
    "postal_code": "B3H 1A1",
    "state": "NS",
    "country": "CA",
    "phone": "+1 902 555 0100",
    "email": "ship@lobster.example",
}


async def test_seller_ship_from_and_auto_accept_round_trip(client):
    r = await client.post(
        "/v1/sellers",
        json=SELLER | {"ship_from": SHIP_FROM, "auto_accept": True},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["ship_from"] == SHIP_FROM and created["auto_accept"] is True
    r = await client.get(f"/v1/sellers/{created['id']}")
    assert r.status_code == 200 and r.json() == created


async def test_seller_ship_from_is_optional_and_auto_accept_defaults_off(client):
    minimal = {"name": "Desk", "street": ["1 Main St"], "city": "Halifax", "country": "CA"}
    r = await client.post("/v1/sellers", json=SELLER | {"ship_from": minimal})
    assert r.status_code == 201, r.text
    assert r.json()["ship_from"] == {
        "name": "Desk",
        "company": None,
        "street": ["1 Main St"],
        "city": "Halifax",
        "postal_code": None,
        "state": None,
        "country": "CA",
        "phone": None,
        "email": None,
    }
    assert r.json()["auto_accept"] is False
    r = await client.post("/v1/sellers", json=SELLER)
    seller = (await client.get(f"/v1/sellers/{r.json()['id']}")).json()
    assert seller["ship_from"] is None and seller["auto_accept"] is False


async def test_invalid_ship_from_is_422_problem_naming_the_fields(client):
    r = await client.post(
        "/v1/sellers", json=SELLER | {"ship_from": SHIP_FROM | {"country": "CAN"}}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["ship_from.country"]
    bad = {k: v for k, v in SHIP_FROM.items() if k != "city"} | {"street": [], "fax": "1"}
    r = await client.post("/v1/sellers", json=SELLER | {"ship_from": bad})
    assert r.status_code == 422
    fields = sorted(e["field"] for e in r.json()["errors"])
    assert fields == ["ship_from.city", "ship_from.fax", "ship_from.street"]
    r = await client.post(
        "/v1/sellers", json=SELLER | {"ship_from": SHIP_FROM | {"street": ["a", "b", "c", "d"]}}
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["ship_from.street"]
    assert (await client.get("/v1/products")).json()["items"] == []

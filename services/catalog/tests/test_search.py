"""Search (docs/catalog.md): full-text ranking, filters, cursors bound to their search,
listings visible to every partner while one's own list stays one's own, and bad input
refused with a 422 naming it. SQLite (FTS5) and Postgres (tsvector), on the demo catalog.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from ehub_catalog.app import create_app
from ehub_catalog.catalog.demo import demo_catalog
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process

TOKEN = "catalog-test-internal-token"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


def gw(partner: str) -> dict[str, str]:
    return {
        "X-Ehub-Gateway": TOKEN,
        "X-Ehub-Partner": partner,
        "X-Ehub-Partner-Role": "marketplace",
        "X-Ehub-Scopes": "catalog:read catalog:write",
    }


@pytest.fixture
async def seeded(database_url, tmp_path):
    """The catalog with the demo catalog loaded, no customs (pricing unavailable)."""
    settings = CatalogSettings(
        database_url=database_url,
        var_dir=tmp_path,
        hub_id="CA",
        internal_token=TOKEN,
        customs_url=None,
        catalog_demo_seed=True,
    )
    app = create_app(settings)
    async with serve_in_process(app) as client:
        yield SimpleNamespace(client=client, app=app)


async def search(client, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/products", params=params, headers=headers or gw("prt_market"))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def problem(r, field: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert field in [e["field"] for e in body["errors"]], body
    return body


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def demo_products(pred) -> set[str]:
    return {f"prd_demo_{p['key']}" for p in demo_catalog()["products"] if pred(p)}


async def test_ranked_full_text_not_substrings(seeded):
    client = seeded.client
    r = await client.post(
        "/operator/v1/sellers", json={"name": "Bay Fishery", "country": "CA"}, headers=OPERATOR
    )
    seller = r.json()["id"]
    # Created first, mentioning lobster only in its description: ranked below the titles.
    body = {
        "seller_id": seller,
        "title": "Seafood gift crate",
        "description": "Scallops, mussels and one lobster claw",
        "hs_code": "030632",
        "origin_country": "CA",
        "price": "80.00",
        "currency": "CAD",
        "weight_kg": "2",
    }
    crate = await _operator_product(seeded, body)
    found = await search(client, ship_to="CN", q="lobsters", limit=100)
    ids = [h["id"] for h in found["items"]]
    lobster_titles = demo_products(lambda p: "lobster" in p["title"].lower())
    # Stemmed: "lobsters" finds "lobster"; every title hit before the description-only one.
    assert set(ids) == lobster_titles | {crate}
    assert ids[-1] == crate
    # Words, not substrings: "obst" is in "lobster" but is no word of any listing.
    assert (await search(client, ship_to="CN", q="obst"))["items"] == []
    # Every word must match.
    both = await search(client, ship_to="CN", q="lobster tails", limit=100)
    assert {h["id"] for h in both["items"]} == demo_products(lambda p: "tails" in p["title"])


async def _operator_product(seeded, body: dict[str, Any]) -> str:
    """A product of the hub's own seller, made in the service (no partner owns it)."""
    from ehub_catalog.catalog import service
    from ehub_catalog.catalog.schemas import ProductCreate

    db = seeded.app.state.ctx.db
    async with db.sessionmaker() as session:
        product = await service.create_product(
            session, data=ProductCreate.model_validate(body), hub="CA"
        )
        await session.commit()
        return product.id


async def test_filters_narrow_the_listings(seeded):
    client = seeded.client
    got = await search(client, ship_to="CN", q="tea", limit=100)
    tea = demo_products(lambda p: "tea" in words(p["title"] + " " + p["description"]))
    assert {h["id"] for h in got["items"]} == tea and len(tea) > 10
    for filt, pred in [
        ({"origin": "MY"}, lambda p: p["origin_country"] == "MY"),
        ({"hs_chapter": "09"}, lambda p: p["hs_code"].startswith("09")),
        ({"hs_prefix": "090230"}, lambda p: p["hs_code"] == "090230"),
        (
            {"price_currency": "MYR", "min_price": "30", "max_price": "40"},
            lambda p: p["currency"] == "MYR" and 30 <= float(p["price"]) <= 40,
        ),
    ]:
        got = await search(client, ship_to="CN", q="tea", limit=100, **filt)
        expected = tea & demo_products(pred)
        assert expected and {h["id"] for h in got["items"]} == expected, filt
    verified = {f"sel_demo_{s['key']}" for s in demo_catalog()["sellers"] if s["sme_verified"]}
    got = await search(client, ship_to="CN", verified_sme="true", limit=100)
    assert got["items"] and all(h["seller"]["id"] in verified for h in got["items"])
    got = await search(client, ship_to="CN", verified_sme="false", limit=100)
    assert got["items"] and not any(h["seller"]["id"] in verified for h in got["items"])


async def test_cursor_pages_through_every_hit_once(seeded):
    client = seeded.client
    whole = await search(client, ship_to="BE", q="coffee", limit=100)
    expected = [h["id"] for h in whole["items"]]
    assert len(expected) > 7 and whole["next_cursor"] is None
    seen: list[str] = []
    params: dict[str, Any] = {"ship_to": "BE", "q": "coffee", "limit": 3}
    while True:
        page = await search(client, **params)
        seen += [h["id"] for h in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == expected


async def test_a_cursor_is_bound_to_its_search(seeded):
    client = seeded.client
    page = await search(client, ship_to="CN", q="tea", limit=2)
    cursor = page["next_cursor"]
    for other in (
        {"ship_to": "CN", "q": "coffee"},
        {"ship_to": "CN", "q": "tea", "origin": "MY"},
        {"ship_to": "BE", "q": "tea"},
        {"q": "tea"},  # the caller's own list
    ):
        r = await client.get(
            "/v1/products", params={**other, "cursor": cursor}, headers=gw("prt_market")
        )
        assert problem(r, "cursor")["errors"][0]["type"] == "cursor_mismatch", other
    body, mac = cursor.split(".")
    for forged in (f"{body}.{mac[:-2]}AA", "garbage", f"{body[:-4]}.{mac}", "a.b.c"):
        r = await client.get(
            "/v1/products",
            params={"ship_to": "CN", "q": "tea", "cursor": forged},
            headers=gw("prt_market"),
        )
        assert problem(r, "cursor")["errors"][0]["type"] == "invalid_cursor", forged
    # Another partner's cursor of its own list is not this partner's.
    own = await search(client, gw("prt_a"), limit=1)
    assert own["items"] == [] and own["next_cursor"] is None


async def test_listings_are_everyones_own_products_stay_own(seeded):
    client = seeded.client
    r = await client.post(
        "/v1/sellers", json={"name": "Cove Co", "country": "CA"}, headers=gw("prt_a")
    )
    seller = r.json()["id"]
    body = {
        "seller_id": seller,
        "title": "Smoked salmon fillet",
        "hs_code": "030632",
        "origin_country": "CA",
        "price": "30.00",
        "currency": "CAD",
        "weight_kg": "0.5",
        "dimensions_cm": {"length": 30, "width": 12, "height": 4},
    }
    r = await client.post("/v1/products", json=body, headers=gw("prt_a"))
    assert r.status_code == 201, r.text
    product = r.json()
    dims = {k: float(v) for k, v in product["dimensions_cm"].items()}
    assert dims == {"length": 30, "width": 12, "height": 4}
    hits = (await search(client, gw("prt_b"), ship_to="CN", q="salmon"))["items"]
    assert [h["id"] for h in hits] == [product["id"]]
    assert hits[0]["source_hub"] == "CA" and hits[0]["seller"]["name"] == "Cove Co"
    assert "owner" not in hits[0]
    # Without ship_to: one's own products, as before (B has none, A its one).
    assert (await search(client, gw("prt_b"), q="salmon"))["items"] == []
    own = (await search(client, gw("prt_a"), q="salmon"))["items"]
    assert [p["id"] for p in own] == [product["id"]] and own[0]["owner"] == "prt_a"
    # The operator's verdict on the seller reaches its listings at once.
    assert hits[0]["seller"]["sme_verified"] is False
    r = await client.post(
        f"/operator/v1/sellers/{seller}/verification", json={"sme_verified": True}, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    got = await search(client, gw("prt_b"), ship_to="CN", q="salmon", verified_sme="true")
    assert [h["seller"]["sme_verified"] for h in got["items"]] == [True]


SYNTAX = ['"lobster', "lob*", "lobster NEAR tea", "title:lobster", "-lobster", "(lobster", "a)"]


@pytest.mark.parametrize("q", SYNTAX)
async def test_search_syntax_in_q_is_422(seeded, q):
    r = await seeded.client.get(
        "/v1/products", params={"ship_to": "CN", "q": q}, headers=gw("prt_market")
    )
    problem(r, "q")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "lobster " * 1300}, "q"),  # 10 kB
        ({"q": "... &&"}, "q"),
        ({"colour": "red"}, "colour"),
        ({"q": "tea", "hs_chapter": "9"}, "hs_chapter"),
        ({"origin": "XYZ"}, "origin"),
        ({"min_price": "10"}, "price_currency"),
        ({"min_price": "10", "max_price": "5", "price_currency": "CAD"}, "min_price"),
        ({"currency": "CNY"}, "currency"),  # without ship_to
        ({"ship_to": "FR"}, "currency"),  # no default currency known
        ({"ship_to": "CN", "currency": "XXQ"}, "currency"),
        ({"ship_to": "CN", "limit": "1000"}, "limit"),
    ],
)
async def test_bad_search_input_is_422_naming_it(seeded, params, field):
    r = await seeded.client.get("/v1/products", params=params, headers=gw("prt_market"))
    problem(r, field)


async def test_words_with_operators_in_lower_case_and_hyphens_are_searched(seeded):
    client = seeded.client
    got = await search(client, ship_to="CN", q="T-shirt")
    assert got["items"] and all("t-shirt" in h["title"].lower() for h in got["items"])
    assert (await search(client, ship_to="CN", q="near not and or"))["items"] == []

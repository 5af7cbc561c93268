"""Fuzz findings kept as regression tests (docs/security.md): a quote's numbers are
finite and bounded (``1e400`` kg used to be quoted 200), free text has no control
characters; each refusal is a 422 naming the field."""

from __future__ import annotations

import pytest

from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app
from ehub_customs.settings import CustomsSettings

ITEM = {
    "hs_code": "0306.32",
    "description": "live lobster",
    "quantity": 2,
    "unit_value": "400.00",
    "unit_weight_kg": "0.6",
    "country_of_origin": "CA",
}
BODY = {
    "origin": "CA",
    "destination": "CN",
    "date": "2026-11-26",
    "currency": "CNY",
    "items": [ITEM],
    "shipping": "120.00",
}


@pytest.fixture(scope="module")
async def client(tmp_path_factory):
    # Validation happens before any query: one app (the rule book loads in ~2 s) for all.
    var = tmp_path_factory.mktemp("customs")
    app = create_app(
        CustomsSettings(database_url=f"sqlite+aiosqlite:///{var}/customs.db", var_dir=var)
    )
    async with serve_in_process(app) as c:
        yield c


def _refused(r, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in r.json()["errors"]}


async def test_the_reference_quote_still_works(client):
    r = await client.post("/v1/landed-cost", json=BODY)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"unit_weight_kg": "1e400"}, "items.0.unit_weight_kg"),
        ({"unit_weight_kg": 10**400}, "items.0.unit_weight_kg"),
        ({"unit_weight_kg": "Infinity"}, "items.0.unit_weight_kg"),
        ({"unit_weight_kg": "NaN"}, "items.0.unit_weight_kg"),
        ({"unit_weight_kg": "100001"}, "items.0.unit_weight_kg"),
        ({"unit_volume_l": "1e30"}, "items.0.unit_volume_l"),
        ({"abv": "sNaN"}, "items.0.abv"),
        ({"unit_value": "Infinity"}, "items.0.unit_value"),
        ({"unit_value": "1e400"}, "items.0.unit_value"),
        ({"description": "lobster\x00"}, "items.0.description"),
        ({"description": "\x1b[31mlobster"}, "items.0.description"),
    ],
)
async def test_unbounded_item_values_are_422_naming_the_field(client, item, field):
    _refused(await client.post("/v1/landed-cost", json=BODY | {"items": [ITEM | item]}), field)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"target_total": "1e400"}, "target_total"),
        ({"target_total": "Infinity"}, "target_total"),
        ({"shipping": "NaN"}, "shipping"),
        ({"insurance": "-Infinity"}, "insurance"),
        ({"buyer_id": "buyer\x00"}, "buyer_id"),
    ],
)
async def test_unbounded_quote_values_are_422_naming_the_field(client, over, field):
    _refused(await client.post("/v1/landed-cost", json=BODY | over), field)


@pytest.mark.parametrize("date", [0, 1767225600, "20261126", "2026-11-26T00:00:00"])
async def test_dates_are_written_yyyy_mm_dd(client, date):
    # A Unix timestamp used to be read as a date (0 = 1970-01-01), against the document.
    _refused(await client.post("/v1/landed-cost", json=BODY | {"date": date}), "date")
    r = await client.get("/v1/rules/CN", params={"date": str(date)})
    assert r.status_code == 422, r.text


async def test_a_quote_has_the_documented_shape(client):
    # Found by response-schema conformance: `valuation` is an object, documented a string.
    from ehub_customs.landed_cost.schemas import LandedCostRead

    forward = await client.post("/v1/landed-cost", json=BODY)
    assert forward.status_code == 200, forward.text
    LandedCostRead.model_validate(forward.json())
    target = forward.json()["totals"]["landed"]
    reverse = await client.post("/v1/landed-cost", json=BODY | {"target_total": target})
    assert reverse.status_code == 200, reverse.text
    LandedCostRead.model_validate(reverse.json())

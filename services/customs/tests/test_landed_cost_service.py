"""Landed cost as a service: the route answers what the in-process service function
answers, the documented response model is the returned shape, only cross-border
consignments between ISO 3166-1 countries are quoted, and amounts round to the ISO 4217
minor unit of their currency (UGX and VND whole units, KWD three decimals)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app
from ehub_customs.landed_cost import service
from ehub_customs.landed_cost.schemas import LandedCostCreate, LandedCostRead
from ehub_customs.settings import CustomsSettings

BODY: dict[str, Any] = {
    "origin": "CA",
    "destination": "CN",
    "date": "2026-11-26",
    "currency": "CAD",
    "buyer_currency": "CNY",
    "items": [
        {
            "hs_code": "0306.32",
            "quantity": 3,
            "unit_value": "40.17",
            "unit_weight_kg": "0.8",
            "country_of_origin": "CA",
        }
    ],
    "shipping": "22.00",
    "buyer_id": "buyer-42",
}
# Indicative test rates (units per USD), added to a copy of the bundled rates file.
TEST_RATES = {"UGX": "3712.37", "VND": "25431.70", "KWD": "0.30713"}


@pytest.fixture
def tariff_dir(tmp_path: Path) -> Path:
    src = Path(str(files("ehub_customs.tariffs") / "data"))
    dst = tmp_path / "tariffs"
    shutil.copytree(src, dst)
    fx = yaml.safe_load((dst / "fx.yaml").read_text())
    for day in fx["days"]:
        day["rates"] = {k: str(v) for k, v in day["rates"].items()} | TEST_RATES
    (dst / "fx.yaml").write_text(yaml.safe_dump(fx))
    return dst


@pytest.fixture
async def app(tmp_path, tariff_dir):
    settings = CustomsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/customs.db",
        var_dir=tmp_path,
        tariff_dir=tariff_dir,
    )
    return create_app(settings)


@pytest.fixture
async def client(app):
    async with serve_in_process(app) as c:
        yield c


async def test_route_answers_what_the_service_function_answers(app, client):
    r = await client.post("/v1/landed-cost", json=BODY)
    assert r.status_code == 200, r.text
    in_process = await service.landed_cost(
        book=app.state.rulebook, db=app.state.ctx.db, body=LandedCostCreate.model_validate(BODY)
    )
    assert r.json() == in_process
    assert in_process["regime"]["mode"] == "within_limits"


async def test_forward_and_reverse_answers_match_the_response_model(client):
    forward = (await client.post("/v1/landed-cost", json=BODY)).json()
    model = LandedCostRead.model_validate(forward)  # extra keys are forbidden
    assert model.valuation.basis in ("CIF", "FOB") and model.reverse is None
    r = await client.post(
        "/v1/landed-cost", json=BODY | {"target_total": forward["totals"]["landed"]}
    )
    reverse = LandedCostRead.model_validate(r.json())
    assert reverse.mode == "reverse" and reverse.reverse is not None


async def test_openapi_documents_the_true_shape_and_an_example(client):
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/landed-cost"]["post"]
    assert op["summary"] and op["description"]
    assert op["requestBody"]["content"]["application/json"]["examples"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    read = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "$ref" in str(read["properties"]["valuation"])  # an object, not a string


@pytest.mark.parametrize("country", ["CN", "cn"])
async def test_origin_equal_to_destination_is_not_cross_border(client, country):
    r = await client.post("/v1/landed-cost", json=BODY | {"origin": country})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["type"].endswith("/not-cross-border")
    assert [e["loc"] for e in body["errors"]] == [["body", "destination"]]


async def test_unknown_origin_is_422_naming_it(client):
    r = await client.post("/v1/landed-cost", json=BODY | {"origin": "ZZ"})
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "origin"]]


def _places(amount: str) -> int:
    exponent = Decimal(amount).as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent


@pytest.mark.parametrize(("currency", "places"), [("UGX", 0), ("VND", 0), ("KWD", 3)])
async def test_landed_cost_in_the_buyer_currency_has_its_minor_unit(client, currency, places):
    r = await client.post("/v1/landed-cost", json=BODY | {"buyer_currency": currency})
    assert r.status_code == 200, r.text
    totals = r.json()["buyer_totals"]
    assert totals["currency"] == currency
    amounts = {k: v for k, v in totals.items() if k != "currency"}
    assert {k: _places(v) for k, v in amounts.items()} == dict.fromkeys(amounts, places)
    # The amounts are converted, not zero: rounding had something to round.
    assert Decimal(totals["landed"]) > 0


async def test_batch_in_whole_unit_currency(client, app):
    """The catalog's batch answers in UGX/VND in whole units too."""
    from ehub_customs.landed_cost.batch import BatchCreate, price_batch

    body = BatchCreate.model_validate(
        {
            "destination": "CN",
            "currency": "VND",
            "date": "2026-11-26",
            "items": [
                {
                    "ref": "x",
                    "origin": "CA",
                    "hs_code": "610910",
                    "unit_value": "19.99",
                    "value_currency": "CAD",
                }
            ],
        }
    )
    q = price_batch(book=app.state.rulebook, body=body)["quotes"][0]
    assert q["ok"] is True
    assert [_places(q[k]) for k in ("goods", "duty", "tax", "total")] == [0, 0, 0, 0]

"""``POST /operator/v1/landed-cost/batch`` on the real app: one item's failure is that
item's answer, the batch is bounded, the operator's guard applies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app
from ehub_customs.landed_cost.batch import BatchRead
from ehub_customs.settings import CustomsSettings

TOKEN = "customs-batch-test-internal-token"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/operator/v1/landed-cost/batch"


def item(ref: str, **over: Any) -> dict[str, Any]:
    base = {
        "ref": ref,
        "origin": "CA",
        "hs_code": "030632",
        "unit_value": "40.00",
        "value_currency": "CAD",
        "unit_weight_kg": "0.8",
        "quantity": 1,
    }
    return base | over


def batch(items: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    return {"destination": "CN", "currency": "CNY", "date": "2026-12-02", "items": items} | over


@pytest.fixture
async def client(tmp_path):
    settings = CustomsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/customs.db",
        var_dir=tmp_path,
        internal_token=TOKEN,
    )
    async with serve_in_process(create_app(settings)) as c:
        yield c


async def test_mixed_batch_prices_good_items_and_answers_each_bad_one(client):
    items = [
        item("lobster"),
        item("domestic", origin="CN"),
        item("nowhere", origin="ZZ"),
        item("bad-hs", hs_code="77.00.00"),
        item("no-rate", value_currency="KWD"),
        item("tee", origin="gb", hs_code="6109.10", unit_value="100", value_currency="GBP"),
        item("rifle", origin="US", hs_code="930320", value_currency="USD"),
    ]
    r = await client.post(PATH, json=batch(items), headers=OPERATOR)
    assert r.status_code == 200, r.text
    body = r.json()
    BatchRead.model_validate(body)  # the declared response model is what is returned
    assert body["currency"] == "CNY"
    quotes = {q["ref"]: q for q in body["quotes"]}
    assert [q["ref"] for q in body["quotes"]] == [i["ref"] for i in items]

    problems = {
        ref: q["problem"]["type"].rsplit("/", 1)[1] for ref, q in quotes.items() if not q["ok"]
    }
    assert problems == {
        "domestic": "not-cross-border",
        "nowhere": "unknown-country",
        "bad-hs": "unknown-hs-code",
        "no-rate": "no-fx-rate",
    }
    for ref in ("domestic", "nowhere", "bad-hs", "no-rate"):
        assert quotes[ref]["ok"] is False and quotes[ref]["problem"]["detail"]

    for ref in ("lobster", "tee", "rifle"):
        q = quotes[ref]
        assert q["ok"] is True and "problem" not in q
        parts = [Decimal(q[k]) for k in ("goods", "shipping", "duty", "tax")]
        assert sum(parts) == Decimal(q["total"])
        assert Decimal(q["goods"]) > 0 and Decimal(q["shipping"]) == 0
        # CNY has two decimals (ISO 4217).
        assert all(-Decimal(q[k]).as_tuple().exponent == 2 for k in ("goods", "total"))  # type: ignore[operator]

    # Restricted-goods screening by HS code: live lobster needs a permit, arms are barred.
    assert quotes["lobster"]["importable"] is True
    assert quotes["lobster"]["restriction"]["kind"] == "restricted"
    assert quotes["lobster"]["restriction"]["requires"] == "quarantine_permit"
    assert quotes["rifle"]["importable"] is False
    assert quotes["rifle"]["restriction"]["kind"] == "prohibited"
    assert quotes["tee"]["importable"] is True and quotes["tee"]["restriction"] is None


async def test_batch_amounts_match_single_quotes(client):
    """An item of the batch costs what the partner quote of the same consignment costs."""
    r = await client.post(PATH, json=batch([item("lobster")]), headers=OPERATOR)
    got = r.json()["quotes"][0]
    single = {
        "origin": "CA",
        "destination": "CN",
        "date": "2026-12-02",
        "currency": "CAD",
        "buyer_currency": "CNY",
        "items": [
            {
                "hs_code": "030632",
                "quantity": 1,
                "unit_value": "40.00",
                "unit_weight_kg": "0.8",
                "country_of_origin": "CA",
            }
        ],
    }
    r = await client.post("/operator/v1/landed-cost", json=single, headers=OPERATOR)
    assert r.status_code == 200, r.text
    totals = r.json()["buyer_totals"]
    assert got["goods"] == totals["goods"]
    assert got["duty"] == totals["duty"]
    assert Decimal(got["tax"]) == Decimal(totals["charges"]) - Decimal(totals["duty"])


async def test_batch_of_201_items_is_422_and_200_is_answered(client):
    r = await client.post(PATH, json=batch([item(f"p{i}") for i in range(201)]), headers=OPERATOR)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "items" in r.json()["detail"]
    r = await client.post(PATH, json=batch([item(f"p{i}") for i in range(200)]), headers=OPERATOR)
    assert r.status_code == 200, r.text
    assert len(r.json()["quotes"]) == 200


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"destination": "ZZ"}, "destination"),
        ({"currency": "XAU"}, "currency"),
        ({"date": "1990-01-01"}, "date"),
        ({"items": []}, "items"),
    ],
)
async def test_a_bad_batch_field_is_422_naming_it(client, over, field):
    r = await client.post(PATH, json=batch([item("a")]) | over, headers=OPERATOR)
    assert r.status_code == 422, r.text
    body = r.json()
    assert any(e["loc"][-1] == field or field in e["loc"] for e in body["errors"]), body


async def test_batch_needs_the_operator_credential(client):
    r = await client.post(PATH, json=batch([item("a")]))
    assert r.status_code == 401
    r = await client.post(PATH, json=batch([item("a")]), headers={"Authorization": "Bearer no"})
    assert r.status_code == 401

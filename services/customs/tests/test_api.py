"""The customs HTTP API on the real app (migrations, SQLite/Postgres, problem+json)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ehub_core.testing import serve_in_process
from ehub_customs.allowances.service import record_order
from ehub_customs.app import create_app
from ehub_customs.settings import CustomsSettings

BODY = {
    "origin": "CA",
    "destination": "CN",
    "date": "2026-11-26",
    "currency": "CNY",
    "items": [
        {
            "hs_code": "0306.32",
            "description": "live lobster",
            "quantity": 2,
            "unit_value": "400.00",
            "unit_weight_kg": "0.6",
            "country_of_origin": "CA",
        }
    ],
    "shipping": "120.00",
    "insurance": "5.00",
    "buyer_id": "buyer-42",
    "seller_sme_verified": True,
    "incoterm": "DDP",
}


@pytest.fixture
async def app(database_url, tmp_path):
    return create_app(CustomsSettings(database_url=database_url, var_dir=tmp_path))


@pytest.fixture
async def client(app):
    async with serve_in_process(app) as c:
        yield c


async def test_landed_cost_quote_cites_rules(client):
    r = await client.post("/v1/landed-cost", json=BODY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["regime"]["mode"] == "within_limits"
    assert body["fast_track"] is False or body["lane"] is not None
    charges = body["lines"][0]["charges"]
    assert all(c["rule_id"] and c["source"]["title"] for c in charges)
    assert body["totals"]["currency"] == "CNY"
    assert Decimal(body["totals"]["landed"]) >= Decimal("925.00")
    assert body["fx"]["to_destination"]["rate"] == "1"


async def test_reverse_mode_returns_net_prices(client):
    forward = (await client.post("/v1/landed-cost", json=BODY)).json()
    r = await client.post(
        "/v1/landed-cost", json={**BODY, "target_total": forward["totals"]["landed"]}
    )
    assert r.status_code == 200, r.text
    rev = r.json()
    assert rev["mode"] == "reverse" and rev["reverse"]["exact"] is True
    assert rev["reverse"]["net_unit_values"] == ["400.00"]


async def test_rules_endpoint_lists_rules_in_force_with_sources(client):
    r = await client.get("/v1/rules/BE", params={"date": "2026-07-01"})
    assert r.status_code == 200
    body = r.json()
    assert [f["id"] for f in body["flat_duties"]] == ["be.lvc.flat-eur3"]
    assert all(d["source"]["title"] for d in body["duty"])
    assert "be.lvc.duty-relief-150" not in [t["id"] for t in body["thresholds"]]
    before = (await client.get("/v1/rules/BE", params={"date": "2026-06-30"})).json()
    assert before["flat_duties"] == []


async def test_rules_for_unknown_country_is_404(client):
    r = await client.get("/v1/rules/ZZ")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_allowance_ledger_counts_committed_orders_once(app, client):
    ctx = app.state.ctx
    when = datetime(2026, 3, 1, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        assert await record_order(
            session,
            event_id="ev-1",
            country="CN",
            buyer_id="buyer-42",
            order_id="ord_1",
            amount=Decimal("24000.00"),
            currency="CNY",
            occurred_at=when,
        )
    async with ctx.db.transaction() as session:
        assert not await record_order(
            session,
            event_id="ev-1",
            country="CN",
            buyer_id="buyer-42",
            order_id="ord_1",
            amount=Decimal("24000.00"),
            currency="CNY",
            occurred_at=when,
        )
    r = await client.get("/v1/allowances/CN/buyer-42", params={"date": "2026-11-26"})
    assert r.status_code == 200, r.text
    assert r.json()["used"] == "24000.00" and r.json()["remaining"] == "2000.00"
    # The quote now reads the ledger: 2000.01 more crosses the annual limit.
    body = {
        **BODY,
        "origin": "GB",
        "seller_sme_verified": False,
        "items": [
            {
                "hs_code": "6109.10",
                "quantity": 1,
                "unit_value": "2000.01",
                "country_of_origin": "GB",
            }
        ],
        "shipping": "0",
        "insurance": "0",
    }
    quote = (await client.post("/v1/landed-cost", json=body)).json()
    assert quote["regime"]["mode"] == "general_trade"
    assert quote["regime"]["allowance_used"] == "24000.00"


async def test_allowance_for_country_without_quota_is_404(client):
    r = await client.get("/v1/allowances/GB/buyer-1")
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"destination": "ZZ"}, "destination"),
        ({"items": [{**BODY["items"][0], "hs_code": "0306"}]}, "items.0.hs_code"),
        ({"items": [{**BODY["items"][0], "hs_code": "03063A"}]}, "items.0.hs_code"),
        ({"items": [{**BODY["items"][0], "quantity": -1}]}, "items.0.quantity"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": "ABC"}, "currency"),
        ({"origin": "XX"}, "origin"),
        ({"items": [{**BODY["items"][0], "country_of_origin": "ZZ"}]}, "items.0.country_of_origin"),
        ({"date": "1990-01-01"}, "date"),
        ({"shipping": "-1"}, "shipping"),
    ],
)
async def test_bad_input_is_422_problem_naming_the_field(client, patch, field):
    r = await client.post("/v1/landed-cost", json={**BODY, **patch})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = [".".join(str(p) for p in e["loc"][1:]) for e in r.json()["errors"]]
    assert field in fields

"""POST /v1/rates against the real app and its installed carriers."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

BODY = {
    "origin": {"country": "CA", "postal_code": "B3H 1A1"},
    "destination": {"country": "CN", "postal_code": "518000"},
    "parcels": [
        {"weight": "1", "length": 10, "width": 10, "height": 10},
        {"weight": "12", "length": 60, "width": 40, "height": 40},
    ],
    "declared_value": {"amount": "180.00", "currency": "USD"},
}


def body(**over):
    return BODY | over


async def test_every_carrier_answers_sorted_by_price_and_by_transit(client):
    r = await client.post("/v1/rates", json=BODY)
    assert r.status_code == 200, r.text
    data = r.json()
    rates = data["rates"]
    assert {q["carrier"] for q in rates} == {"express", "postal", "consolidator"}
    totals = [D(q["total"]) for q in rates]
    assert totals == sorted(totals)
    transit = {q["rate_id"]: q["transit_days"] for q in rates}
    assert [transit[i] for i in data["by_transit"]] == sorted(transit.values())
    assert data["cheapest"] == rates[0]["rate_id"]
    assert transit[data["fastest"]] == min(transit.values())
    express = next(q for q in rates if q["service"] == "express_worldwide")
    # 1 kg + 19.2 kg volumetric (60x40x40/5000) = 20.2 -> 20.5 kg -> 30 kg break, zone 3
    assert express["weights"] == {
        "actual_kg": "13.000",
        "volumetric_kg": "19.400",
        "chargeable_kg": "20.5",
    }
    assert express["total"] == "480.00" and express["currency"] == "USD"
    assert express["charges"] == {
        "base": "400.00",
        "fuel_surcharge": "80.00",
        "remote_area_fee": "0.00",
    }
    assert express["carrier_name"].startswith("ehub Express")


async def test_the_same_request_gets_the_same_rate_ids(client):
    first = (await client.post("/v1/rates", json=BODY)).json()
    second = (await client.post("/v1/rates", json=BODY)).json()
    assert [q["rate_id"] for q in first["rates"]] == [q["rate_id"] for q in second["rates"]]


async def test_wishes_narrow_carriers_and_service_levels(client):
    wishes = {"carriers": ["postal", "express"], "service_levels": ["express"]}
    r = await client.post("/v1/rates", json=body(wishes=wishes))
    assert {(q["carrier"], q["service"]) for q in r.json()["rates"]} == {
        ("postal", "ems"),
        ("express", "express_worldwide"),
    }


async def test_lanes_a_carrier_does_not_serve_are_explained(client):
    domestic = body(destination={"country": "CA", "postal_code": "M5V 2T6"})
    data = (await client.post("/v1/rates", json=domestic)).json()
    assert "consolidator: lane CA->CA is not served" in data["messages"]
    assert {q["carrier"] for q in data["rates"]} == {"express", "postal"}


async def test_pounds_and_inches_are_converted(client):
    metric = body(
        parcels=[{"weight": "0.90718474", "length": "25.4", "width": "25.4", "height": "25.4"}]
    )
    imperial = body(
        parcels=[
            {
                "weight": "2",
                "length": 10,
                "width": 10,
                "height": 10,
                "weight_unit": "lb",
                "dimension_unit": "in",
            }
        ]
    )
    a = (await client.post("/v1/rates", json=metric)).json()["rates"]
    b = (await client.post("/v1/rates", json=imperial)).json()["rates"]
    assert [(q["service"], q["total"]) for q in a] == [(q["service"], q["total"]) for q in b]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"parcels": [{"weight": "-1", "length": 10, "width": 10, "height": 10}]},
            "parcels.0.weight",
        ),
        ({"destination": {"country": "XX"}}, "destination.country"),
        ({"parcels": []}, "parcels"),
        ({"declared_value": {"amount": "10", "currency": "ABC"}}, "declared_value.currency"),
        (
            {"parcels": [{"weight": "1", "length": 0, "width": 10, "height": 10}]},
            "parcels.0.length",
        ),
    ],
)
async def test_bad_input_is_a_422_problem_naming_the_field(client, change, field):
    r = await client.post("/v1/rates", json=body(**change))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert field in problem["detail"]


async def test_an_unknown_carrier_wish_names_the_field(client):
    r = await client.post("/v1/rates", json=body(wishes={"carriers": ["dhl"]}))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "wishes.carriers"

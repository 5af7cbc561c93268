"""Golden pricing cases for each simulator's rate card, worked out by hand from the
YAML files in ehub_logistics/carriers/data."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehub_logistics.carriers.base import Address, Parcel, RateRequest, ServiceLevel
from ehub_logistics.carriers.pricing import add_business_days, price_request, round_up
from ehub_logistics.carriers.ratecard import RateCard, load_rate_card

DATA = Path(str(files("ehub_logistics.carriers") / "data"))
MONDAY = date(2026, 3, 2)


def card(name: str) -> RateCard:
    return load_rate_card(DATA / f"{name}-2026-01-01.yaml")


def parcel(kg: str, length: int = 10, width: int = 10, height: int = 10) -> Parcel:
    return Parcel(D(kg), D(length), D(width), D(height))


def request(
    origin: str,
    dest: str,
    *parcels: Parcel,
    postal: str | None = None,
    services: set[str] | None = None,
    levels: set[ServiceLevel] | None = None,
    max_days: int | None = None,
) -> RateRequest:
    return RateRequest(
        origin=Address(origin),
        destination=Address(dest, postal_code=postal),
        parcels=parcels,
        declared_value=D("100"),
        currency="USD",
        ship_date=MONDAY,
        services=frozenset(services) if services else None,
        service_levels=frozenset(levels) if levels else None,
        max_transit_days=max_days,
    )


def quote(name: str, req: RateRequest, service: str):
    result = price_request(card(name), req)
    by_service = {q.service: q for q in result.quotes}
    assert service in by_service, result.messages
    return by_service[service]


# ---- express: per shipment, 5000 divisor, 0.5 kg steps, 20 % fuel ------------------


def test_express_weight_exactly_on_a_break_takes_that_break():
    q = quote("express", request("CN", "CA", parcel("1.0")), "express_worldwide")
    assert q.zone == "3"  # ASIA -> NAM
    assert q.chargeable_weight_kg == D("1.0")
    assert (q.base, q.fuel_surcharge, q.total) == (D("48.00"), D("9.60"), D("57.60"))


def test_express_just_over_a_break_rounds_to_the_next_step_and_break():
    q = quote("express", request("CN", "CA", parcel("1.01")), "express_worldwide")
    assert q.chargeable_weight_kg == D("1.5")  # 0.5 kg step, priced at the 2 kg break
    assert q.total == D("74.40")  # 62.00 + 20 %


def test_express_volumetric_weight_wins_over_actual():
    # 40 x 30 x 30 cm = 36 000 cm3 / 5000 = 7.2 kg > 2 kg actual -> 7.5 kg -> 10 kg break
    q = quote("express", request("CN", "CA", parcel("2", 40, 30, 30)), "express_worldwide")
    assert q.actual_weight_kg == D("2.000")
    assert q.volumetric_weight_kg == D("7.200")
    assert q.chargeable_weight_kg == D("7.5")
    assert (q.base, q.fuel_surcharge, q.total) == (D("170.00"), D("34.00"), D("204.00"))


def test_express_sums_parcels_before_rounding():
    # 1 kg (vol 0.2) + 12 kg (vol 60x40x40/5000 = 19.2) = 20.2 -> 20.5 kg: above 20 kg break
    req = request("CA", "CN", parcel("1"), parcel("12", 60, 40, 40))
    q = quote("express", req, "express_worldwide")
    assert q.chargeable_weight_kg == D("20.5")
    assert q.total == D("480.00")  # 400.00 (30 kg break) + 20 %


def test_express_above_the_last_break_charges_per_started_kg():
    q = quote("express", request("CN", "CA", parcel("31.2", 20, 20, 20)), "express_worldwide")
    assert q.chargeable_weight_kg == D("31.5")
    assert q.base == D("424.00")  # 400.00 + 2 started kg x 12.00


def test_express_zones_domestic_regional_intercontinental_rest_of_world():
    z = card("express").zone_for
    assert (z("CN", "CN"), z("CN", "MY"), z("CN", "CA"), z("RW", "CN"), z("RW", "KE")) == (
        "1",
        "2",
        "3",
        "4",
        "2",
    )


def test_express_remote_area_fee_has_a_minimum_and_a_per_kg_rate():
    small = quote(
        "express", request("CN", "CA", parcel("1"), postal="X0A 0H0"), "express_worldwide"
    )
    assert small.remote_area_fee == D("25.00")  # max(25.00, 0.50 x 1 kg)
    heavy = quote(
        "express",
        request("CN", "CA", parcel("60", 20, 20, 20), postal="x0a0h0"),
        "express_worldwide",
    )
    assert heavy.remote_area_fee == D("30.00")  # 0.50 x 60 kg
    assert heavy.total == heavy.base + heavy.fuel_surcharge + D("30.00")


def test_express_economy_does_not_serve_domestic_and_says_why():
    result = price_request(card("express"), request("CN", "CN", parcel("1")))
    assert [q.service for q in result.quotes] == ["express_worldwide"]
    assert result.messages == ["express/economy_select: zone 1 is not served"]


# ---- postal: per parcel, 6000 divisor, 100 g steps, 4 % fuel --------------------------


def test_postal_prices_each_parcel_on_its_own():
    # 0.5 kg -> 0.5 break (16.00); 1.2 kg -> 2 kg break (26.00): zone B (CA -> CN)
    req = request("CA", "CN", parcel("0.5"), parcel("1.2"))
    q = quote("postal", req, "priority_parcel")
    assert q.zone == "B"
    assert q.chargeable_weight_kg == D("1.7")
    assert (q.base, q.fuel_surcharge, q.total) == (D("42.00"), D("1.68"), D("43.68"))


def test_postal_weight_exactly_on_a_break_and_volumetric_winning():
    on_break = quote("postal", request("CN", "MY", parcel("2.0")), "ems")
    assert (on_break.zone, on_break.base) == ("A", D("28.00"))
    # 50 x 40 x 30 = 60 000 cm3 / 6000 = 10 kg > 3 kg actual -> 10 kg break
    bulky = quote("postal", request("CN", "MY", parcel("3", 50, 40, 30)), "ems")
    assert bulky.chargeable_weight_kg == D("10.0")
    assert (bulky.base, bulky.total) == (D("75.00"), D("78.00"))


def test_postal_rounds_to_100_grams():
    q = quote("postal", request("CN", "CN", parcel("0.51")), "priority_parcel")
    assert q.chargeable_weight_kg == D("0.6")
    assert q.base == D("6.00")  # 1 kg break, domestic


def test_postal_refuses_a_parcel_over_30_kg_with_a_reason():
    result = price_request(card("postal"), request("CN", "CA", parcel("31", 20, 20, 20)))
    assert result.quotes == []
    assert "postal/ems: parcel 1 weighs more than 30 kg" in result.messages


# ---- consolidator: per kg by break, minimums, sea W/M ---------------------------------


def test_consolidator_air_per_kg_rate_on_a_break():
    # exactly 45 kg: still the "-45" rate 6.00/kg on the transpacific lane T1
    q = quote("consolidator", request("CN", "CA", parcel("45", 50, 50, 50)), "air_consolidated")
    assert q.zone == "T1"
    assert q.chargeable_weight_kg == D("45")
    assert (q.base, q.fuel_surcharge, q.total) == (D("270.00"), D("32.40"), D("302.40"))


def test_consolidator_air_next_break_is_cheaper_per_kg():
    q = quote("consolidator", request("CN", "CA", parcel("45.2", 50, 50, 50)), "air_consolidated")
    assert q.chargeable_weight_kg == D("46")  # whole-kg steps
    assert q.base == D("220.80")  # 46 x 4.80


def test_consolidator_minimum_chargeable_weight_and_minimum_charge():
    q = quote("consolidator", request("CN", "CA", parcel("3")), "air_consolidated")
    assert q.chargeable_weight_kg == D("10")  # 10 kg minimum
    assert q.base == D("80.00")  # 10 x 6.00 = 60 < 80 minimum charge


def test_consolidator_sea_uses_one_cubic_metre_per_tonne():
    # 1 m3 at 120 kg: measure (1 000 000 / 1000 = 1000 kg) beats weight
    q = quote("consolidator", request("CN", "DE", parcel("120", 100, 100, 100)), "sea_lcl")
    assert q.volumetric_weight_kg == D("1000.000")
    assert q.chargeable_weight_kg == D("1000")
    assert (q.base, q.total) == (D("750.00"), D("840.00"))  # 0.75/kg on the 1000 kg break


def test_consolidator_does_not_carry_domestic():
    result = price_request(card("consolidator"), request("CN", "CN", parcel("50")))
    assert result.quotes == []
    assert result.messages == ["consolidator: lane CN->CN is not served"]


# ---- wishes and helpers ---------------------------------------------------------------


def test_wishes_filter_services_levels_and_transit_days():
    base = request("CN", "CA", parcel("1"))
    assert [q.service for q in price_request(card("postal"), base).quotes] == [
        "ems",
        "priority_parcel",
        "surface_parcel",
    ]
    levels = request("CN", "CA", parcel("1"), levels={ServiceLevel.ECONOMY})
    assert [q.service for q in price_request(card("postal"), levels).quotes] == ["surface_parcel"]
    fast = price_request(card("postal"), request("CN", "CA", parcel("1"), max_days=10))
    assert [q.service for q in fast.quotes] == ["ems"]
    assert "postal/surface_parcel: 40 transit days exceed the 10 asked" in fast.messages


def test_estimated_delivery_counts_business_days():
    q = quote("express", request("CN", "CA", parcel("1")), "express_worldwide")
    assert q.transit_days == 3 and q.estimated_delivery == date(2026, 3, 5)
    assert add_business_days(date(2026, 3, 6), 1) == date(2026, 3, 9)  # Friday -> Monday


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [("1.0", "0.5", "1.0"), ("1.01", "0.5", "1.5"), ("0.0001", "0.1", "0.1"), ("7", "1", "7")],
)
def test_round_up_keeps_exact_multiples(value, step, expected):
    assert round_up(D(value), D(step)) == D(expected)


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), days=st.integers(0, 60)
)
def test_business_day_arithmetic_matches_counting_day_by_day(start, days):
    current, remaining = start, days
    while remaining:
        current += timedelta(days=1)
        remaining -= current.weekday() < 5
    assert add_business_days(start, days) == current

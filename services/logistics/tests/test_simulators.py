"""The three carrier simulators: tracking numbers, signed webhooks, scripted journeys."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from ehub_logistics.carriers.base import (
    Address,
    BookingRequest,
    CarrierError,
    Parcel,
    WebhookRejected,
)
from ehub_logistics.carriers.signing import (
    public_key_b64,
    sign_delivery,
    simulator_signing_key,
    verify_delivery,
)
from ehub_logistics.carriers.simulators import consolidator, express, postal
from ehub_logistics.carriers.simulators.adapter import SimulatorAdapter
from ehub_logistics.tracking.machine import TrackedEvent, replay
from ehub_logistics.tracking.statuses import TrackingStatus as S

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROFILES = {p.PROFILE.name: p for p in (express, postal, consolidator)}
SERVICE = {"express": "express_worldwide", "postal": "ems", "consolidator": "air_consolidated"}
FINAL = {
    "delivered": S.DELIVERED,
    "import_hold": S.DELIVERED,
    "failed_once": S.DELIVERED,
    "inspected": S.DELIVERED,
    "rolled": S.DELIVERED,
    "returned": S.RETURNED,
}


def build(name: str, **settings_values) -> SimulatorAdapter:
    values = {"carrier_simulator_seed": "simulator-tests-seed", **settings_values}
    return PROFILES[name].create(SimpleNamespace(**values))


def test_the_retired_public_seed_is_refused_and_no_seed_means_a_secret_of_the_process():
    with pytest.raises(ValueError, match="is public"):
        build("express", carrier_simulator_seed="ehub-dev-simulator")
    one = build("express", carrier_simulator_seed=None)
    two = build("postal", carrier_simulator_seed=None)
    retired = simulator_signing_key("express", "ehub-dev-simulator")
    body = b'{"carrier":"express","events":[]}'
    with pytest.raises(WebhookRejected):  # a key anyone could derive verifies nothing here
        one.parse_webhook(headers_lower(sign_delivery(retired, body)), body)
    delivery = two.carrier.deliver([])
    two.parse_webhook(headers_lower(delivery.headers), delivery.body)  # its own key: fine


def headers_lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def book(adapter: SimulatorAdapter, origin: str = "CA", dest: str = "CN") -> str:
    booking = await adapter.book(
        BookingRequest(
            service=SERVICE[adapter.name],
            shipper=Address(origin, city="Halifax"),
            recipient=Address(dest, city="Shenzhen"),
            parcels=(Parcel(D("2"), D("10"), D("10"), D("10")),),
            ship_date=date(2026, 3, 2),
        )
    )
    return booking.tracking_number


def test_s10_check_digit_matches_the_upu_example():
    assert postal.s10_check_digit("47312482") == 9  # AB 47312482 9 GB


async def test_tracking_numbers_follow_each_carrier_format():
    ex = await book(build("express"))
    assert ex.startswith("EX") and len(ex) == 12 and int(ex[2:11]) % 7 == int(ex[11])
    po = await book(build("postal"))
    assert po[:2] == "EE" and po[-2:] == "CA"
    assert postal.s10_check_digit(po[2:10]) == int(po[10])
    co = await book(build("consolidator"))
    assert co.startswith("CSLCA") and co[5:].isdigit()


def test_a_signature_verifies_and_any_tampering_is_rejected():
    key = SigningKey(b"k" * 32)
    body = b'{"carrier":"express","events":[]}'
    headers = headers_lower(sign_delivery(key, body, now=NOW))
    verify_delivery(key.verify_key, headers, body, now=NOW)
    with pytest.raises(WebhookRejected, match="does not verify"):
        verify_delivery(key.verify_key, headers, body + b" ", now=NOW)
    with pytest.raises(WebhookRejected, match="does not verify"):
        verify_delivery(SigningKey(b"x" * 32).verify_key, headers, body, now=NOW)
    with pytest.raises(WebhookRejected, match="outside the 300s window"):
        verify_delivery(key.verify_key, headers, body, now=NOW + timedelta(minutes=6))
    forged = headers | {"x-carrier-timestamp": str(int(NOW.timestamp()) + 1)}
    with pytest.raises(WebhookRejected, match="does not verify"):
        verify_delivery(key.verify_key, forged, body, now=NOW)
    with pytest.raises(WebhookRejected, match="missing"):
        verify_delivery(key.verify_key, {}, body, now=NOW)


def test_simulator_keys_are_deterministic_per_seed_and_carrier():
    a = simulator_signing_key("express", "seed-1")
    assert bytes(a) == bytes(simulator_signing_key("express", "seed-1"))
    assert bytes(a) != bytes(simulator_signing_key("postal", "seed-1"))
    assert bytes(a) != bytes(simulator_signing_key("express", "seed-2"))


async def test_the_hub_verifies_with_the_configured_public_key_only():
    other = public_key_b64(SigningKey(b"o" * 32))
    adapter = build("express", carrier_public_keys={"express": other})
    tracking = await book(adapter)
    delivery = adapter.carrier.advance(tracking)
    with pytest.raises(WebhookRejected):
        adapter.parse_webhook(headers_lower(delivery.headers), delivery.body)
    right = public_key_b64(simulator_signing_key("express", "s"))
    trusting = build("express", carrier_simulator_seed="s", carrier_public_keys={"express": right})
    tracking = await book(trusting)
    delivery = trusting.carrier.advance(tracking)
    events = trusting.parse_webhook(headers_lower(delivery.headers), delivery.body)
    assert [e.status for e in events] == [S.PICKED_UP]


async def test_webhook_events_are_translated_to_utc_and_hub_statuses():
    adapter = build("postal")
    tracking = await book(adapter)
    delivery = adapter.carrier.advance(tracking, 2)
    raw = json.loads(delivery.body)
    assert raw["events"][0]["code"] == "EMA" and raw["events"][0]["time"].endswith("-05:00")
    events = adapter.parse_webhook(headers_lower(delivery.headers), delivery.body)
    assert [(e.status, e.carrier_code) for e in events] == [
        (S.PICKED_UP, "EMA"),
        (S.IN_TRANSIT, "EMB"),
    ]
    assert events[0].occurred_at.tzinfo == UTC and events[0].country == "CA"


async def test_an_unknown_carrier_code_surfaces_as_an_exception_event():
    adapter = build("express")
    tracking = await book(adapter)
    odd = adapter.carrier.native_event(tracking, "ZZ", NOW, country="CA")
    delivery = adapter.carrier.deliver([odd])
    (event,) = adapter.parse_webhook(headers_lower(delivery.headers), delivery.body)
    assert event.status is S.EXCEPTION and event.carrier_code == "ZZ"
    assert "unmapped express code ZZ" in (event.description or "")


async def test_a_signed_but_malformed_body_is_a_value_error():
    adapter = build("express")
    body = b'{"carrier":"express","events":[{"id":"1"}]}'
    key = simulator_signing_key("express", "simulator-tests-seed")
    with pytest.raises(ValueError, match="malformed express webhook"):
        adapter.parse_webhook(headers_lower(sign_delivery(key, body)), body)


async def test_cancel_is_refused_by_the_carrier_after_pickup():
    adapter = build("express")
    tracking = await book(adapter)
    adapter.carrier.advance(tracking)
    with pytest.raises(CarrierError, match="already picked up"):
        await adapter.cancel(tracking)
    fresh = await book(adapter)
    await adapter.cancel(fresh)
    assert fresh not in adapter.carrier.active()


def test_every_native_code_maps_to_a_hub_status():
    for module in PROFILES.values():
        for scenario in module.SCENARIOS.values():
            assert {step.code for step in scenario} <= set(module.CODES)


SCENARIO_CASES = [(name, sc) for name, mod in PROFILES.items() for sc in mod.SCENARIOS]


@pytest.mark.parametrize(("carrier", "scenario"), SCENARIO_CASES)
async def test_each_scripted_journey_is_lawful_end_to_end(carrier, scenario):
    adapter = build(carrier)
    tracking = await book(adapter)
    adapter.carrier.set_scenario(tracking, scenario)
    delivery = adapter.carrier.advance(tracking, 100)
    assert adapter.carrier.advance(tracking) is None
    events = adapter.parse_webhook(headers_lower(delivery.headers), delivery.body)
    result = replay(TrackedEvent(e.event_id, e.status, e.occurred_at) for e in events)
    assert result.refused == []
    assert result.state.status is FINAL[scenario]
    assert await adapter.track(tracking) == events


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(SCENARIO_CASES), seed=st.integers(), dupes=st.integers(0, 10))
async def test_simulated_streams_shuffled_and_repeated_end_the_same(case, seed, dupes):
    carrier, scenario = case
    adapter = build(carrier)
    tracking = await book(adapter)
    adapter.carrier.set_scenario(tracking, scenario)
    batches = []
    while (delivery := adapter.carrier.advance(tracking)) is not None:
        batches.append(delivery)
    rng = random.Random(seed)
    batches += [rng.choice(batches) for _ in range(dupes)]  # redeliveries, same event ids
    rng.shuffle(batches)
    events = [
        TrackedEvent(e.event_id, e.status, e.occurred_at)
        for d in batches
        for e in adapter.parse_webhook(headers_lower(d.headers), d.body)
    ]
    assert replay(events).state.status is FINAL[scenario]


def test_scenario_choice_is_a_pure_function_of_the_tracking_number():
    a, b = build("express").carrier, build("express").carrier
    numbers = [f"EX{i:010d}" for i in range(200)]
    picks = [a._pick_scenario(n) for n in numbers]
    assert picks == [b._pick_scenario(n) for n in numbers]
    assert picks.count("delivered") > 120  # 80 % odds


def test_a_configured_scenario_is_every_parcels_when_the_carrier_has_it():
    numbers = [f"EX{i:010d}" for i in range(200)]
    returned = build("express", carrier_simulator_scenario="returned").carrier
    assert {returned._pick_scenario(n) for n in numbers} == {"returned"}
    # A scenario this carrier does not script leaves its own odds in force.
    unknown = build("express", carrier_simulator_scenario="rolled").carrier
    assert len({unknown._pick_scenario(n) for n in numbers}) > 1


def test_signature_header_is_base64_ed25519():
    key = SigningKey(b"k" * 32)
    headers = sign_delivery(key, b"{}", now=NOW)
    assert headers["X-Carrier-Timestamp"] == str(int(NOW.timestamp()))
    assert len(base64.b64decode(headers["X-Carrier-Signature"].removeprefix("ed25519="))) == 64


async def test_a_restarted_service_hands_the_carrier_back_its_parcels(
    database_url, tmp_path, book, carrier, send
):
    """A carrier does not forget parcels when the hub restarts: the new process's simulated
    carrier takes back every unfinished shipment at the step it had reached."""
    from ehub_core.testing import serve_in_process
    from ehub_logistics.app import create_app
    from ehub_logistics.settings import LogisticsSettings

    shipment = await book()
    tracking = shipment["tracking_number"]
    first = carrier("express")
    assert (await send(first.advance(tracking, 2))).status_code == 200
    done = await book()
    while (d := first.advance(done["tracking_number"], 5)) is not None:
        assert (await send(d)).status_code == 200
    settings = LogisticsSettings(database_url=database_url, var_dir=tmp_path, hub_id="CA")
    again = create_app(settings)
    async with serve_in_process(again) as client:
        sim = again.state.carriers.get("express").carrier
        assert tracking in sim.active()  # the unfinished one, not the finished one
        assert done["tracking_number"] not in sim.active()
        delivery = sim.advance(tracking)
        assert delivery is not None
        event = json.loads(delivery.body)["events"][0]
        assert event["id"] == f"{tracking}-003"  # the third step, not the first again
        resp = await client.post(delivery.path, content=delivery.body, headers=delivery.headers)
        assert resp.status_code == 200

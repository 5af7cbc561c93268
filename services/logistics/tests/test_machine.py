"""The tracking state machine: every allowed step, the refused ones with their reasons,
and order-independence of the replay under shuffling and duplication."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehub_logistics.tracking.machine import (
    ShipmentState,
    TrackedEvent,
    advance,
    allowed_next,
    refusal,
    replay,
)
from ehub_logistics.tracking.statuses import TrackingStatus as S

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# How each status is reached on a normal journey, to test what may follow it.
PATH: dict[str, list[S]] = {
    "created": [],
    "picked_up": [S.PICKED_UP],
    "export_held": [S.PICKED_UP, S.EXPORT_HELD],
    "export_cleared": [S.PICKED_UP, S.EXPORT_CLEARED],
    "departed": [S.PICKED_UP, S.EXPORT_CLEARED, S.DEPARTED],
    "in_transit": [S.PICKED_UP, S.IN_TRANSIT],
    "arrived_destination": [S.PICKED_UP, S.EXPORT_CLEARED, S.DEPARTED, S.ARRIVED_DESTINATION],
    "import_held": [S.PICKED_UP, S.DEPARTED, S.ARRIVED_DESTINATION, S.IMPORT_HELD],
    "import_cleared": [S.PICKED_UP, S.DEPARTED, S.ARRIVED_DESTINATION, S.IMPORT_CLEARED],
    "out_for_delivery": [S.PICKED_UP, S.ARRIVED_DESTINATION, S.IMPORT_CLEARED, S.OUT_FOR_DELIVERY],
    "delivery_failed": [S.PICKED_UP, S.IMPORT_CLEARED, S.OUT_FOR_DELIVERY, S.DELIVERY_FAILED],
    "delivered": [S.PICKED_UP, S.OUT_FOR_DELIVERY, S.DELIVERED],
    "returned": [S.PICKED_UP, S.RETURNED],
    "cancelled": [S.CANCELLED],
    "exception": [S.PICKED_UP, S.EXCEPTION],
    "exception_before_pickup": [S.EXCEPTION],
}

MOVING = {S.EXCEPTION, S.IN_TRANSIT, S.RETURNED}  # allowed whenever picked up and live
AFTER_PICKUP = MOVING | {
    S.EXPORT_HELD,
    S.EXPORT_CLEARED,
    S.DEPARTED,
    S.ARRIVED_DESTINATION,
    S.IMPORT_HELD,
    S.IMPORT_CLEARED,
    S.OUT_FOR_DELIVERY,
    S.DELIVERED,
}
LAST_MILE = MOVING | {S.IMPORT_CLEARED, S.OUT_FOR_DELIVERY, S.DELIVERED, S.DELIVERY_FAILED}
BEFORE_PICKUP = {S.CREATED, S.PICKED_UP, S.CANCELLED, S.EXCEPTION}

ALLOWED: dict[str, set[S]] = {
    "created": BEFORE_PICKUP,
    "picked_up": AFTER_PICKUP,
    "export_held": MOVING | {S.EXPORT_HELD, S.EXPORT_CLEARED, S.IMPORT_CLEARED},
    "export_cleared": AFTER_PICKUP - {S.EXPORT_HELD},
    "departed": AFTER_PICKUP - {S.EXPORT_HELD, S.EXPORT_CLEARED},
    "in_transit": AFTER_PICKUP,
    "arrived_destination": AFTER_PICKUP - {S.EXPORT_HELD, S.EXPORT_CLEARED, S.DEPARTED},
    "import_held": MOVING | {S.ARRIVED_DESTINATION, S.IMPORT_HELD, S.IMPORT_CLEARED},
    "import_cleared": MOVING
    | {S.ARRIVED_DESTINATION, S.IMPORT_CLEARED, S.OUT_FOR_DELIVERY, S.DELIVERED},
    "out_for_delivery": LAST_MILE,
    "delivery_failed": LAST_MILE,
    "delivered": {S.RETURNED},
    "returned": set(),
    "cancelled": set(),
    "exception": AFTER_PICKUP,
    "exception_before_pickup": BEFORE_PICKUP,
}

REFUSED = [
    ("created", S.DELIVERED, "delivered before picked_up"),
    ("created", S.DEPARTED, "departed before picked_up"),
    ("picked_up", S.CANCELLED, "cancelled after pick-up"),
    ("picked_up", S.PICKED_UP, "picked_up twice"),
    ("picked_up", S.CREATED, "created after the journey began"),
    ("picked_up", S.DELIVERY_FAILED, "delivery_failed before out_for_delivery"),
    ("delivered", S.OUT_FOR_DELIVERY, "only returned may follow delivered"),
    ("delivered", S.EXCEPTION, "only returned may follow delivered"),
    ("returned", S.DELIVERED, "nothing may follow returned"),
    ("cancelled", S.PICKED_UP, "nothing may follow cancelled"),
    ("export_held", S.DEPARTED, "departed while held by export customs"),
    ("export_held", S.DELIVERED, "delivered while held by export customs"),
    ("export_held", S.IMPORT_HELD, "import_held while held by export customs"),
    ("export_cleared", S.EXPORT_HELD, "export_held after export_cleared"),
    ("departed", S.EXPORT_CLEARED, "export_cleared after the goods departed"),
    ("arrived_destination", S.DEPARTED, "departed after arrived_destination"),
    ("import_held", S.OUT_FOR_DELIVERY, "out_for_delivery while held by import customs"),
    ("import_held", S.DELIVERED, "delivered while held by import customs"),
    ("import_cleared", S.IMPORT_HELD, "import_held after import_cleared"),
    ("out_for_delivery", S.ARRIVED_DESTINATION, "arrived_destination after out_for_delivery"),
]

REFUSED_IDS = [f"{a}->{b}" for a, b, _ in REFUSED]


def state_after(path: list[S]) -> ShipmentState:
    state = ShipmentState()
    for status in path:
        assert refusal(state, status) is None, (path, status)
        state = advance(state, status)
    return state


def events(statuses: list[S], step_minutes: int = 30) -> list[TrackedEvent]:
    return [
        TrackedEvent(f"e{i}", status, T0 + timedelta(minutes=step_minutes * i))
        for i, status in enumerate(statuses)
    ]


@pytest.mark.parametrize("name", list(PATH))
def test_exactly_the_allowed_steps_follow_each_status(name):
    state = state_after(PATH[name])
    assert set(allowed_next(state)) == ALLOWED[name]


def test_the_allowed_table_covers_every_status():
    assert {name for name in PATH if not name.endswith("_before_pickup")} == {s.value for s in S}


@pytest.mark.parametrize(
    ("name", "new", "reason"), REFUSED, ids=[f"{a}->{b}" for a, b, _ in REFUSED]
)
def test_impossible_steps_are_refused_with_a_reason(name, new, reason):
    assert refusal(state_after(PATH[name]), new) == reason


def test_refused_events_are_reported_and_do_not_change_the_state():
    result = replay(events([S.DELIVERED, S.PICKED_UP, S.IN_TRANSIT]))
    assert result.state.status is S.IN_TRANSIT
    assert [(e.status, why) for e, why in result.refused] == [
        (S.DELIVERED, "delivered before picked_up")
    ]


def test_a_late_event_is_placed_by_carrier_time_and_heals_the_gap():
    journey = events([S.PICKED_UP, S.DEPARTED, S.ARRIVED_DESTINATION, S.DELIVERED])
    without_pickup = replay(journey[1:])
    assert without_pickup.state.status is S.CREATED
    assert len(without_pickup.refused) == 3
    healed = replay([*journey[1:], journey[0]])  # the pick-up scan arrives last
    assert healed.state.status is S.DELIVERED and healed.refused == []


def test_pre_clearance_before_arrival_is_allowed_and_hold_blocks_the_last_mile():
    pre_cleared = replay(
        events([S.PICKED_UP, S.IMPORT_CLEARED, S.DEPARTED, S.ARRIVED_DESTINATION, S.DELIVERED])
    )
    assert pre_cleared.state.status is S.DELIVERED and pre_cleared.refused == []
    held = replay(events([S.PICKED_UP, S.ARRIVED_DESTINATION, S.IMPORT_HELD, S.DELIVERED]))
    assert held.state.status is S.IMPORT_HELD
    assert held.refused[0][1] == "delivered while held by import customs"


def test_duplicates_count_once_and_ties_follow_the_lifecycle():
    stream = events([S.PICKED_UP, S.DEPARTED])
    same_instant = TrackedEvent("z", S.ARRIVED_DESTINATION, stream[1].occurred_at)
    result = replay([same_instant, *stream, *stream])
    assert [e.status for e in result.applied] == [S.PICKED_UP, S.DEPARTED, S.ARRIVED_DESTINATION]


def test_created_opens_the_journey_whatever_its_clock_says():
    early_scan = TrackedEvent("carrier-1", S.PICKED_UP, T0 - timedelta(hours=1))
    booked = TrackedEvent("hub:created", S.CREATED, T0)
    result = replay([early_scan, booked])
    assert result.refused == [] and result.state.status is S.PICKED_UP


# ---- order independence (hypothesis) ---------------------------------------------------

any_stream = st.lists(
    st.tuples(st.sampled_from(list(S)), st.integers(min_value=0, max_value=500)),
    min_size=1,
    max_size=25,
)


@st.composite
def shuffled_with_duplicates(draw, stream):
    raw = draw(stream)
    ordered = [TrackedEvent(f"k{i}", s, T0 + timedelta(minutes=m)) for i, (s, m) in enumerate(raw)]
    ordered.sort(key=lambda e: e.occurred_at)
    dupes = draw(st.lists(st.sampled_from(ordered), max_size=len(ordered)))
    mixed = ordered + dupes
    random.Random(draw(st.integers())).shuffle(mixed)
    return ordered, mixed


@settings(max_examples=400, deadline=None)
@given(shuffled_with_duplicates(any_stream))
def test_shuffled_and_duplicated_streams_end_where_the_ordered_stream_ends(case):
    ordered, mixed = case
    expected, got = replay(ordered), replay(mixed)
    assert got.state == expected.state
    assert [e.key for e in got.applied] == [e.key for e in expected.applied]
    assert sorted(e.key for e, _ in got.refused) == sorted(e.key for e, _ in expected.refused)


@settings(max_examples=400, deadline=None)
@given(shuffled_with_duplicates(any_stream))
def test_applied_history_never_breaks_the_rules(case):
    _, mixed = case
    applied = [e.status for e in replay(mixed).applied]
    if S.DELIVERED in applied:
        assert S.PICKED_UP in applied[: applied.index(S.DELIVERED)]
        assert set(applied[applied.index(S.DELIVERED) + 1 :]) <= {S.RETURNED}
    for terminal in (S.RETURNED, S.CANCELLED):
        if terminal in applied:
            assert applied.index(terminal) == len(applied) - 1

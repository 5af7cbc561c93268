"""The shipment state machine: which event may follow which, and the fold that
turns a set of events into one honest state.

The state has two tracks, because a cross-border parcel moves and is cleared at the
same time: a *transport leg* (picked up, departed, arrived, out for delivery, ...)
and a *customs track* at each end (none, held, cleared). Rules, in words:

* nothing follows ``returned`` or ``cancelled``; only ``returned`` follows ``delivered``;
* before pick-up only ``picked_up``, ``cancelled`` and ``exception`` are possible;
  ``cancelled`` is possible only before pick-up;
* transport never goes backwards (no ``departed`` after ``arrived_destination``,
  no ``arrived_destination`` after ``out_for_delivery``); ``out_for_delivery`` may
  repeat after ``delivery_failed``, which needs ``out_for_delivery`` first;
* goods held by export customs do not depart, arrive or get delivered until
  ``export_cleared``; goods held by import customs do not go out for delivery
  until ``import_cleared``; a hold never follows its own clearance;
* import clearance may come before arrival (pre-clearance: data before goods);
* ``in_transit`` and ``exception`` are scans: allowed whenever the shipment is live
  and picked up, they move nothing.

A refused event is kept and reported as an anomaly; it does not change the state.
:func:`replay` orders events by carrier time, so a late event that fills a gap is
applied where it belongs, and the result depends only on the *set* of events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from ehub_logistics.tracking.statuses import TrackingStatus as S

Clearance = Literal["none", "held", "cleared"]

# Transport legs; statuses that are not legs leave the leg where it is.
LEG_NONE, LEG_PICKED_UP, LEG_DEPARTED, LEG_ARRIVED = 0, 10, 40, 50
LEG_OUT, LEG_FAILED, LEG_DELIVERED, LEG_CLOSED = 80, 85, 90, 100
_LEG_OF = {
    S.PICKED_UP: LEG_PICKED_UP,
    S.DEPARTED: LEG_DEPARTED,
    S.ARRIVED_DESTINATION: LEG_ARRIVED,
    S.OUT_FOR_DELIVERY: LEG_OUT,
    S.DELIVERY_FAILED: LEG_FAILED,
    S.DELIVERED: LEG_DELIVERED,
    S.RETURNED: LEG_CLOSED,
    S.CANCELLED: LEG_CLOSED,
}
#: Tie-break for events stamped with the same carrier time: lifecycle order.
_LIFECYCLE_ORDER = {status: i for i, status in enumerate(S)}


@dataclass(frozen=True, slots=True)
class ShipmentState:
    status: S = S.CREATED
    leg: int = LEG_NONE
    export: Clearance = "none"
    import_: Clearance = "none"


def refusal(state: ShipmentState, new: S) -> str | None:
    """Why ``new`` cannot follow ``state``, or None when it can."""
    cur = state.status
    if cur in (S.RETURNED, S.CANCELLED):
        return f"nothing may follow {cur}"
    if cur is S.DELIVERED and new is not S.RETURNED:
        return "only returned may follow delivered"
    if new is S.CREATED:
        return None if state.leg == LEG_NONE else "created after the journey began"
    if new is S.CANCELLED:
        return None if state.leg == LEG_NONE else "cancelled after pick-up"
    if new is S.EXCEPTION:
        return None
    if state.leg == LEG_NONE and new is not S.PICKED_UP:
        return f"{new} before picked_up"
    if new is S.PICKED_UP:
        return None if state.leg == LEG_NONE else "picked_up twice"
    return _in_journey(state, new)


def _in_journey(state: ShipmentState, new: S) -> str | None:
    export_held = state.export == "held"
    import_held = state.import_ == "held"
    match new:
        case S.IN_TRANSIT | S.RETURNED:
            return None
        case S.EXPORT_HELD | S.EXPORT_CLEARED:
            if state.leg >= LEG_DEPARTED:
                return f"{new} after the goods departed"
            if new is S.EXPORT_HELD and state.export == "cleared":
                return "export_held after export_cleared"
        case S.DEPARTED | S.ARRIVED_DESTINATION:
            if export_held:
                return f"{new} while held by export customs"
            if new is S.DEPARTED and state.leg > LEG_DEPARTED:
                return "departed after arrived_destination"
            if new is S.ARRIVED_DESTINATION and state.leg > LEG_ARRIVED:
                return "arrived_destination after out_for_delivery"
        case S.IMPORT_HELD:
            if export_held:
                return "import_held while held by export customs"
            if state.import_ == "cleared":
                return "import_held after import_cleared"
            if state.leg >= LEG_OUT:
                return "import_held after out_for_delivery"
        case S.IMPORT_CLEARED:
            return None
        case S.OUT_FOR_DELIVERY | S.DELIVERED:
            if export_held or import_held:
                return f"{new} while held by {'export' if export_held else 'import'} customs"
        case S.DELIVERY_FAILED:
            if state.leg < LEG_OUT:
                return "delivery_failed before out_for_delivery"
    return None


def advance(state: ShipmentState, new: S) -> ShipmentState:
    """The state after ``new`` (which :func:`refusal` must have allowed)."""
    if new is S.CREATED:
        return state
    leg = max(state.leg, _LEG_OF.get(new, state.leg))
    export, import_ = state.export, state.import_
    if new is S.EXPORT_HELD:
        export = "held"
    elif new is S.EXPORT_CLEARED:
        export = "cleared"
    elif new is S.IMPORT_HELD:
        import_ = "held"
    elif new is S.IMPORT_CLEARED:
        import_ = "cleared"
    return replace(state, status=new, leg=leg, export=export, import_=import_)


def allowed_next(state: ShipmentState) -> frozenset[S]:
    return frozenset(s for s in S if refusal(state, s) is None)


@dataclass(frozen=True, slots=True)
class TrackedEvent:
    """What the machine needs of an event: a unique key, a status and a carrier time."""

    key: str
    status: S
    occurred_at: datetime


def order_key(event: TrackedEvent) -> tuple[int, datetime, int, str]:
    # "created" opens every journey whatever its clock says; then carrier time, then
    # lifecycle order for events stamped the same instant, then the key for totality.
    first = 0 if event.status is S.CREATED else 1
    return (first, event.occurred_at, _LIFECYCLE_ORDER[event.status], event.key)


@dataclass(slots=True)
class Replay:
    state: ShipmentState
    applied: list[TrackedEvent] = field(default_factory=list)
    refused: list[tuple[TrackedEvent, str]] = field(default_factory=list)


def replay(events: Iterable[TrackedEvent], initial: ShipmentState | None = None) -> Replay:
    """Fold ``events`` in carrier-time order; a repeated key counts once.

    The outcome depends only on the set of distinct keys, never on arrival order.
    """
    unique: dict[str, TrackedEvent] = {}
    for event in events:
        seen = unique.get(event.key)
        if seen is None or order_key(event) < order_key(seen):
            unique[event.key] = event
    result = Replay(state=initial or ShipmentState())
    for event in sorted(unique.values(), key=order_key):
        reason = refusal(result.state, event.status)
        if reason is None:
            result.state = advance(result.state, event.status)
            result.applied.append(event)
        else:
            result.refused.append((event, reason))
    return result

"""The machinery shared by the carrier simulators.

A simulator has two halves, kept apart the way a real integration is:

* :class:`SimulatedCarrier` is the *carrier's* system: its tariff, its bookings, its
  own event codes, its private signing key, and a driver (:meth:`advance`) that
  produces the signed webhook deliveries the carrier would POST to the hub.
* :class:`SimulatorAdapter` is the *hub's* adapter for it: it calls the carrier for
  rates and bookings, verifies webhooks with the configured public key only, and
  translates the carrier's codes to the hub's statuses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from nacl.signing import SigningKey

from ehub_logistics.carriers.base import (
    Address,
    Booking,
    BookingRequest,
    CarrierError,
    RateRequest,
    RateResult,
)
from ehub_logistics.carriers.pricing import price_request
from ehub_logistics.carriers.ratecard import RateCardBook
from ehub_logistics.carriers.signing import sign_delivery
from ehub_logistics.tracking.statuses import TrackingStatus

#: Carriers report local time; these offsets make the simulators do so too, so the
#: hub's normalisation to UTC is exercised. Countries not listed report UTC.
UTC_OFFSET_HOURS: dict[str, int] = {
    "CN": 8,
    "HK": 8,
    "MY": 8,
    "SG": 8,
    "TW": 8,
    "PH": 8,
    "JP": 9,
    "KR": 9,
    "TH": 7,
    "VN": 7,
    "ID": 7,
    "IN": 5,
    "CA": -5,
    "US": -5,
    "MX": -6,
    "RW": 2,
    "KE": 3,
    "ZA": 2,
    "DE": 1,
    "FR": 1,
    "NL": 1,
    "GB": 0,
    "AU": 10,
    "NZ": 12,
}


@dataclass(frozen=True, slots=True)
class NativeCode:
    """What one of the carrier's own event codes means in the hub's vocabulary."""

    status: TrackingStatus
    description: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    code: str
    after_hours: float
    at: Literal["origin", "destination"]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SimulatorProfile:
    name: str
    display_name: str
    codes: Mapping[str, NativeCode]
    scenarios: Mapping[str, tuple[Step, ...]]
    #: Relative odds of each scenario; the pick is a pure function of the tracking number.
    scenario_odds: Mapping[str, int]
    new_tracking_number: Callable[[str, Address], str]


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One signed HTTP request, ready to send: ``POST path`` with headers and body."""

    carrier: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Booked:
    tracking_number: str
    service: str
    origin: Address
    destination: Address
    booked_at: datetime
    scenario: str
    cursor: int = 0
    cancelled: bool = False
    emitted: list[dict[str, object]] = field(default_factory=list)


def _local(moment: datetime, country: str) -> str:
    offset = timezone(timedelta(hours=UTC_OFFSET_HOURS.get(country, 0)))
    return moment.astimezone(offset).isoformat()


class SimulatedCarrier:
    """The simulated carrier's own system, in memory. A real carrier does not forget the
    parcels it carries when the hub restarts: :meth:`restore` puts back what the hub's
    database knows (``simulation.restore_simulated_shipments``)."""

    def __init__(
        self,
        profile: SimulatorProfile,
        cards: RateCardBook,
        key: SigningKey,
        *,
        scenario: str | None = None,
    ) -> None:
        self.profile = profile
        self.cards = cards
        self._key = key
        # One scenario for every parcel (a demo, a test), when this carrier has it.
        self._forced = scenario if scenario in profile.scenarios else None
        self._booked: dict[str, _Booked] = {}

    @property
    def name(self) -> str:
        return self.profile.name

    def quote(self, request: RateRequest) -> RateResult:
        card = self.cards.in_force(request.ship_date)
        if card is None:
            return RateResult(messages=[f"{self.name}: no tariff in force on {request.ship_date}"])
        return price_request(card, request)

    def book(self, request: BookingRequest, *, now: datetime | None = None) -> Booking:
        card = self.cards.in_force(request.ship_date)
        if card is None or request.service not in {s.code for s in card.services}:
            raise CarrierError(f"{self.name} has no service {request.service!r}")
        tracking = self.profile.new_tracking_number(request.service, request.shipper)
        self._booked[tracking] = _Booked(
            tracking_number=tracking,
            service=request.service,
            origin=request.shipper,
            destination=request.recipient,
            booked_at=now or datetime.now(UTC),
            scenario=self._pick_scenario(tracking),
        )
        return Booking(tracking_number=tracking, carrier_reference=f"{self.name}:{tracking}")

    def restore(
        self,
        tracking_number: str,
        *,
        service: str,
        origin: Address,
        destination: Address,
        booked_at: datetime,
        sent: int,
    ) -> bool:
        """Take back a booking after a restart, ``sent`` events of its scenario already
        reported (the scenario follows from the tracking number). False if known."""
        if tracking_number in self._booked:
            return False
        self._booked[tracking_number] = _Booked(
            tracking_number=tracking_number,
            service=service,
            origin=origin,
            destination=destination,
            booked_at=booked_at,
            scenario=self._pick_scenario(tracking_number),
            cursor=sent,
        )
        return True

    def cancel(self, tracking_number: str) -> None:
        booked = self._get(tracking_number)
        if booked.cursor > 0:
            raise CarrierError(f"{tracking_number} is already picked up")
        booked.cancelled = True

    def events(self, tracking_number: str) -> list[dict[str, object]]:
        return list(self._get(tracking_number).emitted)

    def scenario(self, tracking_number: str) -> str:
        return self._get(tracking_number).scenario

    def set_scenario(self, tracking_number: str, scenario: str) -> None:
        if scenario not in self.profile.scenarios:
            raise ValueError(f"{self.name} has no scenario {scenario!r}")
        self._get(tracking_number).scenario = scenario

    def active(self) -> list[str]:
        """Tracking numbers with events still to come."""
        return [
            b.tracking_number
            for b in self._booked.values()
            if not b.cancelled and b.cursor < len(self.profile.scenarios[b.scenario])
        ]

    def native_event(
        self,
        tracking_number: str,
        code: str,
        occurred_at: datetime,
        *,
        country: str,
        place: str | None = None,
        reason: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, object]:
        """An event in the carrier's own format (for scripted or hand-made deliveries)."""
        meaning = self.profile.codes.get(code)
        seed = f"{tracking_number}|{code}|{occurred_at.isoformat()}"
        return {
            "id": event_id or hashlib.sha256(seed.encode()).hexdigest()[:20],
            "tracking_number": tracking_number,
            "code": code,
            "time": _local(occurred_at, country),
            "location": {"place": place, "country": country},
            "reason": reason if reason is not None else (meaning.reason if meaning else None),
            "remark": meaning.description if meaning else None,
        }

    def deliver(
        self, events: list[dict[str, object]], *, now: datetime | None = None
    ) -> WebhookDelivery:
        """Sign ``events`` into one webhook delivery, as the carrier would send it."""
        body = json.dumps({"carrier": self.name, "events": events}, separators=(",", ":"))
        raw = body.encode()
        headers = {"Content-Type": "application/json", **sign_delivery(self._key, raw, now=now)}
        return WebhookDelivery(self.name, f"/v1/carriers/{self.name}/events", headers, raw)

    def advance(
        self,
        tracking_number: str,
        steps: int = 1,
        *,
        at: datetime | None = None,
        now: datetime | None = None,
    ) -> WebhookDelivery | None:
        """Move the shipment ``steps`` along its scenario; None when nothing is left.

        Event times follow the script (booking time plus each step's offset) unless
        ``at`` is given, which stamps the events as happening then (live simulation).
        """
        booked = self._get(tracking_number)
        script = self.profile.scenarios[booked.scenario]
        if booked.cancelled or booked.cursor >= len(script):
            return None
        fresh = []
        for i, step in enumerate(script[booked.cursor : booked.cursor + steps]):
            when = (
                at + timedelta(seconds=i)
                if at is not None
                else booked.booked_at + timedelta(hours=step.after_hours)
            )
            where = booked.origin if step.at == "origin" else booked.destination
            place = where.city or f"{where.country} gateway"
            event = self.native_event(
                tracking_number,
                step.code,
                when,
                country=where.country,
                place=place,
                reason=step.reason,
                event_id=f"{tracking_number}-{booked.cursor + i + 1:03d}",
            )
            fresh.append(event)
        booked.cursor += len(fresh)
        booked.emitted.extend(fresh)
        return self.deliver(fresh, now=now)

    def _pick_scenario(self, tracking_number: str) -> str:
        if self._forced is not None:
            return self._forced
        odds = sorted(self.profile.scenario_odds.items())
        total = sum(weight for _, weight in odds)
        ticket = int(hashlib.sha256(tracking_number.encode()).hexdigest(), 16) % total
        for scenario, weight in odds:
            if ticket < weight:
                return scenario
            ticket -= weight
        return odds[-1][0]  # pragma: no cover - the loop always returns

    def _get(self, tracking_number: str) -> _Booked:
        try:
            return self._booked[tracking_number]
        except KeyError:
            raise CarrierError(f"{self.name} knows no shipment {tracking_number}") from None

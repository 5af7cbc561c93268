"""The carrier adapter contract: one interface for every carrier, real or simulated.

A carrier plugs in through the ``ehub.carriers`` entry-point group (see
:mod:`ehub_logistics.carriers.registry`). The service speaks only these dataclasses;
each adapter translates them to its carrier's API and back. Units are normalised
before an adapter sees them: kilograms, centimetres, ``Decimal`` money with an
ISO 4217 code, timezone-aware UTC datetimes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from ehub_logistics.tracking.statuses import TrackingStatus


class ServiceLevel(StrEnum):
    EXPRESS = "express"
    STANDARD = "standard"
    ECONOMY = "economy"


@dataclass(frozen=True, slots=True)
class Address:
    country: str
    postal_code: str | None = None
    city: str | None = None
    state: str | None = None
    name: str | None = None
    company: str | None = None
    street: tuple[str, ...] = ()
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Parcel:
    weight_kg: Decimal
    length_cm: Decimal
    width_cm: Decimal
    height_cm: Decimal

    @property
    def volume_cm3(self) -> Decimal:
        return self.length_cm * self.width_cm * self.height_cm


@dataclass(frozen=True, slots=True)
class RateRequest:
    origin: Address
    destination: Address
    parcels: tuple[Parcel, ...]
    declared_value: Decimal
    currency: str
    ship_date: date
    service_levels: frozenset[ServiceLevel] | None = None
    services: frozenset[str] | None = None
    max_transit_days: int | None = None


@dataclass(frozen=True, slots=True)
class RateQuote:
    """One priced option of one service."""

    carrier: str
    service: str
    service_name: str
    service_level: ServiceLevel
    zone: str
    currency: str
    base: Decimal
    fuel_surcharge: Decimal
    remote_area_fee: Decimal
    total: Decimal
    transit_days: int
    estimated_delivery: date
    actual_weight_kg: Decimal
    volumetric_weight_kg: Decimal
    chargeable_weight_kg: Decimal
    rate_card: str


@dataclass(frozen=True, slots=True)
class RateResult:
    quotes: list[RateQuote] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CustomsItem:
    description: str
    hs_code: str
    quantity: int
    unit_value: Decimal
    origin_country: str
    weight_kg: Decimal | None = None

    @property
    def value(self) -> Decimal:
        return self.unit_value * self.quantity


@dataclass(frozen=True, slots=True)
class Customs:
    items: tuple[CustomsItem, ...]
    currency: str
    incoterm: str
    contents_type: str = "merchandise"
    invoice_number: str | None = None

    @property
    def total_value(self) -> Decimal:
        return sum((i.value for i in self.items), Decimal(0))


@dataclass(frozen=True, slots=True)
class BookingRequest:
    service: str
    shipper: Address
    recipient: Address
    parcels: tuple[Parcel, ...]
    ship_date: date
    customs: Customs | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Booking:
    tracking_number: str
    carrier_reference: str | None = None
    #: The carrier's own label, when it prints one; otherwise the hub prints its own.
    label_pdf: bytes | None = None


@dataclass(frozen=True, slots=True)
class CarrierEvent:
    """One tracking event, already translated to the hub's vocabulary."""

    tracking_number: str
    event_id: str  # the carrier's id for the event: the dedup key
    status: TrackingStatus
    carrier_code: str
    occurred_at: datetime  # carrier time, aware, UTC
    place: str | None = None
    country: str | None = None
    reason_code: str | None = None
    description: str | None = None


class CarrierError(Exception):
    """The carrier refused or failed an operation; the message is safe to show."""


class WebhookRejected(Exception):
    """A webhook failed authentication (bad or missing signature, stale timestamp)."""


class CarrierAdapter(ABC):
    """What the hub needs from a carrier. Implementations must be safe to share
    between concurrent requests; they are built once at start-up."""

    #: Stable identifier used in URLs (``/v1/carriers/{name}/events``) and data.
    name: str
    display_name: str
    #: True when :meth:`rate` does no I/O (a local tariff): rate shopping then calls
    #: it inline instead of paying for a task; remote carriers are asked concurrently.
    rates_in_process: bool = False

    @abstractmethod
    async def rate(self, request: RateRequest) -> RateResult:
        """Every service of this carrier that can carry ``request``, priced.

        Services that cannot (lane not served, parcel too heavy) are left out with a
        human-readable reason in ``messages``; never raise for those.
        """

    @abstractmethod
    async def book(self, request: BookingRequest) -> Booking:
        """Book ``request.service``; raise :class:`CarrierError` if the carrier refuses."""

    @abstractmethod
    async def cancel(self, tracking_number: str) -> None:
        """Void a booking before pick-up; raise :class:`CarrierError` if too late."""

    @abstractmethod
    async def track(self, tracking_number: str) -> list[CarrierEvent]:
        """The carrier's events so far (a pull fallback; webhooks are the normal path)."""

    @abstractmethod
    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None
    ) -> list[CarrierEvent]:
        """Authenticate a webhook delivery and translate its events.

        ``headers`` keys are lower-case. Raise :class:`WebhookRejected` when the
        signature does not verify or the delivery is stale; raise ``ValueError`` when
        the body is authentic but malformed.
        """

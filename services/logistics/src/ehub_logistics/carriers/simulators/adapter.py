"""The hub-side adapter for a simulated carrier, and the factory the plugins use."""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from nacl.signing import VerifyKey
from pydantic import AwareDatetime, BaseModel, SecretStr, ValidationError

from ehub_logistics.carriers.base import (
    Booking,
    BookingRequest,
    CarrierAdapter,
    CarrierEvent,
    RateRequest,
    RateResult,
)
from ehub_logistics.carriers.ratecard import load_rate_card_book
from ehub_logistics.carriers.signing import (
    simulator_signing_key,
    verify_delivery,
    verify_key_from_b64,
)
from ehub_logistics.carriers.simulators.engine import SimulatedCarrier, SimulatorProfile
from ehub_logistics.tracking.statuses import TrackingStatus

log = logging.getLogger("ehub.logistics.carriers")

#: The seed every hub once shared, so anyone could sign "carrier" webhooks with it: the
#: simulators no longer derive keys from it (a webhook signed with it is refused).
RETIRED_PUBLIC_SEED = "ehub-dev-simulator"


@functools.cache
def _process_seed() -> str:
    """A seed of this process's own when none is configured: webhooks the simulators
    sign now verify until the service restarts (``ehub network up`` gives each hub's
    logistics a seed of its own, EHUB_CARRIER_SIMULATOR_SEED, so restarts keep it)."""
    log.warning(
        "EHUB_CARRIER_SIMULATOR_SEED is unset: the carrier simulators sign with keys made "
        "at start, which the next start will not accept"
    )
    return secrets.token_urlsafe(32)


class _Location(BaseModel):
    place: str | None = None
    country: str | None = None


class _NativeEvent(BaseModel):
    id: str
    tracking_number: str
    code: str
    time: AwareDatetime
    location: _Location = _Location()
    reason: str | None = None
    remark: str | None = None


class _NativeDelivery(BaseModel):
    carrier: str
    events: list[_NativeEvent]


class SimulatorAdapter(CarrierAdapter):
    """Talks to a :class:`SimulatedCarrier` as a real adapter talks to a carrier API."""

    rates_in_process = True  # the simulated tariff is priced locally, without I/O

    def __init__(self, carrier: SimulatedCarrier, verify_key: VerifyKey) -> None:
        self.carrier = carrier
        self.profile = carrier.profile
        self.name = carrier.profile.name
        self.display_name = carrier.profile.display_name
        self._verify_key = verify_key

    async def rate(self, request: RateRequest) -> RateResult:
        return self.carrier.quote(request)

    async def book(self, request: BookingRequest) -> Booking:
        return self.carrier.book(request)

    async def cancel(self, tracking_number: str) -> None:
        self.carrier.cancel(tracking_number)

    async def track(self, tracking_number: str) -> list[CarrierEvent]:
        raw = self.carrier.events(tracking_number)
        return [self._translate(_NativeEvent.model_validate(e)) for e in raw]

    def parse_webhook(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime | None = None
    ) -> list[CarrierEvent]:
        verify_delivery(self._verify_key, headers, body, now=now)
        try:
            delivery = _NativeDelivery.model_validate_json(body)
        except ValidationError as exc:
            raise ValueError(f"malformed {self.name} webhook: {exc.errors()[0]['msg']}") from exc
        if delivery.carrier != self.name:
            raise ValueError(f"delivery names carrier {delivery.carrier!r}, not {self.name!r}")
        return [self._translate(e) for e in delivery.events]

    def _translate(self, event: _NativeEvent) -> CarrierEvent:
        meaning = self.profile.codes.get(event.code)
        # A code this adapter does not know is surfaced, not dropped: as an exception
        # carrying the raw code, so an operator sees it and the mapping gets fixed.
        status = meaning.status if meaning else TrackingStatus.EXCEPTION
        description = event.remark or (meaning.description if meaning else None)
        if meaning is None:
            description = f"unmapped {self.name} code {event.code}: {description or ''}".strip()
        return CarrierEvent(
            tracking_number=event.tracking_number,
            event_id=event.id,
            status=status,
            carrier_code=event.code,
            occurred_at=event.time.astimezone(UTC),
            place=event.location.place,
            country=event.location.country,
            reason_code=event.reason,
            description=description,
        )


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value is None else value


def build_simulator(profile: SimulatorProfile, settings: Any) -> SimulatorAdapter:
    """Build a simulator from the service settings.

    The carrier side's private key comes from ``carrier_simulator_seed`` (a secret; one
    of the process's own when unset; the retired public seed is refused). The hub side
    verifies with ``carrier_public_keys[name]`` (base64) when configured, else with the
    public half of the seeded key (the simulator runs in the same process).
    """
    configured_seed = _setting(settings, "carrier_simulator_seed", None)
    if isinstance(configured_seed, SecretStr):
        configured_seed = configured_seed.get_secret_value()
    seed = str(configured_seed) if configured_seed else _process_seed()
    if seed == RETIRED_PUBLIC_SEED:
        raise ValueError(
            f"carrier_simulator_seed {RETIRED_PUBLIC_SEED!r} is public: choose a secret one"
        )
    data_dir = Path(str(files("ehub_logistics.carriers") / "data"))
    book = load_rate_card_book(sorted(data_dir.glob(f"{profile.name}-*.yaml")))
    key = simulator_signing_key(profile.name, seed)
    configured: Mapping[str, str] = _setting(settings, "carrier_public_keys", {})
    verify = (
        verify_key_from_b64(configured[profile.name])
        if profile.name in configured
        else key.verify_key
    )
    forced = _setting(settings, "carrier_simulator_scenario", None)
    carrier = SimulatedCarrier(profile, book, key, scenario=str(forced) if forced else None)
    return SimulatorAdapter(carrier, verify)

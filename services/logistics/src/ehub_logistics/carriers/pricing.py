"""Pricing a request against a rate card: chargeable weight, zone, breaks, surcharges.

Chargeable weight per parcel is ``max(actual, volumetric)`` where volumetric is
``length x width x height / divisor`` (cm3 per kg). A ``shipment``-basis card sums the
parcels and rounds the total up to its weight step; a ``parcel``-basis card (postal
services) prices each parcel on its own and adds the prices. Money stays ``Decimal``
and is rounded half-up to the card currency's ISO 4217 minor unit (cents for USD, whole
units for UGX or VND, three places for KWD) once per charge line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from functools import lru_cache

from ehub_core.money import quantize
from ehub_logistics.carriers.base import Parcel, RateQuote, RateRequest, RateResult
from ehub_logistics.carriers.ratecard import RateCard, ServiceRates

GRAM = Decimal("0.001")


def round_up(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` up to the next multiple of ``step`` (a value on a multiple stays)."""
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def money(value: Decimal, currency: str) -> Decimal:
    """``value`` rounded half-up to the minor unit of ``currency``."""
    return quantize(value, currency, ROUND_HALF_UP)


@lru_cache(maxsize=4096)
def add_business_days(start: date, days: int) -> date:
    """``start`` plus ``days`` working days (Monday to Friday)."""
    if days <= 0:
        return start
    # Any 7 consecutive days hold exactly 5 working days: jump whole weeks, then walk.
    weeks, rest = divmod(days - 1, 5)
    current = start + timedelta(days=7 * weeks)
    remaining = rest + 1
    while remaining:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


@dataclass(frozen=True, slots=True)
class Weights:
    actual_kg: Decimal
    volumetric_kg: Decimal
    chargeable_kg: Decimal
    #: What the price table is read at: one total, or one weight per parcel.
    priced_at: tuple[Decimal, ...]


def chargeable_weights(card: RateCard, svc: ServiceRates, parcels: tuple[Parcel, ...]) -> Weights:
    divisor = Decimal(svc.volumetric_divisor or card.volumetric_divisor)
    actual = volumetric = Decimal(0)
    per_parcel = []
    for p in parcels:
        by_volume = p.volume_cm3 / divisor
        actual += p.weight_kg
        volumetric += by_volume
        per_parcel.append(max(p.weight_kg, by_volume))
    floor, step = svc.min_chargeable_kg, card.weight_step_kg
    if card.basis == "parcel":
        priced = tuple(max(round_up(w, step), floor) for w in per_parcel)
    else:
        priced = (max(round_up(sum(per_parcel, Decimal(0)), step), floor),)
    return Weights(
        actual_kg=actual.quantize(GRAM),
        volumetric_kg=volumetric.quantize(GRAM, rounding=ROUND_HALF_UP),
        chargeable_kg=sum(priced, Decimal(0)),
        priced_at=priced,
    )


def table_price(svc: ServiceRates, zone: str, weight: Decimal) -> Decimal | None:
    """The base charge for ``weight`` in ``zone``, or None when above the table's reach."""
    row = svc.prices[zone]
    for upper, price in zip(svc.weight_breaks, row, strict=True):
        if weight <= upper:
            if svc.pricing == "per_kg":
                return max(price * weight, svc.minimum_charge.get(zone, Decimal(0)))
            return price
    extra = svc.additional_per_kg.get(zone)
    if svc.pricing == "flat" and extra is not None:
        over = round_up(weight - svc.weight_breaks[-1], Decimal(1))
        return row[-1] + over * extra
    return None


def _parcel_limits(svc: ServiceRates, parcels: tuple[Parcel, ...]) -> str | None:
    for i, parcel in enumerate(parcels, start=1):
        if svc.max_parcel_weight_kg is not None and parcel.weight_kg > svc.max_parcel_weight_kg:
            return f"parcel {i} weighs more than {svc.max_parcel_weight_kg} kg"
        longest = max(parcel.length_cm, parcel.width_cm, parcel.height_cm)
        if svc.max_parcel_length_cm is not None and longest > svc.max_parcel_length_cm:
            return f"parcel {i} is longer than {svc.max_parcel_length_cm} cm"
    return None


def _wanted(svc: ServiceRates, request: RateRequest) -> bool:
    if request.services is not None and svc.code not in request.services:
        return False
    return request.service_levels is None or svc.level in request.service_levels


def _price_service(
    card: RateCard, svc: ServiceRates, zone: str, request: RateRequest, remote: bool
) -> RateQuote | str:
    """A quote for one service, or the reason it cannot carry the request."""
    if zone not in svc.prices:
        return f"zone {zone} is not served"
    limit = _parcel_limits(svc, request.parcels)
    if limit:
        return limit
    transit = svc.transit_days[zone]
    if request.max_transit_days is not None and transit > request.max_transit_days:
        return f"{transit} transit days exceed the {request.max_transit_days} asked"
    weights = chargeable_weights(card, svc, request.parcels)
    prices = [table_price(svc, zone, w) for w in weights.priced_at]
    if any(p is None for p in prices):
        return f"{weights.chargeable_kg} kg is above the heaviest rate"
    ccy = card.currency
    base = money(sum((p for p in prices if p is not None), Decimal(0)), ccy)
    fuel = money(base * card.fuel_surcharge_percent / 100, ccy)
    remote_fee = money(Decimal(0), ccy)
    if remote and card.remote_area is not None:
        fee = max(card.remote_area.minimum, card.remote_area.per_kg * weights.chargeable_kg)
        remote_fee = money(fee, ccy)
    return RateQuote(
        carrier=card.carrier,
        service=svc.code,
        service_name=svc.name,
        service_level=svc.level,
        zone=zone,
        currency=card.currency,
        base=base,
        fuel_surcharge=fuel,
        remote_area_fee=remote_fee,
        total=base + fuel + remote_fee,
        transit_days=transit,
        estimated_delivery=add_business_days(request.ship_date, transit),
        actual_weight_kg=weights.actual_kg,
        volumetric_weight_kg=weights.volumetric_kg,
        chargeable_weight_kg=weights.chargeable_kg,
        rate_card=card.version,
    )


def price_request(card: RateCard, request: RateRequest) -> RateResult:
    """Price every wanted service of ``card`` for ``request``; explain what is left out."""
    origin, dest = request.origin.country, request.destination.country
    zone = card.zone_for(origin, dest)
    if zone is None:
        return RateResult(messages=[f"{card.carrier}: lane {origin}->{dest} is not served"])
    remote = card.is_remote(dest, request.destination.postal_code)
    result = RateResult()
    for svc in card.services:
        if not _wanted(svc, request):
            continue
        outcome = _price_service(card, svc, zone, request, remote)
        if isinstance(outcome, str):
            result.messages.append(f"{card.carrier}/{svc.code}: {outcome}")
        else:
            result.quotes.append(outcome)
    return result

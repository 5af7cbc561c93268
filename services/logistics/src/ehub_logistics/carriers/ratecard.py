"""Rate cards: versioned YAML data files, validated when loaded.

A card says who carries where (zones by origin and destination country), how weight
is counted (volumetric divisor, rounding step), and what each service level costs
(weight breaks per zone, fuel surcharge, remote-area fee). Pricing lives in
:mod:`ehub_logistics.carriers.pricing`. Every card names its ``source`` and
``effective_from`` date; a carrier may ship several versions and the one in force on
the ship date applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from ehub_core.money import CurrencyCode
from ehub_logistics.carriers.base import ServiceLevel
from ehub_logistics.countries import is_country


class RateCardError(ValueError):
    """A rate card file is unreadable or invalid; the message names file and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ZoneRule(_Model):
    """``origin``/``destination`` entries: a country code, ``@GROUP`` or ``*``."""

    zone: str
    origin: list[str] = ["*"]
    destination: list[str] = ["*"]
    domestic: bool | None = None  # True: same country only; False: cross-border only


class RemoteArea(_Model):
    country: str
    postal_prefixes: list[str] = []  # empty: the whole country is remote


class RemoteAreaFee(_Model):
    minimum: Decimal = Field(ge=0)
    per_kg: Decimal = Field(default=Decimal(0), ge=0)
    areas: list[RemoteArea]


class ServiceRates(_Model):
    """One service level. ``weight_breaks`` are inclusive upper bounds in kg.

    ``pricing: flat``: ``prices[zone][i]`` is the whole charge up to break ``i``;
    above the last break ``additional_per_kg[zone]`` is charged per started kg.
    ``pricing: per_kg``: ``prices[zone][i]`` is a rate per kg applied to the whole
    chargeable weight, never less than ``minimum_charge[zone]``.
    """

    code: str
    name: str
    level: ServiceLevel
    pricing: Literal["flat", "per_kg"] = "flat"
    volumetric_divisor: int | None = Field(default=None, gt=0)
    min_chargeable_kg: Decimal = Field(default=Decimal(0), ge=0)
    max_parcel_weight_kg: Decimal | None = Field(default=None, gt=0)
    max_parcel_length_cm: Decimal | None = Field(default=None, gt=0)
    transit_days: dict[str, int]
    weight_breaks: list[Decimal] = Field(min_length=1)
    prices: dict[str, list[Decimal]]
    additional_per_kg: dict[str, Decimal] = {}
    minimum_charge: dict[str, Decimal] = {}

    @model_validator(mode="after")
    def _tables_are_consistent(self) -> ServiceRates:
        breaks = self.weight_breaks
        if any(b <= 0 for b in breaks) or any(a >= b for a, b in pairwise(breaks)):
            raise ValueError(f"service {self.code}: weight_breaks must be positive and increasing")
        for zone, row in self.prices.items():
            if len(row) != len(breaks):
                raise ValueError(
                    f"service {self.code}: zone {zone} has {len(row)} prices "
                    f"for {len(breaks)} weight breaks"
                )
            if any(p < 0 for p in row):
                raise ValueError(f"service {self.code}: zone {zone} has a negative price")
            if zone not in self.transit_days:
                raise ValueError(f"service {self.code}: zone {zone} has prices but no transit_days")
        return self


class RateCard(_Model):
    carrier: str
    name: str
    source: str = Field(min_length=1)
    effective_from: date
    currency: CurrencyCode  # ISO 4217: prices round to its minor unit
    volumetric_divisor: int = Field(gt=0)
    weight_step_kg: Decimal = Field(gt=0)
    basis: Literal["shipment", "parcel"] = "shipment"
    fuel_surcharge_percent: Decimal = Field(ge=0, le=100)
    remote_area: RemoteAreaFee | None = None
    country_groups: dict[str, list[str]] = {}
    zones: list[ZoneRule] = Field(min_length=1)
    services: list[ServiceRates] = Field(min_length=1)
    _lanes: dict[tuple[str, str], str | None] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> RateCard:
        for group, members in self.country_groups.items():
            bad = [c for c in members if not is_country(c)]
            if bad:
                raise ValueError(f"country group {group}: unknown country codes {bad}")
        known_zones = {z.zone for z in self.zones}
        for rule in self.zones:
            for entry in (*rule.origin, *rule.destination):
                if entry == "*":
                    continue
                if entry.startswith("@"):
                    if entry[1:] not in self.country_groups:
                        raise ValueError(f"zone {rule.zone}: unknown country group {entry}")
                elif not is_country(entry):
                    raise ValueError(f"zone {rule.zone}: unknown country code {entry!r}")
        if self.remote_area:
            for area in self.remote_area.areas:
                if not is_country(area.country):
                    raise ValueError(f"remote_area: unknown country code {area.country!r}")
        for svc in self.services:
            stray = set(svc.prices) - known_zones
            if stray:
                raise ValueError(f"service {svc.code}: prices for undefined zones {sorted(stray)}")
        codes = [s.code for s in self.services]
        if len(codes) != len(set(codes)):
            raise ValueError("service codes must be unique")
        return self

    @property
    def version(self) -> str:
        return f"{self.carrier}@{self.effective_from.isoformat()}"

    def _matches(self, entries: list[str], country: str) -> bool:
        for entry in entries:
            if entry == "*" or entry == country:
                return True
            if entry.startswith("@") and country in self.country_groups.get(entry[1:], ()):
                return True
        return False

    def zone_for(self, origin: str, destination: str) -> str | None:
        """The first zone rule matching the lane, or None if the carrier does not serve it."""
        lane = (origin, destination)
        if lane not in self._lanes:  # at most 249 x 249 lanes: memoise
            self._lanes[lane] = self._first_zone(origin, destination)
        return self._lanes[lane]

    def _first_zone(self, origin: str, destination: str) -> str | None:
        for rule in self.zones:
            if rule.domestic is not None and rule.domestic != (origin == destination):
                continue
            if self._matches(rule.origin, origin) and self._matches(rule.destination, destination):
                return rule.zone
        return None

    def is_remote(self, country: str, postal_code: str | None) -> bool:
        if self.remote_area is None:
            return False
        postal = (postal_code or "").replace(" ", "").upper()
        for area in self.remote_area.areas:
            if area.country != country:
                continue
            if not area.postal_prefixes:
                return True
            if postal and any(postal.startswith(p.upper()) for p in area.postal_prefixes):
                return True
        return False


class RateCardBook:
    """All versions of one carrier's card; picks the one in force on a date."""

    def __init__(self, cards: Iterable[RateCard]) -> None:
        self.cards = sorted(cards, key=lambda c: c.effective_from)
        if not self.cards:
            raise RateCardError("no rate card versions given")
        carriers = {c.carrier for c in self.cards}
        if len(carriers) != 1:
            raise RateCardError(f"rate card versions mix carriers {sorted(carriers)}")
        dates = [c.effective_from for c in self.cards]
        if len(dates) != len(set(dates)):
            raise RateCardError(f"two {self.cards[0].carrier} cards share an effective_from date")

    def in_force(self, on: date) -> RateCard | None:
        current = None
        for card in self.cards:
            if card.effective_from <= on:
                current = card
        return current


def load_rate_card(path: Path) -> RateCard:
    """Read and validate one card; raise :class:`RateCardError` naming file and reason."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RateCardError(f"rate card {path}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise RateCardError(f"rate card {path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise RateCardError(f"rate card {path}: top level must be a mapping")
    try:
        return RateCard.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'card'}: {e['msg']}" for e in exc.errors()
        )
        raise RateCardError(f"rate card {path}: {reasons}") from exc


def load_rate_card_book(paths: Iterable[Path]) -> RateCardBook:
    return RateCardBook(load_rate_card(p) for p in paths)

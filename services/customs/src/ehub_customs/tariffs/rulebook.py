"""The compiled rule book: the validated files turned into lookups the engine can use fast.

A :class:`CountryRules` keeps every rule with its date range; :meth:`CountryRules.view`
returns the rules in force on one date, indexed by HS prefix (a dict per prefix, tried
longest first), and caches it. Nothing here is pydantic: the hot path only reads
slotted dataclasses and dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Generic, TypeVar

from ehub_core.errors import UnprocessableError, field_error
from ehub_customs.fx import FxTable


@dataclass(frozen=True, slots=True)
class RuleRef:
    """What every charge cites: the rule id, its source and whether it was verified."""

    id: str
    source_title: str
    source_url: str | None
    verified: bool
    effective_from: date | None
    effective_to: date | None

    def in_force(self, on: date) -> bool:
        if self.effective_from is not None and on < self.effective_from:
            return False
        return not (self.effective_to is not None and on > self.effective_to)


@dataclass(frozen=True, slots=True)
class SpecificRate:
    amount: Decimal
    currency: str
    per: str


@dataclass(frozen=True, slots=True)
class DutyRule:
    ref: RuleRef
    hs: str
    desc: str | None
    ad_valorem: Decimal | None
    specific: SpecificRate | None
    combine: str
    estimate: bool = False


@dataclass(frozen=True, slots=True)
class DutyAdjustmentRule:
    ref: RuleRef
    kind: str
    origins: frozenset[str]
    hs: tuple[str, ...]
    exclude_hs: tuple[str, ...]
    ad_valorem: Decimal


@dataclass(frozen=True, slots=True)
class VatRule:
    ref: RuleRef
    rate: Decimal
    hs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExciseRule:
    ref: RuleRef
    name: str
    hs: tuple[str, ...]
    ad_valorem: Decimal | None
    specific: SpecificRate | None
    base: tuple[str, ...]
    inclusive: bool
    min_value_per_ml: Decimal | None
    min_unit_value: Decimal | None


@dataclass(frozen=True, slots=True)
class LevyRule:
    ref: RuleRef
    name: str
    rate: Decimal
    base: tuple[str, ...]
    hs: tuple[str, ...]
    exempt_origins: frozenset[str]
    in_vat_base: bool


@dataclass(frozen=True, slots=True)
class FeeRule:
    ref: RuleRef
    name: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class MinimumRule:
    ref: RuleRef
    applies_to: frozenset[str]
    max_amount: Decimal
    currency: str
    inclusive: bool
    not_in_quota_regime: bool


@dataclass(frozen=True, slots=True)
class CollectionFeeRule:
    ref: RuleRef
    name: str
    transport: frozenset[str]
    amount: Decimal
    rate: Decimal | None
    minimum: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    ref: RuleRef
    applies_to: str
    max_value: Decimal
    currency: str
    basis: str
    effect: str
    sale_tax_rate: Decimal | None
    sale_tax_base: tuple[str, ...]
    origins: frozenset[str]
    transport: frozenset[str]
    exclude_hs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FlatDutyRule:
    ref: RuleRef
    amount: Decimal
    currency: str
    subheading_digits: int
    max_consignment_value: Decimal
    basis: str


@dataclass(frozen=True, slots=True)
class QuotaRule:
    ref: RuleRef
    name: str
    per_transaction_limit: Decimal
    annual_limit: Decimal
    currency: str
    duty_rate: Decimal
    tax_factor: Decimal
    single_item_exception: bool
    exclude_hs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RestrictionRule:
    ref: RuleRef
    kind: str
    hs: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class LaneRule:
    ref: RuleRef
    origin: str
    destination: str
    hs: tuple[str, ...]
    duty_rate: Decimal | None
    fast_track: bool
    requires_verified_sme: bool
    max_consignment_value: Decimal
    currency: str


def matches(hs: str, prefixes: tuple[str, ...]) -> bool:
    """True if ``hs`` starts with one of ``prefixes`` (an empty tuple matches everything)."""
    if not prefixes:
        return True
    return hs.startswith(prefixes)


T = TypeVar("T")


class PrefixIndex(Generic[T]):
    """Longest-prefix lookup: one dict per prefix, tried from the longest length down."""

    __slots__ = ("_lengths", "_map")

    def __init__(self, items: list[tuple[str, T]]) -> None:
        self._map: dict[str, T] = dict(items)
        self._lengths = tuple(sorted({len(k) for k in self._map}, reverse=True))

    def get(self, hs: str) -> T | None:
        m = self._map
        for n in self._lengths:
            hit = m.get(hs[:n])
            if hit is not None:
                return hit
        return None

    def __len__(self) -> int:
        return len(self._map)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._map.items(), key=lambda kv: kv[0])


@dataclass(slots=True)
class CountryView:
    """The rules of one country in force on one date."""

    code: str
    on: date
    duties: PrefixIndex[DutyRule]
    chapter_estimates: dict[str, DutyRule]
    default_estimate: DutyRule
    adjustments: tuple[DutyAdjustmentRule, ...]
    vat_default: VatRule | None
    vat_index: PrefixIndex[VatRule]
    excise: tuple[ExciseRule, ...]
    levies: tuple[LevyRule, ...]
    fees: tuple[FeeRule, ...]
    thresholds: tuple[ThresholdRule, ...]
    flat_duties: tuple[FlatDutyRule, ...]
    quota: QuotaRule | None
    restrictions: tuple[RestrictionRule, ...]
    minimums: tuple[MinimumRule, ...] = ()
    collection_fees: tuple[CollectionFeeRule, ...] = ()

    def duty_for(self, hs: str) -> DutyRule:
        """The duty rule by longest prefix; else the chapter estimate (flagged ``estimate``)."""
        rule = self.duties.get(hs)
        if rule is not None:
            return rule
        return self.chapter_estimates.get(hs[:2], self.default_estimate)

    def vat_for(self, hs: str) -> VatRule | None:
        return self.vat_index.get(hs) or self.vat_default


@dataclass(slots=True)
class CountryRules:
    """Every rule of one country file, with a cache of dated views."""

    code: str
    name: str
    version: str
    currency: str
    valuation: str
    valuation_ref: RuleRef
    quantum: Decimal
    rounding: str
    vat_name: str
    vat_base: tuple[str, ...]
    file: str
    duties: list[DutyRule]
    chapter_estimates: list[DutyRule]
    adjustments: list[DutyAdjustmentRule]
    vat: list[VatRule]
    excise: list[ExciseRule]
    levies: list[LevyRule]
    fees: list[FeeRule]
    thresholds: list[ThresholdRule]
    flat_duties: list[FlatDutyRule]
    quotas: list[QuotaRule]
    restrictions: list[RestrictionRule]
    minimums: list[MinimumRule] = field(default_factory=list)
    collection_fees: list[CollectionFeeRule] = field(default_factory=list)
    _views: dict[date, CountryView] = field(default_factory=dict)

    def view(self, on: date) -> CountryView:
        """The rules in force on ``on``; 422 naming ``date`` if the book does not cover it."""
        cached = self._views.get(on)
        if cached is not None:
            return cached
        view = self._build_view(on)
        if len(self._views) > 4096:
            self._views.clear()
        self._views[on] = view
        return view

    def _build_view(self, on: date) -> CountryView:
        estimates = [e for e in self.chapter_estimates if e.ref.in_force(on)]
        default = next((e for e in estimates if e.hs == ""), None)
        vat = [v for v in self.vat if v.ref.in_force(on)]
        vat_default = next((v for v in vat if not v.hs), None)
        if default is None or (self.vat and vat_default is None):
            raise UnprocessableError(
                f"No {self.code} rules are in force on {on.isoformat()}",
                errors=[field_error("date", f"outside the {self.code} rule book")],
            )
        duties: list[tuple[str, DutyRule]] = [(d.hs, d) for d in self.duties if d.ref.in_force(on)]
        vat_items = [(p, v) for v in vat if v.hs for p in v.hs]
        quotas = [q for q in self.quotas if q.ref.in_force(on)]
        return CountryView(
            code=self.code,
            on=on,
            duties=PrefixIndex(duties),
            chapter_estimates={e.hs: e for e in estimates if e.hs},
            default_estimate=default,
            adjustments=tuple(a for a in self.adjustments if a.ref.in_force(on)),
            vat_default=vat_default,
            vat_index=PrefixIndex(vat_items),
            excise=tuple(x for x in self.excise if x.ref.in_force(on)),
            levies=tuple(x for x in self.levies if x.ref.in_force(on)),
            fees=tuple(x for x in self.fees if x.ref.in_force(on)),
            thresholds=tuple(x for x in self.thresholds if x.ref.in_force(on)),
            flat_duties=tuple(x for x in self.flat_duties if x.ref.in_force(on)),
            quota=quotas[0] if quotas else None,
            restrictions=tuple(x for x in self.restrictions if x.ref.in_force(on)),
            minimums=tuple(x for x in self.minimums if x.ref.in_force(on)),
            collection_fees=tuple(x for x in self.collection_fees if x.ref.in_force(on)),
        )


@dataclass(slots=True)
class RuleBook:
    """All countries, the eWTP lanes and the FX table, loaded once at start-up."""

    countries: dict[str, CountryRules]
    lanes: list[LaneRule]
    fx: FxTable
    lanes_version: str = ""

    def country(self, code: str) -> CountryRules:
        rules = self.countries.get(code)
        if rules is None:
            known = ", ".join(sorted(self.countries))
            raise UnprocessableError(
                f"No rule book for destination {code!r} (known: {known})",
                errors=[field_error("destination", f"unknown country {code!r}")],
            )
        return rules

    def lanes_for(self, origin: str, destination: str, on: date) -> list[LaneRule]:
        return [
            lane
            for lane in self.lanes
            if lane.origin == origin and lane.destination == destination and lane.ref.in_force(on)
        ]

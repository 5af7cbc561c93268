"""The schema of a tariff data file (``tariffs/data/<cc>.yaml``), validated by pydantic.

Every rule carries an id, a source and an effective date range. Rates are written as
percent strings (``"12%"``) or decimal fractions and become :class:`~decimal.Decimal`;
YAML floats never reach the engine (the loader reads them as ``Decimal``).

Groups (``groups:`` lists of duty or VAT rates) share a source, a date range and a
``verified`` flag, which each entry may override: a tariff schedule is one document
with many lines, and saying so once keeps the file readable.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

HS_RE = re.compile(r"^\d{2}(\d{2}){0,4}$")
ISO_CC_RE = re.compile(r"^[A-Z]{2}$")
ISO_CCY_RE = re.compile(r"^[A-Z]{3}$")


def parse_rate(value: object) -> Decimal:
    """``"12%"`` -> 0.12, ``"0.12"``/Decimal -> 0.12. Rejects floats and negatives."""
    if isinstance(value, (bool, float)):
        raise ValueError("rates must be written as strings ('12%') or exact decimals")
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, str):
        text = value.strip()
        value = Decimal(text[:-1].strip()) / 100 if text.endswith("%") else Decimal(text)
    if not isinstance(value, Decimal):
        raise ValueError(f"not a rate: {value!r}")
    if value < 0:
        raise ValueError("a rate cannot be negative")
    return value


def parse_amount(value: object) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ValueError("amounts must be strings or exact decimals, never floats")
    try:
        result = Decimal(str(value))
    except ArithmeticError as exc:  # decimal.InvalidOperation
        raise ValueError(f"not an amount: {value!r}") from exc
    if result < 0:
        raise ValueError("an amount cannot be negative")
    return result


def normalize_hs(value: object) -> str:
    """``"0306.32"`` -> ``"030632"``; 2 to 10 digits, even length."""
    text = str(value).replace(".", "").replace(" ", "")
    if not HS_RE.match(text):
        raise ValueError(f"HS prefix {value!r} must be 2-10 digits (even count), e.g. '0306.32'")
    return text


Rate = Annotated[Decimal, BeforeValidator(parse_rate)]
Amount = Annotated[Decimal, BeforeValidator(parse_amount)]
HsPrefix = Annotated[str, BeforeValidator(normalize_hs)]
CountryCode = Annotated[str, Field(pattern=ISO_CC_RE.pattern)]
CurrencyCode = Annotated[str, Field(pattern=ISO_CCY_RE.pattern)]

Unit = Literal["kg", "l", "hl", "unit", "pair", "lpa", "pack20"]
BaseComponent = Literal["customs_value", "goods", "shipping", "insurance", "duty", "excise"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    title: str = Field(min_length=3)
    url: str | None = None
    note: str | None = None


class Dated(Strict):
    """Fields every rule shares."""

    source: Source | None = None
    effective_from: date | None = None
    effective_to: date | None = None
    verified: bool | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _range(self) -> Dated:
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self


class Specific(Strict):
    amount: Amount
    currency: CurrencyCode
    per: Unit


class DutyRate(Dated):
    hs: HsPrefix
    desc: str | None = None
    ad_valorem: Rate | None = None
    specific: Specific | None = None
    combine: Literal["sum", "max", "min"] = "sum"

    @model_validator(mode="after")
    def _some_rate(self) -> DutyRate:
        if self.ad_valorem is None and self.specific is None:
            raise ValueError("a duty rate needs ad_valorem, specific or both")
        return self


class DutyGroup(Dated):
    group: str
    rates: list[DutyRate] = Field(min_length=1)


class ChapterEstimate(Dated):
    chapter: Annotated[str, Field(pattern=r"^\d{2}$")] | None = None
    ad_valorem: Rate


class VatRate(Dated):
    id: str
    rate: Rate
    hs: list[HsPrefix] = Field(default_factory=list)


class Vat(Strict):
    name: str = "VAT"
    base: list[BaseComponent]
    rates: list[VatRate] = Field(min_length=1)


class Excise(Dated):
    id: str
    name: str
    hs: list[HsPrefix] = Field(min_length=1)
    ad_valorem: Rate | None = None
    specific: Specific | None = None
    base: list[BaseComponent] = Field(default_factory=lambda: ["customs_value", "duty"])  # type: ignore[arg-type]
    # China: composite assessable price = (value + duty) / (1 - rate).
    inclusive: bool = False
    min_value_per_ml: Amount | None = None
    min_unit_value: Amount | None = None


class Levy(Dated):
    id: str
    name: str
    rate: Rate
    base: list[Literal["customs_value", "duty", "excise"]] = Field(
        default_factory=lambda: ["customs_value"]  # type: ignore[arg-type]
    )
    hs: list[HsPrefix] = Field(default_factory=list)
    exempt_origins: list[CountryCode] = Field(default_factory=list)
    in_vat_base: bool = False


class Fee(Dated):
    id: str
    name: str
    amount: Amount
    currency: CurrencyCode
    per: Literal["consignment"] = "consignment"


class Minimum(Dated):
    """A minimum collectible amount: a charge kind whose consignment total is at or below
    (``inclusive``) or below ``max_amount`` is not collected (China: CNY 50 per
    consignment in general trade). ``not_in_quota_regime``: a quota regime (China's
    cross-border retail import) that applies to the order cancels it."""

    id: str
    applies_to: list[Literal["duty", "excise", "vat"]] = Field(min_length=1)
    max_amount: Amount
    currency: CurrencyCode
    inclusive: bool = True
    not_in_quota_regime: bool = False


class CollectionFee(Dated):
    """What the carrier charges the buyer at delivery for collecting duty and tax (DAP
    only, and only when there is something to collect): ``amount`` or ``rate`` of the
    amount collected, at least ``minimum``."""

    id: str
    name: str
    transport: list[Literal["courier", "postal", "freight"]] = Field(min_length=1)
    amount: Amount = Decimal(0)
    rate: Rate | None = None
    minimum: Amount = Decimal(0)
    currency: CurrencyCode


class DutyAdjustment(Dated):
    id: str
    kind: Literal["preference", "additional"]
    origins: list[CountryCode] = Field(min_length=1)
    hs: list[HsPrefix] = Field(default_factory=list)
    exclude_hs: list[HsPrefix] = Field(default_factory=list)
    ad_valorem: Rate


class Threshold(Dated):
    """De minimis: below or at ``max_value`` a kind of charge is waived or moved to sale."""

    id: str
    applies_to: Literal["duty", "tax", "both"]
    max_value: Amount
    currency: CurrencyCode
    basis: Literal["goods", "customs_value"] = "goods"
    scope: Literal["consignment"] = "consignment"
    effect: Literal["exempt", "collect_at_sale"] = "exempt"
    sale_tax_rate: Rate | None = None
    sale_tax_base: list[BaseComponent] = Field(default_factory=lambda: ["goods"])  # type: ignore[arg-type]
    origins: list[CountryCode] = Field(default_factory=list)
    transport: list[Literal["courier", "postal", "freight"]] = Field(default_factory=list)
    exclude_hs: list[HsPrefix] = Field(default_factory=list)


class FlatDuty(Dated):
    """EU from 2026-07-01: a fixed duty per distinct subheading of a low-value consignment."""

    id: str
    amount: Amount
    currency: CurrencyCode
    per: Literal["distinct_subheading"] = "distinct_subheading"
    subheading_digits: Literal[6, 8, 10] = 6
    max_consignment_value: Amount
    basis: Literal["goods", "customs_value"] = "goods"


class QuotaRegime(Dated):
    """China's cross-border retail import: per-transaction and per-person-year limits."""

    id: str
    name: str
    per_transaction_limit: Amount
    annual_limit: Amount
    currency: CurrencyCode
    duty_rate: Rate
    tax_factor: Rate
    single_item_exception: bool = True
    exclude_hs: list[HsPrefix] = Field(default_factory=list)


class Restriction(Dated):
    id: str
    kind: Literal["prohibited", "restricted"]
    hs: list[HsPrefix] = Field(min_length=1)
    reason: str


class Rounding(Strict):
    quantum: Amount = Decimal("0.01")
    mode: Literal["ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN", "ROUND_UP"] = "ROUND_HALF_UP"


class CountryFile(Strict):
    """One ``<cc>.yaml``."""

    country: CountryCode
    name: str
    version: str
    currency: CurrencyCode
    valuation: Literal["CIF", "FOB"]
    valuation_source: Source
    rounding: Rounding = Rounding()
    verified_default: bool = False
    duty: list[DutyGroup] = Field(default_factory=list)
    chapter_estimates: list[ChapterEstimate] = Field(min_length=1)
    duty_adjustments: list[DutyAdjustment] = Field(default_factory=list)
    vat: Vat | None = None
    excise: list[Excise] = Field(default_factory=list)
    levies: list[Levy] = Field(default_factory=list)
    fees: list[Fee] = Field(default_factory=list)
    minimums: list[Minimum] = Field(default_factory=list)
    collection_fees: list[CollectionFee] = Field(default_factory=list)
    thresholds: list[Threshold] = Field(default_factory=list)
    flat_duties: list[FlatDuty] = Field(default_factory=list)
    quota_regimes: list[QuotaRegime] = Field(default_factory=list)
    restrictions: list[Restriction] = Field(default_factory=list)

    @field_validator("chapter_estimates")
    @classmethod
    def _one_default(cls, value: list[ChapterEstimate]) -> list[ChapterEstimate]:
        if not any(e.chapter is None for e in value):
            raise ValueError("chapter_estimates needs one entry without 'chapter' (the default)")
        return value


class Lane(Dated):
    id: str
    origin: CountryCode
    destination: CountryCode
    hs: list[HsPrefix] = Field(default_factory=list)
    duty_rate: Rate | None = None  # None: fast track only, statutory duty applies
    fast_track: bool = True
    requires_verified_sme: bool = True
    max_consignment_value: Amount
    currency: CurrencyCode


class LaneFile(Strict):
    version: str
    lanes: list[Lane]


class FxDay(Strict):
    date: date
    rates: dict[CurrencyCode, Amount]


class FxFile(Strict):
    version: str
    base: CurrencyCode
    source: Source
    verified: bool
    days: list[FxDay] = Field(min_length=1)

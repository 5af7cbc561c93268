"""Schema of the screening data files (``data/goods/<cc>.yaml``, ``policy.yaml``,
``lists/lists.yaml``): every rule dated, sourced and flagged ``verified``, as the tariff
files are."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    title: str = Field(min_length=3)
    url: str | None = None


class Dated(_Strict):
    id: str = Field(pattern=r"^[a-z]{2}\.[a-z0-9_.-]+$")
    effective_from: date
    effective_to: date | None = None
    verified: bool
    source: Source

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)


def _hs_prefixes(values: list[str]) -> list[str]:
    out = []
    for v in values:
        digits = v.replace(".", "").replace(" ", "")
        if not digits.isdigit() or not 2 <= len(digits) <= 10:
            raise ValueError(f"HS prefix {v!r} must be 2-10 digits (dots allowed)")
        out.append(digits)
    return out


class GoodsRule(Dated):
    """A prohibited or restricted good: by HS prefix, by a keyword of the line's
    description, and/or by the goods' origin."""

    kind: Literal["prohibited", "restricted"]
    phase: Literal["import", "export", "both"] = "import"
    hs: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    origins: list[Country] = Field(default_factory=list)
    # hs_or_keywords: a line is hit by its HS code or a keyword; keywords: only by a
    # keyword (within the HS prefixes, when there are some).
    match: Literal["hs_or_keywords", "keywords"] = "hs_or_keywords"
    requires: str | None = Field(
        None, pattern=r"^[a-z_]+$", description="the document that lifts a restriction"
    )
    reason: str = Field(min_length=3)

    @field_validator("hs")
    @classmethod
    def _hs(cls, values: list[str]) -> list[str]:
        return _hs_prefixes(values)

    @field_validator("keywords")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.strip().lower() for v in values if v.strip()]


class ReferenceValue(Dated):
    """The lowest credible unit value of a heading: below it by more than the policy's
    ``max_discount`` a line is held as undervalued."""

    hs: list[str] = Field(min_length=1)
    min_value: Decimal = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    per: Literal["unit", "kg"]

    @field_validator("hs")
    @classmethod
    def _hs(cls, values: list[str]) -> list[str]:
        return _hs_prefixes(values)


class CountryScreening(_Strict):
    country: Country
    version: str
    goods: list[GoodsRule] = Field(default_factory=list)
    valuation: list[ReferenceValue] = Field(default_factory=list)


class PartyPolicy(_Strict):
    review_score: float = Field(ge=50, le=100)
    match_score: float = Field(ge=50, le=100)
    min_alias_chars: int = Field(ge=1, le=20)
    address_score: float = Field(ge=50, le=100)


class ValuationPolicy(_Strict):
    max_discount: Decimal = Field(gt=0, lt=1)


class SplitPolicy(_Strict):
    window_hours: int = Field(gt=0, le=24 * 31)
    min_parcels: int = Field(ge=2, le=100)


class Policy(_Strict):
    version: str
    parties: PartyPolicy
    valuation: ValuationPolicy
    split: SplitPolicy


class ListSource(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    format: Literal["ofac-csv", "un-xml"]
    files: dict[str, str]
    source: Source
    retrieved: date
    extract: str | None = None
    verified: bool


class ListsFile(_Strict):
    version: str
    lists: list[ListSource]

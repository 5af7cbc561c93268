"""The answer of ``POST /v1/landed-cost``, field by field: what
:func:`ehub_customs.landed_cost.schemas.quote_dict` returns (amounts as decimal strings).
"""

from __future__ import annotations

from datetime import date as Date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Read(BaseModel):
    # Forbidding extra keys lets a test prove the documented shape is the returned one.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SourceRead(_Read):
    title: str
    url: str | None


class TitleRead(_Read):
    title: str


class ChargeRead(_Read):
    kind: Literal["duty", "excise", "levy", "vat", "fee"]
    name: str
    rule_id: str
    amount: str
    rate: str | None
    base: str | None
    collected_at: Literal["border", "sale"]
    source: SourceRead
    verified: bool
    estimate: bool
    related_rule_ids: list[str]
    note: str | None
    payer: Literal["seller", "buyer"] = Field(
        description="Who pays it: the seller (DDP, or collected at sale and remitted by the "
        "seller) or the buyer (DAP: at delivery, to the carrier)"
    )


class RestrictionRead(_Read):
    rule_id: str
    kind: str
    reason: str
    source: TitleRead
    verified: bool


class LineRead(_Read):
    index: int
    hs_code: str
    goods_value: str
    shipping: str
    insurance: str
    customs_value: str
    duty_rule_id: str
    estimate: bool
    charges: list[ChargeRead]
    charges_total: str
    restrictions: list[RestrictionRead]


class ValuationRead(_Read):
    basis: str = Field(description="CIF, FOB, ...")
    rule_id: str


class TotalsRead(_Read):
    currency: str
    goods: str
    shipping: str
    insurance: str
    duty: str
    excise: str
    vat: str
    levies: str
    fees: str
    charges: str
    landed: str
    collected_at_sale: str
    collected_at_border: str
    seller_pays: str = Field(
        description="Charges the seller pays (DDP border charges and charges collected at sale)"
    )
    buyer_pays_at_delivery: str = Field(
        description="What the buyer pays at the door (DAP: border charges and the carrier's "
        "collection fee; DDP: 0)"
    )


class FxRead(_Read):
    from_: str = Field(alias="from")
    to: str
    rate: str
    date: Date
    source: str
    verified: bool


class FxPairRead(_Read):
    to_destination: FxRead
    to_buyer: FxRead


class RegimeRead(_Read):
    rule_id: str
    name: str
    mode: Literal["within_limits", "single_item_over_limit", "general_trade", "not_eligible"]
    value: str
    allowance_used: str
    annual_limit: str
    per_transaction_limit: str
    counts_toward_allowance: str
    reason: str


class LaneRead(_Read):
    rule_id: str
    fast_track: bool
    duty_rate: str | None
    source: TitleRead
    verified: bool


class ReverseRead(_Read):
    target_total: str
    target_currency: str
    net_unit_values: list[str]
    residual: str
    exact: bool


class LandedCostRead(_Read):
    """The answer of ``POST /v1/landed-cost``: amounts are decimal strings."""

    mode: Literal["forward", "reverse"]
    destination: str
    date: Date
    currency: str
    valuation: ValuationRead
    rule_book_version: str
    lines: list[LineRead]
    consignment_charges: list[ChargeRead]
    totals: TotalsRead
    buyer_totals: TotalsRead
    fx: FxPairRead
    regime: RegimeRead | None
    lane: LaneRead | None
    fast_track: bool
    payer_of_border_charges: Literal["seller", "buyer"]
    verified: bool
    unverified_rule_ids: list[str]
    contains_estimates: bool
    admissible: bool
    warnings: list[str]
    reverse: ReverseRead | None = Field(None, description="reverse mode only")

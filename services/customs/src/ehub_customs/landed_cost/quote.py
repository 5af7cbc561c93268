"""Plain domain types of a landed-cost quote (no pydantic: the engine's hot path uses these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from ehub_customs.fx import FxQuote

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Item:
    hs: str
    quantity: int
    unit_value: Decimal
    country_of_origin: str
    description: str = ""
    unit_weight_kg: Decimal | None = None
    unit_volume_l: Decimal | None = None
    abv: Decimal | None = None  # alcohol by volume, a fraction (0.125 = 12.5 %)


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    origin: str
    destination: str
    date: date
    currency: str
    items: tuple[Item, ...]
    shipping: Decimal = ZERO
    insurance: Decimal = ZERO
    buyer_id: str | None = None
    seller_sme_verified: bool = False
    incoterm: str = "DDP"
    transport: str = "courier"
    buyer_currency: str | None = None


@dataclass(slots=True)
class Charge:
    """One amount owed, with the rule (and source) that makes it owed."""

    kind: str  # duty | excise | levy | vat | fee
    name: str
    rule_id: str
    amount: Decimal
    source_title: str
    source_url: str | None
    verified: bool
    rate: Decimal | None = None
    base: Decimal | None = None
    collected_at: str = "border"  # border | sale
    estimate: bool = False
    related_rule_ids: tuple[str, ...] = ()
    note: str | None = None
    payer: str = "seller"  # seller | buyer (landed_cost/payers.py)


@dataclass(slots=True)
class Restriction:
    rule_id: str
    kind: str
    reason: str
    source_title: str
    verified: bool


@dataclass(slots=True)
class LineQuote:
    index: int
    hs: str
    goods_value: Decimal
    shipping: Decimal
    insurance: Decimal
    customs_value: Decimal
    charges: list[Charge]
    duty_rule_id: str
    estimate: bool
    restrictions: list[Restriction]

    @property
    def charges_total(self) -> Decimal:
        return sum((c.amount for c in self.charges), ZERO)


@dataclass(slots=True)
class Totals:
    currency: str
    goods: Decimal
    shipping: Decimal
    insurance: Decimal
    duty: Decimal
    excise: Decimal
    vat: Decimal
    levies: Decimal
    fees: Decimal
    charges: Decimal
    landed: Decimal
    collected_at_sale: Decimal
    collected_at_border: Decimal
    seller_pays: Decimal = ZERO
    buyer_pays_at_delivery: Decimal = ZERO


@dataclass(slots=True)
class RegimeOutcome:
    """What a quota regime (China's cross-border retail import) decided for this order."""

    rule_id: str
    name: str
    mode: str  # within_limits | single_item_over_limit | general_trade | not_eligible
    value: Decimal
    allowance_used: Decimal
    annual_limit: Decimal
    per_transaction_limit: Decimal
    counts_toward_allowance: Decimal
    reason: str


@dataclass(slots=True)
class LaneOutcome:
    rule_id: str
    fast_track: bool
    duty_rate: Decimal | None
    source_title: str
    verified: bool


@dataclass(slots=True)
class Quote:
    request: QuoteRequest
    currency: str
    valuation: str
    valuation_rule_id: str
    lines: list[LineQuote]
    consignment_charges: list[Charge]
    totals: Totals
    buyer_totals: Totals
    fx: FxQuote
    buyer_fx: FxQuote
    regime: RegimeOutcome | None
    lane: LaneOutcome | None
    payer_of_border_charges: str
    rule_book_version: str
    verified: bool
    unverified_rule_ids: list[str]
    contains_estimates: bool
    admissible: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def fast_track(self) -> bool:
        return bool(self.lane and self.lane.fast_track)

"""Consignment-level decisions taken before any line is priced.

De minimis thresholds, the EU flat low-value duty, China's cross-border retail quota
and eWTP lanes all look at the whole consignment; each returns what it decided per
line so the line pricing stays a straight calculation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from ehub_customs.landed_cost.quote import ZERO, Item, QuoteRequest, RegimeOutcome
from ehub_customs.tariffs.rulebook import (
    CountryView,
    FlatDutyRule,
    LaneRule,
    QuotaRule,
    ThresholdRule,
    matches,
)

Convert = Callable[[Decimal, str], Decimal]  # amount in some currency -> destination currency


@dataclass(slots=True)
class ThresholdEffects:
    duty_exempt: list[ThresholdRule | None]
    tax_exempt: list[ThresholdRule | None]
    sale_tax: list[ThresholdRule | None]


def apply_thresholds(
    view: CountryView, req: QuoteRequest, goods_total: Decimal, cv_total: Decimal, convert: Convert
) -> ThresholdEffects:
    """Which lines each de minimis rule relieves (a line excluded by HS keeps every charge)."""
    n = len(req.items)
    duty: list[ThresholdRule | None] = [None] * n
    tax: list[ThresholdRule | None] = [None] * n
    sale: list[ThresholdRule | None] = [None] * n
    for t in view.thresholds:
        if t.origins and req.origin not in t.origins:
            continue
        if t.transport and req.transport not in t.transport:
            continue
        basis = goods_total if t.basis == "goods" else cv_total
        if basis > convert(t.max_value, t.currency):
            continue
        for i, item in enumerate(req.items):
            if t.exclude_hs and item.hs.startswith(t.exclude_hs):
                continue
            if t.applies_to != "tax" and duty[i] is None:
                duty[i] = t
            if t.applies_to != "duty":
                if t.effect == "exempt":
                    tax[i] = tax[i] or t
                elif sale[i] is None:
                    sale[i] = t
    return ThresholdEffects(duty, tax, sale)


def flat_duty_lines(
    view: CountryView,
    items: tuple[Item, ...],
    goods_total: Decimal,
    cv_total: Decimal,
    convert: Convert,
) -> tuple[FlatDutyRule | None, list[bool]]:
    """The flat duty rule in force for this consignment, and which line carries each charge.

    One charge per distinct subheading, carried by the first line of that subheading.
    """
    for rule in view.flat_duties:
        basis = goods_total if rule.basis == "goods" else cv_total
        if basis > convert(rule.max_consignment_value, rule.currency):
            continue
        seen: set[str] = set()
        carriers = []
        for item in items:
            sub = item.hs[: rule.subheading_digits]
            carriers.append(sub not in seen)
            seen.add(sub)
        return rule, carriers
    return None, [False] * len(items)


def apply_quota(
    rule: QuotaRule | None,
    req: QuoteRequest,
    cv_total: Decimal,
    used: Decimal | None,
    convert: Convert,
) -> RegimeOutcome | None:
    """China's cross-border retail limits (Cai Guan Shui [2016] 18, [2018] 49).

    Within CNY 5,000 per transaction and CNY 26,000 per person-year: 0 % duty, VAT and
    consumption tax at 70 %. A single item over the transaction limit but within the
    annual one goes through the same channel at full rates and counts toward the year.
    Anything else is general trade and does not count.
    """
    if rule is None or not req.buyer_id:
        return None
    used = used or ZERO
    per_tx = convert(rule.per_transaction_limit, rule.currency)
    annual = convert(rule.annual_limit, rule.currency)

    def outcome(mode: str, counts: Decimal, reason: str) -> RegimeOutcome:
        return RegimeOutcome(
            rule.ref.id, rule.name, mode, cv_total, used, annual, per_tx, counts, reason
        )

    if rule.exclude_hs and any(i.hs.startswith(rule.exclude_hs) for i in req.items):
        return outcome("not_eligible", ZERO, "an item is outside the cross-border retail list")
    if used + cv_total > annual:
        return outcome("general_trade", ZERO, "the order would exceed the annual limit")
    if cv_total <= per_tx:
        return outcome("within_limits", cv_total, "within the per-transaction and annual limits")
    single = len(req.items) == 1 and req.items[0].quantity == 1
    if rule.single_item_exception and single:
        return outcome(
            "single_item_over_limit",
            cv_total,
            "one item over the per-transaction limit: full duty and taxes, counted in the year",
        )
    return outcome("general_trade", ZERO, "over the per-transaction limit")


def find_lane(
    lanes: list[LaneRule], req: QuoteRequest, cv_total: Decimal, convert: Convert
) -> LaneRule | None:
    """The first eWTP lane that applies: right hubs, verified SME if required, under cap."""
    for lane in lanes:
        if lane.requires_verified_sme and not req.seller_sme_verified:
            continue
        if cv_total > convert(lane.max_consignment_value, lane.currency):
            continue
        if not any(matches(i.hs, lane.hs) for i in req.items):
            continue
        return lane
    return None

"""Who pays what, and what is too small to collect.

- **Minimum collectible amounts** (``minimums`` in a country file): a charge kind whose
  consignment total is at or below the minimum is not collected (China: duty, import VAT
  and consumption tax of CNY 50 or less per consignment in general trade; not under the
  cross-border retail regime, which cancels it). Each kind is judged on its own total;
  the bases of the other charges keep the assessed amounts (the charge is exempted, not
  undone).
- **Payers** (``incoterm``): under DDP the seller pays every charge (duty, taxes,
  clearance fees) and the buyer pays nothing at the door; under DAP the buyer pays the
  border charges at delivery plus the carrier's collection fee (``collection_fees``, only
  when there is something to collect). Charges collected at sale (IOSS, GB, AU, MY) are
  in the checkout price and remitted by the seller whatever the incoterm.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from ehub_customs.landed_cost.quote import ZERO, Charge, LineQuote, QuoteRequest, RegimeOutcome
from ehub_customs.tariffs.rulebook import CountryView

SELLER = "seller"
BUYER = "buyer"
# Modes of the quota regime under which the cross-border retail rules apply.
IN_REGIME = ("within_limits", "single_item_over_limit")


def apply_minimums(
    view: CountryView,
    lines: list[LineQuote],
    regime: RegimeOutcome | None,
    convert: Callable[[Decimal, str], Decimal],
) -> list[tuple[str, bool]]:
    """Zero the border charges of each kind whose consignment total is within a minimum;
    returns the (rule id, verified) of the minimums applied."""
    applied: list[tuple[str, bool]] = []
    for rule in view.minimums:
        if rule.not_in_quota_regime and regime is not None and regime.mode in IN_REGIME:
            continue
        limit = convert(rule.max_amount, rule.currency)
        for kind in sorted(rule.applies_to):
            owed = [
                c
                for line in lines
                for c in line.charges
                if c.kind == kind and c.collected_at == "border" and c.amount > 0
            ]
            total = sum((c.amount for c in owed), ZERO)
            if not owed or total > limit or (total == limit and not rule.inclusive):
                continue
            for c in owed:
                c.note = (
                    f"{c.amount} not collected: the consignment's {kind} ({total}) is within "
                    f"the minimum collectible amount of {rule.max_amount} {rule.currency}"
                )
                c.amount = ZERO
                c.related_rule_ids = (*c.related_rule_ids, rule.ref.id)
                c.verified = c.verified and rule.ref.verified
            applied.append((rule.ref.id, rule.ref.verified))
    return applied


def collection_fee(
    view: CountryView,
    req: QuoteRequest,
    border_due: Decimal,
    convert: Callable[[Decimal, str], Decimal],
    round_: Callable[[Decimal], Decimal],
) -> tuple[Charge | None, str | None]:
    """The carrier's fee for collecting ``border_due`` from the buyer at delivery (DAP),
    or a warning that none is modelled for the transport."""
    if req.incoterm != "DAP" or border_due <= 0:
        return None, None
    rule = next((f for f in view.collection_fees if req.transport in f.transport), None)
    if rule is None:
        return None, (
            f"DAP: the carrier's fee for collecting duty and tax at delivery is not modelled "
            f"for {req.transport} into {view.code}; the buyer may owe one on top"
        )
    amount = convert(rule.amount, rule.currency)
    if rule.rate is not None:
        amount = max(amount, border_due * rule.rate)
    amount = round_(max(amount, convert(rule.minimum, rule.currency)))
    charge = Charge(
        "fee",
        rule.name,
        rule.ref.id,
        amount,
        rule.ref.source_title,
        rule.ref.source_url,
        rule.ref.verified,
        rate=rule.rate,
        base=border_due if rule.rate is not None else None,
    )
    return charge, None


def assign_payers(charges: list[Charge], incoterm: str) -> None:
    """Name the payer of each charge: at-sale charges and DDP border charges the seller,
    DAP border charges the buyer (at delivery)."""
    border_payer = BUYER if incoterm == "DAP" else SELLER
    for c in charges:
        c.payer = SELLER if c.collected_at == "sale" else border_payer

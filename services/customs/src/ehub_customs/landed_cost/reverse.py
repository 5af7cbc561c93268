"""Reverse mode: from a buyer price that includes duty and taxes, derive the net price.

The items' ``unit_value`` give the price *mix* (relative weights); we search the scale
``s`` so that the forward quote of ``round(unit_value * s, 2)`` lands exactly on the
target total. For fixed rules the forward total is non-decreasing in ``s`` (every
charge is a non-decreasing function of value), so bisection finds the largest price
whose landed total does not exceed the target; when the target is reachable (it is for
any total the forward mode produced) the match is to the cent, otherwise the residual
is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from ehub_core.errors import UnprocessableError, field_error
from ehub_customs.fx import minor_quantum
from ehub_customs.landed_cost.engine import quote
from ehub_customs.landed_cost.quote import ZERO, Quote, QuoteRequest
from ehub_customs.tariffs.rulebook import CountryRules, RuleBook

MAX_STEPS = 200
CENT = Decimal("0.01")


@dataclass(slots=True)
class ReverseResult:
    quote: Quote
    target: Decimal
    target_currency: str
    net_unit_values: list[Decimal]
    residual: Decimal
    exact: bool


def reverse(
    book: RuleBook,
    req: QuoteRequest,
    target: Decimal,
    *,
    target_currency: str | None = None,
    allowance_used: Decimal | None = None,
    rules: CountryRules | None = None,
) -> ReverseResult:
    """Net unit prices (in ``req.currency``) whose landed total equals ``target``.

    ``target_currency`` is the destination currency (default) or the buyer currency.
    """
    if rules is None:
        rules = book.country(req.destination)
    probe = quote(book, req, allowance_used=allowance_used, rules=rules)
    dest = probe.totals.currency
    buyer = probe.buyer_totals.currency
    currency = target_currency or dest
    if currency not in (dest, buyer):
        raise UnprocessableError(
            f"target currency must be {dest} or the buyer currency {buyer}",
            errors=[field_error("target_currency", "neither destination nor buyer currency")],
        )
    use_buyer = currency != dest
    weights = [it.unit_value for it in req.items]
    if not any(weights):
        raise UnprocessableError(
            "unit values give the price mix and cannot all be zero",
            errors=[field_error("items", "all unit values are zero")],
        )
    # Unit prices are searched on a 0.01 grid even for zero-decimal currencies: a line of
    # 100 units at RWF 0.50 is a legitimate price, and the grid must contain the prices
    # the forward quote was made from.
    q = min(minor_quantum(req.currency), CENT)

    def landed(scale: Decimal) -> tuple[Decimal, Quote, list[Decimal]]:
        units = [(w * scale).quantize(q, ROUND_HALF_UP) for w in weights]
        items = tuple(replace(it, unit_value=u) for it, u in zip(req.items, units, strict=True))
        result = quote(book, replace(req, items=items), allowance_used=allowance_used, rules=rules)
        total = result.buyer_totals.landed if use_buyer else result.totals.landed
        return total, result, units

    lo = ZERO
    total, best, units = landed(lo)
    if total > target:
        # Per-line rounding of charges allocated by value (insurance, say) can make the
        # all-zero price mix cost a cent more than a tiny positive one: look for a scale
        # at or under the target before giving up.
        for k in range(0, 24):
            scale = Decimal(1) / (2**k)
            total, best, units = landed(scale)
            if total <= target:
                lo = scale
                break
    if total > target:
        raise UnprocessableError(
            f"target {target} {currency} is below the fixed landed cost ({total})",
            errors=[field_error("target_total", "below the fixed charges")],
        )
    hi = Decimal(1)
    steps = 0
    while landed(hi)[0] <= target:
        hi *= 2
        steps += 1
        if steps > 64:
            raise UnprocessableError(
                "target total is out of range",
                errors=[field_error("target_total", "too large")],
            )
    # Bisect until one step moves every unit price by less than half a minor unit.
    span_floor = q / (2 * max(weights))
    while hi - lo > span_floor and steps < MAX_STEPS:
        mid = (lo + hi) / 2
        t, r, u = landed(mid)
        if t <= target:
            lo, total, best, units = mid, t, r, u
        else:
            hi = mid
        steps += 1
    residual = target - total
    return ReverseResult(best, target, currency, units, residual, residual == 0)

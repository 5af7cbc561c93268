"""The landed-cost engine: one quote from one request, every charge traceable to a rule.

Order of calculation (as the UK's open-source duty calculator does it): customs value
(CIF or FOB, per country) -> duty (ad valorem, specific or both) -> excise -> levies ->
VAT on the base the country's law names (value + duty + excise, plus freight where the
valuation is FOB but the tax base is not). Amounts are converted to the destination
currency first, each charge is rounded with the country's rounding, and totals are
sums of rounded charges, so lines and consignment always agree.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal

from ehub_core.errors import UnprocessableError, field_error
from ehub_customs.fx import minor_quantum
from ehub_customs.landed_cost import consignment as cons
from ehub_customs.landed_cost import payers
from ehub_customs.landed_cost.pricing import LinePricer
from ehub_customs.landed_cost.quote import (
    ZERO,
    Charge,
    LaneOutcome,
    Quote,
    QuoteRequest,
    Totals,
)
from ehub_customs.tariffs.rulebook import CountryRules, RuleBook

ROUNDING = {
    "ROUND_HALF_UP": ROUND_HALF_UP,
    "ROUND_HALF_EVEN": ROUND_HALF_EVEN,
    "ROUND_DOWN": ROUND_DOWN,
    "ROUND_UP": ROUND_UP,
}


def quote(
    book: RuleBook,
    req: QuoteRequest,
    *,
    allowance_used: Decimal | None = None,
    rules: CountryRules | None = None,
) -> Quote:
    """Price ``req`` against the rules in force on ``req.date``.

    ``allowance_used`` is what the buyer has already used of a person-year quota (China)
    in the destination currency; the caller reads it from the allowance ledger.
    ``rules`` are the destination's rules when the caller already looked them up (a
    batch, or a caller that needed them for the ledger), so no request looks them up twice.
    Raises :class:`UnprocessableError` naming the field for semantic errors.
    """
    if not req.items:
        raise UnprocessableError(
            "A quote needs at least one item", errors=[field_error("items", "empty")]
        )
    if rules is None:
        rules = book.country(req.destination)
    view = rules.view(req.date)
    ccy = rules.currency
    q = rules.quantum
    mode = ROUNDING[rules.rounding]
    fx = book.fx.rate(req.currency, ccy, req.date)
    rate = fx.rate

    def convert(amount: Decimal, currency: str) -> Decimal:
        if currency == ccy:
            return amount
        return amount * book.fx.rate(currency, ccy, req.date, field="rules").rate

    items = req.items
    goods = [(it.unit_value * it.quantity * rate).quantize(q, mode) for it in items]
    goods_total = sum(goods, ZERO)
    ship_total = (req.shipping * rate).quantize(q, mode)
    ins_total = (req.insurance * rate).quantize(q, mode)
    ship = _allocate(ship_total, goods, goods_total, q, mode)
    ins = _allocate(ins_total, goods, goods_total, q, mode)
    cif = rules.valuation == "CIF"
    cvs = [g + s + i for g, s, i in zip(goods, ship, ins, strict=True)] if cif else list(goods)
    cv_total = sum(cvs, ZERO)

    thresholds = cons.apply_thresholds(view, req, goods_total, cv_total, convert)
    flat, carriers = cons.flat_duty_lines(view, items, goods_total, cv_total, convert)
    regime = cons.apply_quota(view.quota, req, cv_total, allowance_used, convert)
    lane = cons.find_lane(
        book.lanes_for(req.origin, req.destination, req.date), req, cv_total, convert
    )

    pricer = LinePricer(rules, view, req, q, mode, convert, thresholds, flat, regime, lane)
    lines = [
        pricer.price(i, item, goods[i], ship[i], ins[i], cvs[i], carriers[i])
        for i, item in enumerate(items)
    ]
    minimums = payers.apply_minimums(view, lines, regime, convert)
    consignment_charges = [
        Charge(
            "fee",
            fee.name,
            fee.ref.id,
            convert(fee.amount, fee.currency).quantize(q, mode),
            fee.ref.source_title,
            fee.ref.source_url,
            fee.ref.verified,
        )
        for fee in view.fees
    ]
    border_due = sum(
        (
            c.amount
            for c in [*(c for x in lines for c in x.charges), *consignment_charges]
            if c.collected_at == "border"
        ),
        ZERO,
    )
    fee, fee_warning = payers.collection_fee(
        view, req, border_due, convert, lambda v: v.quantize(q, mode)
    )
    if fee is not None:
        consignment_charges.append(fee)
    payers.assign_payers(
        [*(c for x in lines for c in x.charges), *consignment_charges], req.incoterm
    )
    totals = _totals(ccy, goods_total, ship_total, ins_total, lines, consignment_charges)
    buyer_ccy = req.buyer_currency or ccy
    buyer_fx = book.fx.rate(ccy, buyer_ccy, req.date, field="buyer_currency")
    buyer_totals = totals if buyer_ccy == ccy else _convert_totals(totals, buyer_ccy, buyer_fx.rate)

    unverified = set(pricer.unverified)
    unverified.update(c.rule_id for c in consignment_charges if not c.verified)
    unverified.update(rule_id for rule_id, verified in minimums if not verified)
    if not fx.verified or not buyer_fx.verified:
        unverified.add(f"fx:{book.fx.version}")
    estimates = [line for line in lines if line.estimate]
    warnings = list(pricer.warnings) + ([fee_warning] if fee_warning else [])
    admissible = not any(r.kind == "prohibited" for line in lines for r in line.restrictions)
    return Quote(
        request=req,
        currency=ccy,
        valuation=rules.valuation,
        valuation_rule_id=rules.valuation_ref.id,
        lines=lines,
        consignment_charges=consignment_charges,
        totals=totals,
        buyer_totals=buyer_totals,
        fx=fx,
        buyer_fx=buyer_fx,
        regime=regime,
        lane=LaneOutcome(
            lane.ref.id, lane.fast_track, lane.duty_rate, lane.ref.source_title, lane.ref.verified
        )
        if lane
        else None,
        payer_of_border_charges="seller" if req.incoterm == "DDP" else "buyer",
        rule_book_version=f"{rules.code}@{rules.version}",
        verified=not unverified,
        unverified_rule_ids=sorted(unverified),
        contains_estimates=bool(estimates),
        admissible=admissible,
        warnings=warnings,
    )


def _allocate(
    total: Decimal, weights: list[Decimal], weight_sum: Decimal, q: Decimal, mode: str
) -> list[Decimal]:
    """Split ``total`` pro rata to ``weights``; the last line takes the rounding remainder."""
    n = len(weights)
    if not total:
        return [ZERO] * n
    if n == 1:
        return [total]
    if weight_sum:
        parts = [(total * w / weight_sum).quantize(q, mode) for w in weights[:-1]]
    else:
        parts = [(total / n).quantize(q, mode)] * (n - 1)
    parts.append(total - sum(parts, ZERO))
    return parts


def _totals(
    ccy: str, goods: Decimal, ship: Decimal, ins: Decimal, lines: list, fees: list[Charge]
) -> Totals:
    sums = {"duty": ZERO, "excise": ZERO, "vat": ZERO, "levy": ZERO, "fee": ZERO}
    at_sale = buyer = ZERO
    for charge in [c for line in lines for c in line.charges] + fees:
        sums[charge.kind] += charge.amount
        if charge.collected_at == "sale":
            at_sale += charge.amount
        if charge.payer == "buyer":
            buyer += charge.amount
    charges = sum(sums.values(), ZERO)
    return Totals(
        currency=ccy,
        goods=goods,
        shipping=ship,
        insurance=ins,
        duty=sums["duty"],
        excise=sums["excise"],
        vat=sums["vat"],
        levies=sums["levy"],
        fees=sums["fee"],
        charges=charges,
        landed=goods + ship + ins + charges,
        collected_at_sale=at_sale,
        collected_at_border=charges - at_sale,
        seller_pays=charges - buyer,
        buyer_pays_at_delivery=buyer,
    )


def _convert_totals(t: Totals, ccy: str, rate: Decimal) -> Totals:
    mq = minor_quantum(ccy)

    def c(v: Decimal) -> Decimal:
        return (v * rate).quantize(mq, ROUND_HALF_UP)

    return Totals(
        currency=ccy,
        goods=c(t.goods),
        shipping=c(t.shipping),
        insurance=c(t.insurance),
        duty=c(t.duty),
        excise=c(t.excise),
        vat=c(t.vat),
        levies=c(t.levies),
        fees=c(t.fees),
        charges=c(t.charges),
        landed=c(t.landed),
        collected_at_sale=c(t.collected_at_sale),
        collected_at_border=c(t.collected_at_border),
        seller_pays=c(t.seller_pays),
        buyer_pays_at_delivery=c(t.buyer_pays_at_delivery),
    )

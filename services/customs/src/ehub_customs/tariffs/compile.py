"""Turn validated file models into the engine's :mod:`~ehub_customs.tariffs.rulebook` types.

Group defaults (source, dates, verified) are applied to each entry here, so every
compiled rule carries its own source and date range. Semantic errors are raised as
``error_cls(file, line, reason)`` (the loader's RuleFileError).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from ehub_customs.tariffs import models as m
from ehub_customs.tariffs.rulebook import (
    CollectionFeeRule,
    CountryRules,
    DutyAdjustmentRule,
    DutyRule,
    ExciseRule,
    FeeRule,
    FlatDutyRule,
    LaneRule,
    LevyRule,
    MinimumRule,
    QuotaRule,
    RestrictionRule,
    RuleRef,
    SpecificRate,
    ThresholdRule,
    VatRule,
)

if TYPE_CHECKING:
    from ehub_customs.tariffs.loader import ParsedFile

ErrorFactory = Callable[[str, int, str], Exception]


class _Refs:
    """Builds RuleRefs, inheriting from a parent (group) and checking ids are unique."""

    def __init__(self, parsed: ParsedFile, err: ErrorFactory, verified_default: bool) -> None:
        self.parsed = parsed
        self.err = err
        self.verified_default = verified_default
        self.seen: dict[str, int] = {}

    def make(
        self, rule_id: str, rule: m.Dated, path: tuple[Any, ...], parent: m.Dated | None = None
    ) -> RuleRef:
        line = self.parsed.line_of(path)
        if rule_id in self.seen:
            raise self.err(
                self.parsed.name,
                line,
                f"duplicate rule id {rule_id!r} (first at line {self.seen[rule_id]})",
            )
        self.seen[rule_id] = line
        source = rule.source or (parent.source if parent else None)
        if source is None:
            raise self.err(self.parsed.name, line, f"rule {rule_id!r} has no source")
        verified = rule.verified
        if verified is None and parent is not None:
            verified = parent.verified
        if verified is None:
            verified = self.verified_default
        eff_from = rule.effective_from or (parent.effective_from if parent else None)
        eff_to = rule.effective_to or (parent.effective_to if parent else None)
        if eff_from is None:
            raise self.err(self.parsed.name, line, f"rule {rule_id!r} has no effective_from")
        if eff_to is not None and eff_to < eff_from:
            raise self.err(
                self.parsed.name, line, f"rule {rule_id!r}: effective_to before effective_from"
            )
        return RuleRef(rule_id, source.title, source.url, bool(verified), eff_from, eff_to)


def _specific(s: m.Specific | None) -> SpecificRate | None:
    return SpecificRate(s.amount, s.currency, s.per) if s else None


def compile_country(model: m.CountryFile, parsed: ParsedFile, err: ErrorFactory) -> CountryRules:
    cc = model.country.lower()
    refs = _Refs(parsed, err, model.verified_default)
    duties: list[DutyRule] = []
    for gi, group in enumerate(model.duty):
        for ri, rate in enumerate(group.rates):
            path = ("duty", gi, "rates", ri)
            ref = refs.make(f"{cc}.duty.{group.group}.{rate.hs}", rate, path, group)
            rule = DutyRule(
                ref, rate.hs, rate.desc, rate.ad_valorem, _specific(rate.specific), rate.combine
            )
            for other in duties:
                if other.hs == rate.hs and _overlap(other.ref, ref):
                    raise err(
                        parsed.name,
                        parsed.line_of(path),
                        f"HS {rate.hs} already has rule {other.ref.id} in force on the same dates",
                    )
            duties.append(rule)
    estimates = []
    for i, est in enumerate(model.chapter_estimates):
        rule_id = f"{cc}.estimate.{est.chapter or 'default'}"
        if rule_id in refs.seen:
            rule_id = f"{rule_id}@{est.effective_from}"
        ref = refs.make(rule_id, est, ("chapter_estimates", i))
        desc = f"chapter {est.chapter} estimate" if est.chapter else "country default estimate"
        estimates.append(DutyRule(ref, est.chapter or "", desc, est.ad_valorem, None, "sum", True))
    vat_rules = []
    if model.vat is not None:
        for i, v in enumerate(model.vat.rates):
            vat_rules.append(VatRule(refs.make(v.id, v, ("vat", "rates", i)), v.rate, tuple(v.hs)))
    return CountryRules(
        code=model.country,
        name=model.name,
        version=model.version,
        currency=model.currency,
        valuation=model.valuation,
        valuation_ref=RuleRef(
            f"{cc}.valuation.{model.valuation.lower()}",
            model.valuation_source.title,
            model.valuation_source.url,
            True,
            None,
            None,
        ),
        quantum=model.rounding.quantum,
        rounding=model.rounding.mode,
        vat_name=model.vat.name if model.vat else "",
        vat_base=tuple(model.vat.base) if model.vat else (),
        file=parsed.name,
        duties=duties,
        chapter_estimates=estimates,
        adjustments=[
            DutyAdjustmentRule(
                refs.make(a.id, a, ("duty_adjustments", i)),
                a.kind,
                frozenset(a.origins),
                tuple(a.hs),
                tuple(a.exclude_hs),
                a.ad_valorem,
            )
            for i, a in enumerate(model.duty_adjustments)
        ],
        vat=vat_rules,
        excise=[
            ExciseRule(
                refs.make(x.id, x, ("excise", i)),
                x.name,
                tuple(x.hs),
                x.ad_valorem,
                _specific(x.specific),
                tuple(x.base),
                x.inclusive,
                x.min_value_per_ml,
                x.min_unit_value,
            )
            for i, x in enumerate(model.excise)
        ],
        levies=[
            LevyRule(
                refs.make(x.id, x, ("levies", i)),
                x.name,
                x.rate,
                tuple(x.base),
                tuple(x.hs),
                frozenset(x.exempt_origins),
                x.in_vat_base,
            )
            for i, x in enumerate(model.levies)
        ],
        fees=[
            FeeRule(refs.make(x.id, x, ("fees", i)), x.name, x.amount, x.currency)
            for i, x in enumerate(model.fees)
        ],
        minimums=[
            MinimumRule(
                refs.make(x.id, x, ("minimums", i)),
                frozenset(x.applies_to),
                x.max_amount,
                x.currency,
                x.inclusive,
                x.not_in_quota_regime,
            )
            for i, x in enumerate(model.minimums)
        ],
        collection_fees=[
            CollectionFeeRule(
                refs.make(x.id, x, ("collection_fees", i)),
                x.name,
                frozenset(x.transport),
                x.amount,
                x.rate,
                x.minimum,
                x.currency,
            )
            for i, x in enumerate(model.collection_fees)
        ],
        thresholds=[
            ThresholdRule(
                refs.make(t.id, t, ("thresholds", i)),
                t.applies_to,
                t.max_value,
                t.currency,
                t.basis,
                t.effect,
                t.sale_tax_rate,
                tuple(t.sale_tax_base),
                frozenset(t.origins),
                frozenset(t.transport),
                tuple(t.exclude_hs),
            )
            for i, t in enumerate(model.thresholds)
        ],
        flat_duties=[
            FlatDutyRule(
                refs.make(f.id, f, ("flat_duties", i)),
                f.amount,
                f.currency,
                f.subheading_digits,
                f.max_consignment_value,
                f.basis,
            )
            for i, f in enumerate(model.flat_duties)
        ],
        quotas=[
            QuotaRule(
                refs.make(q.id, q, ("quota_regimes", i)),
                q.name,
                q.per_transaction_limit,
                q.annual_limit,
                q.currency,
                q.duty_rate,
                q.tax_factor,
                q.single_item_exception,
                tuple(q.exclude_hs),
            )
            for i, q in enumerate(model.quota_regimes)
        ],
        restrictions=[
            RestrictionRule(refs.make(r.id, r, ("restrictions", i)), r.kind, tuple(r.hs), r.reason)
            for i, r in enumerate(model.restrictions)
        ],
    )


def compile_lanes(
    model: m.LaneFile, parsed: ParsedFile, err: ErrorFactory, known: set[str]
) -> list[LaneRule]:
    refs = _Refs(parsed, err, False)
    out = []
    for i, lane in enumerate(model.lanes):
        path = ("lanes", i)
        if lane.destination not in known:
            raise err(
                parsed.name,
                parsed.line_of((*path, "destination")),
                f"lane {lane.id}: no rule book for destination {lane.destination}",
            )
        out.append(
            LaneRule(
                refs.make(lane.id, lane, path),
                lane.origin,
                lane.destination,
                tuple(lane.hs),
                lane.duty_rate,
                lane.fast_track,
                lane.requires_verified_sme,
                lane.max_consignment_value,
                lane.currency,
            )
        )
    return out


def _overlap(a: RuleRef, b: RuleRef) -> bool:
    lo_a = a.effective_from or date.min
    hi_a = a.effective_to or date.max
    lo_b = b.effective_from or date.min
    hi_b = b.effective_to or date.max
    return lo_a <= hi_b and lo_b <= hi_a

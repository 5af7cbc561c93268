"""Price one line: duty -> excise -> levies -> VAT, each charge citing its rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ehub_core.errors import UnprocessableError, field_error
from ehub_customs.landed_cost.consignment import Convert, ThresholdEffects
from ehub_customs.landed_cost.quote import (
    ZERO,
    Charge,
    Item,
    LineQuote,
    QuoteRequest,
    RegimeOutcome,
    Restriction,
)
from ehub_customs.tariffs.rulebook import (
    CountryRules,
    CountryView,
    FlatDutyRule,
    LaneRule,
    RuleRef,
    SpecificRate,
    matches,
)

ONE = Decimal(1)
LITRES_PER_HL = Decimal(100)
ML_PER_L = Decimal(1000)


class LinePricer:
    """Holds the consignment decisions and prices each line against them."""

    def __init__(
        self,
        rules: CountryRules,
        view: CountryView,
        req: QuoteRequest,
        q: Decimal,
        mode: str,
        convert: Convert,
        thresholds: ThresholdEffects,
        flat: FlatDutyRule | None,
        regime: RegimeOutcome | None,
        lane: LaneRule | None,
    ) -> None:
        self.rules = rules
        self.view = view
        self.req = req
        self.q = q
        self.mode = mode
        self.convert = convert
        self.th = thresholds
        self.flat = flat
        self.regime = regime
        self.within = regime is not None and regime.mode == "within_limits"
        self.factor = view.quota.tax_factor if (self.within and view.quota) else ONE
        self.lane = lane
        self.unverified: set[str] = set()
        self.warnings: list[str] = []

    def _r(self, value: Decimal) -> Decimal:
        return value.quantize(self.q, self.mode)

    def _charge(self, kind: str, name: str, ref: RuleRef, amount: Decimal, **kw: Any) -> Charge:
        if not ref.verified:
            self.unverified.add(ref.id)
        return Charge(
            kind, name, ref.id, amount, ref.source_title, ref.source_url, ref.verified, **kw
        )

    def price(
        self,
        i: int,
        item: Item,
        goods: Decimal,
        ship: Decimal,
        ins: Decimal,
        cv: Decimal,
        carries_flat: bool,
    ) -> LineQuote:
        view, hs = self.view, item.hs
        charges: list[Charge] = []
        rule = view.duty_for(hs)
        if rule.estimate:
            self.warnings.append(
                f"items[{i}]: HS {hs} is not in the {view.code} table; duty is the {rule.desc} "
                f"({rule.ref.id}), flagged as an estimate"
            )
        duty = self._duty(i, item, cv, rule, carries_flat, charges)
        tax_exempt = self.th.tax_exempt[i]
        excise_full = ZERO
        for x in view.excise:
            if not hs.startswith(x.hs) or tax_exempt is not None:
                continue
            if not self._excise_applies(x.min_value_per_ml, x.min_unit_value, item, cv):
                continue
            base = self._base(x.base, cv, goods, ship, ins, duty, ZERO)
            spec = self._specific(i, x.specific, item) if x.specific is not None else ZERO
            full = spec
            if x.ad_valorem is not None:
                if x.inclusive:
                    # China: composite price = (value + duty + specific) / (1 - rate).
                    full += (base + spec) * x.ad_valorem / (ONE - x.ad_valorem)
                else:
                    full += base * x.ad_valorem
            full = self._r(full)
            excise_full += full
            charges.append(
                self._charge(
                    "excise",
                    x.name,
                    x.ref,
                    self._r(full * self.factor),
                    rate=x.ad_valorem,
                    base=base,
                    **self._regime_kw(),
                )
            )
        levy_in_vat = ZERO
        if tax_exempt is None:
            for lv in view.levies:
                if item.country_of_origin in lv.exempt_origins or not matches(hs, lv.hs):
                    continue
                base = self._base(lv.base, cv, goods, ship, ins, duty, excise_full)
                amount = self._r(base * lv.rate)
                if lv.in_vat_base:
                    levy_in_vat += amount
                charges.append(
                    self._charge("levy", lv.name, lv.ref, amount, rate=lv.rate, base=base)
                )
        self._vat(i, item, cv, goods, ship, ins, duty, excise_full + levy_in_vat, charges)
        restrictions = [
            Restriction(r.ref.id, r.kind, r.reason, r.ref.source_title, r.ref.verified)
            for r in view.restrictions
            if hs.startswith(r.hs)
        ]
        return LineQuote(
            i,
            hs,
            goods,
            ship,
            ins,
            cv,
            charges,
            next((c.rule_id for c in charges if c.kind == "duty"), rule.ref.id),
            rule.estimate,
            restrictions,
        )

    def _regime_kw(self) -> dict[str, Any]:
        if self.within and self.regime is not None:
            return {
                "related_rule_ids": (self.regime.rule_id,),
                "note": "cross-border retail: 70 % of the statutory amount",
            }
        return {}

    def _duty(
        self,
        i: int,
        item: Item,
        cv: Decimal,
        rule,
        carries_flat: bool,
        charges: list[Charge],
    ) -> Decimal:
        hs = item.hs
        view = self.view
        if self.within and view.quota is not None:
            charges.append(
                self._charge(
                    "duty",
                    "Customs duty",
                    view.quota.ref,
                    ZERO,
                    rate=view.quota.duty_rate,
                    base=cv,
                    note="cross-border retail within limits: 0 % duty",
                )
            )
            return ZERO
        if self.flat is not None:
            amount = (
                self._r(self.convert(self.flat.amount, self.flat.currency))
                if carries_flat
                else ZERO
            )
            if carries_flat:
                charges.append(
                    self._charge(
                        "duty",
                        "Customs duty (flat, low-value consignment)",
                        self.flat.ref,
                        amount,
                        note=f"per distinct subheading {hs[: self.flat.subheading_digits]}",
                    )
                )
            return amount
        exempt = self.th.duty_exempt[i]
        if exempt is not None:
            charges.append(
                self._charge(
                    "duty",
                    "Customs duty",
                    exempt.ref,
                    ZERO,
                    base=cv,
                    note="relieved: consignment within the duty threshold",
                )
            )
            return ZERO
        amount = self._rate_amount(i, rule.ad_valorem, rule.specific, rule.combine, item, cv)
        ref, adv = rule.ref, rule.ad_valorem
        for adj in view.adjustments:
            if (
                adj.kind == "preference"
                and item.country_of_origin in adj.origins
                and matches(hs, adj.hs)
                and not (adj.exclude_hs and hs.startswith(adj.exclude_hs))
            ):
                pref = cv * adj.ad_valorem
                if pref < amount:
                    amount, ref, adv = pref, adj.ref, adj.ad_valorem
        lane = self.lane
        if lane is not None and lane.duty_rate is not None and matches(hs, lane.hs):
            lane_amount = cv * lane.duty_rate
            if lane_amount < amount:
                amount, ref, adv = lane_amount, lane.ref, lane.duty_rate
        total = self._r(amount)
        charges.append(
            self._charge(
                "duty",
                "Customs duty",
                ref,
                total,
                rate=adv,
                base=cv,
                estimate=rule.estimate and ref is rule.ref,
            )
        )
        for adj in view.adjustments:
            if (
                adj.kind == "additional"
                and item.country_of_origin in adj.origins
                and matches(hs, adj.hs)
                and not (adj.exclude_hs and hs.startswith(adj.exclude_hs))
            ):
                extra = self._r(cv * adj.ad_valorem)
                total += extra
                charges.append(
                    self._charge(
                        "duty", "Additional duty", adj.ref, extra, rate=adj.ad_valorem, base=cv
                    )
                )
        return total

    def _rate_amount(
        self,
        i: int,
        adv: Decimal | None,
        spec: SpecificRate | None,
        combine: str,
        item: Item,
        cv: Decimal,
    ) -> Decimal:
        parts = []
        if adv is not None:
            parts.append(cv * adv)
        if spec is not None:
            parts.append(self._specific(i, spec, item))
        if len(parts) == 1:
            return parts[0]
        if combine == "max":
            return max(parts)
        if combine == "min":
            return min(parts)
        return parts[0] + parts[1]

    def _specific(self, i: int, spec: SpecificRate, item: Item) -> Decimal:
        per = spec.per
        if per in ("unit", "pair", "pack20"):
            qty = Decimal(item.quantity)
        elif per == "kg":
            qty = self._need(i, item.unit_weight_kg, "unit_weight_kg") * item.quantity
        else:
            litres = self._need(i, item.unit_volume_l, "unit_volume_l") * item.quantity
            if per == "hl":
                qty = litres / LITRES_PER_HL
            elif per == "lpa":
                qty = litres * self._need(i, item.abv, "abv")
            else:
                qty = litres
        return self.convert(spec.amount, spec.currency) * qty

    @staticmethod
    def _need(i: int, value: Decimal | None, name: str) -> Decimal:
        if value is None:
            raise UnprocessableError(
                f"items[{i}] needs {name}: a specific rate applies to its HS code",
                errors=[field_error(["items", i, name], "required by a specific rate")],
            )
        return value

    @staticmethod
    def _excise_applies(
        min_per_ml: Decimal | None, min_unit: Decimal | None, item: Item, cv: Decimal
    ) -> bool:
        unit_value = cv / item.quantity
        if min_per_ml is not None and item.unit_volume_l:
            return unit_value / (item.unit_volume_l * ML_PER_L) >= min_per_ml
        if min_unit is not None:
            return unit_value >= min_unit
        return True

    @staticmethod
    def _base(
        components: tuple[str, ...],
        cv: Decimal,
        goods: Decimal,
        ship: Decimal,
        ins: Decimal,
        duty: Decimal,
        excise: Decimal,
    ) -> Decimal:
        total = ZERO
        for c in components:
            if c == "customs_value":
                total += cv
            elif c == "goods":
                total += goods
            elif c == "shipping":
                total += ship
            elif c == "insurance":
                total += ins
            elif c == "duty":
                total += duty
            elif c == "excise":
                total += excise
        return total

    def _vat(
        self,
        i: int,
        item: Item,
        cv: Decimal,
        goods: Decimal,
        ship: Decimal,
        ins: Decimal,
        duty: Decimal,
        excise: Decimal,
        charges: list[Charge],
    ) -> None:
        rules, hs = self.rules, item.hs
        vat = self.view.vat_for(hs)
        if self.th.tax_exempt[i] is not None or (vat is None and self.th.sale_tax[i] is None):
            return
        sale = self.th.sale_tax[i]
        if sale is not None:
            rate = sale.sale_tax_rate if sale.sale_tax_rate is not None else vat.rate  # type: ignore[union-attr]
            ref = sale.ref if sale.sale_tax_rate is not None or vat is None else vat.ref
            related = (sale.ref.id,) if ref is not sale.ref else ()
            base = self._base(sale.sale_tax_base, cv, goods, ship, ins, duty, excise)
            charges.append(
                self._charge(
                    "vat",
                    rules.vat_name or "Sales tax",
                    ref,
                    self._r(base * rate),
                    rate=rate,
                    base=base,
                    collected_at="sale",
                    related_rule_ids=related,
                    note="collected by the seller at the point of sale",
                )
            )
            if sale.ref.id in related and not sale.ref.verified:
                self.unverified.add(sale.ref.id)
            return
        assert vat is not None
        base = self._base(rules.vat_base, cv, goods, ship, ins, duty, excise)
        charges.append(
            self._charge(
                "vat",
                rules.vat_name,
                vat.ref,
                self._r(base * vat.rate * self.factor),
                rate=vat.rate,
                base=base,
                **self._regime_kw(),
            )
        )

"""``GET /v1/rules/{country}``: the rules in force on a date, each with its source."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from ehub_core.errors import NotFoundError
from ehub_core.limits import IsoDate
from ehub_core.partners import GuardedRoute
from ehub_customs.api.deps import QuotesReader, RuleBookDep
from ehub_customs.tariffs.rulebook import RuleRef

router = APIRouter(prefix="/v1", tags=["rules"], route_class=GuardedRoute)


def _ref(ref: RuleRef) -> dict[str, Any]:
    return {
        "id": ref.id,
        "source": {"title": ref.source_title, "url": ref.source_url},
        "verified": ref.verified,
        "effective_from": ref.effective_from.isoformat() if ref.effective_from else None,
        "effective_to": ref.effective_to.isoformat() if ref.effective_to else None,
    }


def spec(s: Any) -> dict[str, str] | None:
    return None if s is None else {"amount": str(s.amount), "currency": s.currency, "per": s.per}


def _d(v: Any) -> str | None:
    return None if v is None else str(v)


@router.get("/rules/{country}", summary="Rules in force on a date, with sources")
async def read_rules(
    country: Annotated[str, Path(pattern=r"^[A-Z]{2}$")],
    book: RuleBookDep,
    _caller: QuotesReader,
    date: Annotated[IsoDate | None, Query(description="YYYY-MM-DD; default: today")] = None,
) -> dict[str, Any]:
    """The destination's duty, tax, threshold and restriction rules in force on `date` (today
    by default), each with its legal source."""
    rules = book.countries.get(country)
    if rules is None:
        raise NotFoundError(f"No rule book for {country}")
    on = date or datetime.now(UTC).date()
    v = rules.view(on)
    duties = [d for _, d in v.duties.items()]
    return {
        "country": rules.code,
        "name": rules.name,
        "version": rules.version,
        "date": on.isoformat(),
        "currency": rules.currency,
        "valuation": rules.valuation,
        "rounding": {"quantum": str(rules.quantum), "mode": rules.rounding},
        "duty": [
            {
                **_ref(d.ref),
                "hs": d.hs,
                "desc": d.desc,
                "ad_valorem": _d(d.ad_valorem),
                "specific": spec(d.specific),
                "combine": d.combine,
            }
            for d in duties
        ],
        "chapter_estimates": [
            {**_ref(e.ref), "chapter": e.hs or None, "ad_valorem": _d(e.ad_valorem)}
            for e in [v.default_estimate, *v.chapter_estimates.values()]
        ],
        "duty_adjustments": [
            {
                **_ref(a.ref),
                "kind": a.kind,
                "origins": sorted(a.origins),
                "hs": list(a.hs),
                "ad_valorem": _d(a.ad_valorem),
            }
            for a in v.adjustments
        ],
        "vat": {
            "name": rules.vat_name,
            "base": list(rules.vat_base),
            "rates": [
                {**_ref(r.ref), "rate": _d(r.rate), "hs": list(r.hs)}
                for r in ([v.vat_default] if v.vat_default else [])
                + list(dict.fromkeys(r for _, r in v.vat_index.items()))
            ],
        },
        "excise": [
            {
                **_ref(x.ref),
                "name": x.name,
                "hs": list(x.hs),
                "ad_valorem": _d(x.ad_valorem),
                "specific": spec(x.specific),
                "base": list(x.base),
                "inclusive": x.inclusive,
            }
            for x in v.excise
        ],
        "levies": [
            {
                **_ref(x.ref),
                "name": x.name,
                "rate": _d(x.rate),
                "base": list(x.base),
                "exempt_origins": sorted(x.exempt_origins),
            }
            for x in v.levies
        ],
        "fees": [
            {**_ref(x.ref), "name": x.name, "amount": _d(x.amount), "currency": x.currency}
            for x in v.fees
        ],
        "thresholds": [
            {
                **_ref(t.ref),
                "applies_to": t.applies_to,
                "max_value": _d(t.max_value),
                "currency": t.currency,
                "basis": t.basis,
                "scope": "consignment",
                "effect": t.effect,
                "origins": sorted(t.origins),
                "transport": sorted(t.transport),
            }
            for t in v.thresholds
        ],
        "flat_duties": [
            {
                **_ref(f.ref),
                "amount": _d(f.amount),
                "currency": f.currency,
                "per": "distinct_subheading",
                "subheading_digits": f.subheading_digits,
                "max_consignment_value": _d(f.max_consignment_value),
            }
            for f in v.flat_duties
        ],
        "quota_regimes": []
        if v.quota is None
        else [
            {
                **_ref(v.quota.ref),
                "name": v.quota.name,
                "per_transaction_limit": _d(v.quota.per_transaction_limit),
                "annual_limit": _d(v.quota.annual_limit),
                "currency": v.quota.currency,
                "duty_rate": _d(v.quota.duty_rate),
                "tax_factor": _d(v.quota.tax_factor),
                "scope": "per_person_year",
            }
        ],
        "restrictions": [
            {**_ref(r.ref), "kind": r.kind, "hs": list(r.hs), "reason": r.reason}
            for r in v.restrictions
        ],
        "lanes": [
            {
                **_ref(lane.ref),
                "origin": lane.origin,
                "duty_rate": _d(lane.duty_rate),
                "fast_track": lane.fast_track,
                "hs": list(lane.hs),
                "max_consignment_value": _d(lane.max_consignment_value),
                "currency": lane.currency,
            }
            for lane in book.lanes
            if lane.destination == country and lane.ref.in_force(on)
        ],
    }

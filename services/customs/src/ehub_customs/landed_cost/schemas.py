"""API schemas of ``POST /v1/landed-cost`` and their conversion to and from domain types.

Field-level rules live here as pydantic constraints so a bad field comes back as a
422 problem+json naming it. Responses are built as plain dicts (Decimals as strings)
because the endpoint is benchmarked; :class:`LandedCostRead` is their exact shape (a
test validates real answers against it, extra keys forbidden).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ehub_core.countries import CountryCode
from ehub_core.limits import IsoDate, PlainText
from ehub_core.money import CurrencyCode
from ehub_customs.fx import FxQuote
from ehub_customs.landed_cost.answers import ChargeRead, LandedCostRead
from ehub_customs.landed_cost.quote import Charge, Item, LineQuote, Quote, QuoteRequest, Totals

__all__ = ["ChargeRead", "ItemCreate", "LandedCostCreate", "LandedCostRead", "quote_dict"]

Money = Decimal
# Bounds a quote computes with: finite, and no more digits than the arithmetic needs
# (money: 18 digits with 6 decimal places, as ehub_core.money.Amount).
MAX_UNIT_WEIGHT_KG = 100_000
MAX_UNIT_VOLUME_L = 1_000_000


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hs_code: str = Field(
        description="HS code: 6 digits, or a national 8/10-digit code", examples=["0306.32"]
    )
    description: PlainText = Field("", max_length=500)
    quantity: int = Field(gt=0, le=1_000_000)
    unit_value: Money = Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)
    unit_weight_kg: Decimal | None = Field(
        None,
        ge=0,
        le=MAX_UNIT_WEIGHT_KG,
        max_digits=15,
        decimal_places=9,
        allow_inf_nan=False,
    )
    unit_volume_l: Decimal | None = Field(
        None,
        ge=0,
        le=MAX_UNIT_VOLUME_L,
        max_digits=16,
        decimal_places=9,
        allow_inf_nan=False,
    )
    abv: Decimal | None = Field(
        None,
        ge=0,
        le=1,
        max_digits=10,
        decimal_places=9,
        allow_inf_nan=False,
        description="alcohol by volume as a fraction",
    )
    country_of_origin: CountryCode

    @field_validator("hs_code")
    @classmethod
    def _hs_shape(cls, value: str) -> str:
        digits = value.replace(".", "").replace(" ", "")
        if not digits.isdigit() or len(digits) not in (6, 8, 10):
            raise ValueError("HS code must be 6, 8 or 10 digits (dots allowed), e.g. '0306.32'")
        return digits


class LandedCostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    origin: CountryCode = Field(description="the country the goods ship from")
    destination: CountryCode = Field(description="the importing country; not the origin")
    date: IsoDate
    currency: CurrencyCode = Field(description="currency of unit values, shipping, insurance")
    buyer_currency: CurrencyCode | None = None
    items: list[ItemCreate] = Field(min_length=1, max_length=200)
    shipping: Money = Field(Decimal(0), ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)
    shipping_currency: CurrencyCode | None = Field(
        None,
        description="currency of `shipping` when it is not `currency` (carriers often price "
        "in another); converted at the rule book's rate of the quote date",
    )
    insurance: Money = Field(Decimal(0), ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)
    buyer_id: PlainText | None = Field(None, min_length=1, max_length=100)
    seller_sme_verified: bool = False
    incoterm: Literal["DDP", "DAP"] = "DDP"
    transport: Literal["courier", "postal", "freight"] = "courier"
    target_total: Money | None = Field(
        None,
        gt=0,
        max_digits=18,
        decimal_places=6,
        allow_inf_nan=False,
        description="reverse mode: the buyer price including duty and taxes",
    )
    target_currency: CurrencyCode | None = None

    def to_domain(self) -> QuoteRequest:
        return QuoteRequest(
            origin=self.origin,
            destination=self.destination,
            date=self.date,
            currency=self.currency,
            items=tuple(
                Item(
                    hs=i.hs_code,
                    quantity=i.quantity,
                    unit_value=i.unit_value,
                    country_of_origin=i.country_of_origin,
                    description=i.description,
                    unit_weight_kg=i.unit_weight_kg,
                    unit_volume_l=i.unit_volume_l,
                    abv=i.abv,
                )
                for i in self.items
            ),
            shipping=self.shipping,
            insurance=self.insurance,
            buyer_id=self.buyer_id,
            seller_sme_verified=self.seller_sme_verified,
            incoterm=self.incoterm,
            transport=self.transport,
            buyer_currency=self.buyer_currency,
        )


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def charge_dict(c: Charge) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "name": c.name,
        "rule_id": c.rule_id,
        "amount": str(c.amount),
        "rate": _s(c.rate),
        "base": _s(c.base),
        "collected_at": c.collected_at,
        "source": {"title": c.source_title, "url": c.source_url},
        "verified": c.verified,
        "estimate": c.estimate,
        "related_rule_ids": list(c.related_rule_ids),
        "note": c.note,
        "payer": c.payer,
    }


def _line(line: LineQuote) -> dict[str, Any]:
    return {
        "index": line.index,
        "hs_code": line.hs,
        "goods_value": str(line.goods_value),
        "shipping": str(line.shipping),
        "insurance": str(line.insurance),
        "customs_value": str(line.customs_value),
        "duty_rule_id": line.duty_rule_id,
        "estimate": line.estimate,
        "charges": [charge_dict(c) for c in line.charges],
        "charges_total": str(line.charges_total),
        "restrictions": [
            {
                "rule_id": r.rule_id,
                "kind": r.kind,
                "reason": r.reason,
                "source": {"title": r.source_title},
                "verified": r.verified,
            }
            for r in line.restrictions
        ],
    }


def _totals(t: Totals) -> dict[str, str]:
    return {
        "currency": t.currency,
        "goods": str(t.goods),
        "shipping": str(t.shipping),
        "insurance": str(t.insurance),
        "duty": str(t.duty),
        "excise": str(t.excise),
        "vat": str(t.vat),
        "levies": str(t.levies),
        "fees": str(t.fees),
        "charges": str(t.charges),
        "landed": str(t.landed),
        "collected_at_sale": str(t.collected_at_sale),
        "collected_at_border": str(t.collected_at_border),
        "seller_pays": str(t.seller_pays),
        "buyer_pays_at_delivery": str(t.buyer_pays_at_delivery),
    }


def _fx(fx: FxQuote) -> dict[str, Any]:
    return {
        "from": fx.from_currency,
        "to": fx.to_currency,
        "rate": str(fx.rate),
        "date": fx.rate_date.isoformat(),
        "source": fx.source,
        "verified": fx.verified,
    }


def quote_dict(q: Quote) -> dict[str, Any]:
    r = q.regime
    return {
        "mode": "forward",
        "destination": q.request.destination,
        "date": q.request.date.isoformat(),
        "currency": q.currency,
        "valuation": {"basis": q.valuation, "rule_id": q.valuation_rule_id},
        "rule_book_version": q.rule_book_version,
        "lines": [_line(line) for line in q.lines],
        "consignment_charges": [charge_dict(c) for c in q.consignment_charges],
        "totals": _totals(q.totals),
        "buyer_totals": _totals(q.buyer_totals),
        "fx": {"to_destination": _fx(q.fx), "to_buyer": _fx(q.buyer_fx)},
        "regime": None
        if r is None
        else {
            "rule_id": r.rule_id,
            "name": r.name,
            "mode": r.mode,
            "value": str(r.value),
            "allowance_used": str(r.allowance_used),
            "annual_limit": str(r.annual_limit),
            "per_transaction_limit": str(r.per_transaction_limit),
            "counts_toward_allowance": str(r.counts_toward_allowance),
            "reason": r.reason,
        },
        "lane": None
        if q.lane is None
        else {
            "rule_id": q.lane.rule_id,
            "fast_track": q.lane.fast_track,
            "duty_rate": _s(q.lane.duty_rate),
            "source": {"title": q.lane.source_title},
            "verified": q.lane.verified,
        },
        "fast_track": q.fast_track,
        "payer_of_border_charges": q.payer_of_border_charges,
        "verified": q.verified,
        "unverified_rule_ids": q.unverified_rule_ids,
        "contains_estimates": q.contains_estimates,
        "admissible": q.admissible,
        "warnings": q.warnings,
    }

"""Batch landed cost for the catalog's search: up to 200 products priced for one
destination, date and buyer currency in one call (``POST /operator/v1/landed-cost/batch``).

Each item is its own single-line consignment with no shipping. The destination's rules
(and the screening rules) are looked up once per batch; an item that cannot be priced
(malformed or unassigned HS code or origin, origin equal to the destination, no FX
rate, a specific duty needing a weight it lacks) is that item's ``ok: false`` with a
problem, never the batch's.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ehub_core.countries import CountryCode, country_code
from ehub_core.errors import PROBLEM_BASE, DomainError
from ehub_core.limits import IsoDate, PlainText
from ehub_core.money import CurrencyCode
from ehub_customs.landed_cost.engine import quote
from ehub_customs.landed_cost.quote import Item, QuoteRequest
from ehub_customs.landed_cost.service import require_cross_border
from ehub_customs.screening.data import ScreeningData
from ehub_customs.screening.files import GoodsRule
from ehub_customs.tariffs.rulebook import CountryRules, RuleBook

MAX_ITEMS = 200
# HS chapters 01-97 exist, except 77 (reserved for future use).
HS_CHAPTERS = frozenset(f"{c:02d}" for c in range(1, 98) if c != 77)


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: PlainText = Field(min_length=1, max_length=100, description="the caller's id, echoed")
    # Origin and HS code are checked per item, so one bad product fails only its quote.
    origin: str = Field(min_length=1, max_length=8, description="ISO 3166-1 alpha-2")
    hs_code: str = Field(min_length=1, max_length=16, examples=["030632"])
    unit_value: Decimal = Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False)
    value_currency: CurrencyCode
    unit_weight_kg: Decimal | None = Field(
        None, ge=0, le=100_000, max_digits=15, decimal_places=9, allow_inf_nan=False
    )
    quantity: int = Field(1, gt=0, le=1_000_000)
    seller_sme_verified: bool = Field(
        False, description="the seller is a verified SME (eWTP lanes require it)"
    )


class BatchCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "destination": "CN",
                    "currency": "CNY",
                    "date": "2026-12-02",
                    "items": [
                        {
                            "ref": "p_01JDEMOLOBSTER",
                            "origin": "CA",
                            "hs_code": "030632",
                            "unit_value": "40.00",
                            "value_currency": "CAD",
                            "unit_weight_kg": "0.8",
                            "quantity": 1,
                        }
                    ],
                }
            ]
        },
    )

    destination: CountryCode
    currency: CurrencyCode = Field(description="the buyer's currency every amount is in")
    date: IsoDate
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_ITEMS)


class Restriction(BaseModel):
    rule_id: str
    kind: Literal["prohibited", "restricted"]
    reason: str
    requires: str | None = Field(None, description="the document that lifts a restriction")


class ItemProblem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


class BatchQuote(BaseModel):
    """One item's answer: ``ok`` with amounts, or not ``ok`` with a ``problem``."""

    ref: str
    ok: bool
    goods: str | None = None
    shipping: str | None = None
    duty: str | None = Field(None, description="customs duty, additional duties included")
    tax: str | None = Field(None, description="VAT/GST, excise, levies and fees")
    total: str | None = Field(None, description="goods + shipping + duty + tax")
    estimate: bool | None = Field(None, description="the duty is a chapter estimate")
    lane: str | None = Field(None, description="the eWTP lane rule applied, if any")
    importable: bool | None = None
    restriction: Restriction | None = None
    problem: ItemProblem | None = None


class BatchRead(BaseModel):
    currency: str
    quotes: list[BatchQuote]


class _ItemError(DomainError):
    status = 422
    title = "Item not priced"

    def __init__(self, slug: str, title: str, detail: str) -> None:
        super().__init__(detail, title=title)
        self.type_slug = slug


def _check_hs(hs_code: str) -> str:
    digits = hs_code.replace(".", "").replace(" ", "")
    if not digits.isdigit() or len(digits) not in (6, 8, 10):
        raise _ItemError(
            "invalid-hs-code", "Invalid HS code", f"hs_code {hs_code!r}: 6, 8 or 10 digits"
        )
    if digits[:2] not in HS_CHAPTERS:
        raise _ItemError(
            "unknown-hs-code",
            "Unknown HS code",
            f"hs_code {hs_code!r}: chapter {digits[:2]} is not in the Harmonized System",
        )
    return digits


def _check_origin(origin: str) -> str:
    try:
        return country_code(origin)
    except ValueError as exc:
        raise _ItemError("unknown-country", "Unknown origin country", f"origin: {exc}") from None


def _screen(rules: list[GoodsRule], hs: str, origin: str) -> list[GoodsRule]:
    """Restricted/prohibited rules hit by HS prefix or origin (keyword-only rules need a
    description, which a batch item has not: the order's screening applies them)."""
    return [
        r
        for r in rules
        if r.match == "hs_or_keywords"
        and (any(hs.startswith(p) for p in r.hs) or origin in r.origins)
    ]


def _price(
    book: RuleBook,
    rules: CountryRules,
    goods_rules: list[GoodsRule],
    body: BatchCreate,
    item: BatchItem,
) -> dict[str, Any]:
    hs = _check_hs(item.hs_code)
    origin = _check_origin(item.origin)
    require_cross_border(origin, body.destination, field="origin")
    req = QuoteRequest(
        origin=origin,
        destination=body.destination,
        date=body.date,
        currency=item.value_currency,
        items=(
            Item(
                hs=hs,
                quantity=item.quantity,
                unit_value=item.unit_value,
                country_of_origin=origin,
                unit_weight_kg=item.unit_weight_kg,
            ),
        ),
        buyer_currency=body.currency,
        seller_sme_verified=item.seller_sme_verified,
    )
    q = quote(book, req, rules=rules)
    t = q.buyer_totals
    tax = t.charges - t.duty
    hits = sorted(_screen(goods_rules, hs, origin), key=lambda r: r.kind != "prohibited")
    restriction: dict[str, Any] | None = None
    if hits:
        r = hits[0]
        restriction = {"rule_id": r.id, "kind": r.kind, "reason": r.reason, "requires": r.requires}
    else:
        line_restrictions = q.lines[0].restrictions
        if line_restrictions:
            x = sorted(line_restrictions, key=lambda x: x.kind != "prohibited")[0]
            restriction = {"rule_id": x.rule_id, "kind": x.kind, "reason": x.reason}
            restriction["requires"] = None
    return {
        "ref": item.ref,
        "ok": True,
        "goods": str(t.goods),
        "shipping": str(t.shipping),
        "duty": str(t.duty),
        "tax": str(tax),
        "total": str(t.goods + t.shipping + t.insurance + t.duty + tax),
        "estimate": q.contains_estimates,
        "lane": q.lane.rule_id if q.lane else None,
        "importable": q.admissible and not any(r.kind == "prohibited" for r in hits),
        "restriction": restriction,
    }


def price_batch(
    *, book: RuleBook, body: BatchCreate, screening: ScreeningData | None = None
) -> dict[str, Any]:
    """Price every item of ``body`` (shaped as :class:`BatchRead`).

    The batch as a whole fails (422 naming the field) only when its destination has no
    rule book or its date is outside it.
    """
    rules = book.country(body.destination)
    rules.view(body.date)  # once per batch: refuses a date outside the rule book
    goods_rules = _goods_rules(screening, body.destination, body.date)
    quotes = []
    for item in body.items:
        try:
            quotes.append(_price(book, rules, goods_rules, body, item))
        except DomainError as exc:
            slug = exc.type_slug or "unprocessable"
            problem = {
                "type": f"{PROBLEM_BASE}{slug}",
                "title": exc.title,
                "status": exc.status,
                "detail": exc.detail,
            }
            quotes.append({"ref": item.ref, "ok": False, "problem": problem})
    return {"currency": body.currency, "quotes": quotes}


def _goods_rules(screening: ScreeningData | None, country: str, on: date) -> list[GoodsRule]:
    if screening is None:
        return []
    return [g for g in screening.goods(country, on) if g.phase in ("import", "both")]

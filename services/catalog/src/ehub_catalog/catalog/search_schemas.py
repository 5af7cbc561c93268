"""Answers of a listings search (``GET /v1/products?ship_to=..``): hits with landed cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from ehub_catalog.catalog.models import Listing
from ehub_catalog.catalog.schemas import Dimensions


class SellerBrief(BaseModel):
    id: str
    name: str
    country: str
    sme_verified: bool


class LandedCost(BaseModel):
    """One unit delivered to ``ship_to``, in the buyer's currency (customs' quote)."""

    currency: str
    goods: Decimal
    shipping: Decimal = Field(description="0 in search: the carrier is chosen at order time")
    duty: Decimal
    tax: Decimal = Field(description="VAT/GST, excise, levies and fees")
    total: Decimal
    lane: str | None = Field(None, description="The eWTP lane rule that applies, if any")
    estimate: bool | None = Field(None, description="The duty is a chapter-level estimate")


class ListingHit(BaseModel):
    id: str = Field(description="The listing (for this hub's own products: the product id)")
    source_hub: str = Field(description="The hub the listing comes from")
    product_id: str
    seller: SellerBrief
    title: str
    description: str
    hs_code: str
    origin_country: str
    price: Decimal
    currency: str
    weight_kg: Decimal
    dimensions_cm: Dimensions | None = None
    importable: bool | None = Field(
        None, description="False: the destination prohibits these goods; null: not priced"
    )
    restriction: dict[str, Any] | None = Field(
        None, description="The destination's restriction or prohibition that applies"
    )
    landed_cost: LandedCost | None = Field(None, description="Null when not priced")
    pricing_problem: dict[str, Any] | None = Field(
        None, description="Why customs could not price this hit (problem+json)"
    )


class Pricing(BaseModel):
    available: bool
    currency: str = Field(description="The buyer's currency of every landed cost")
    reason: str | None = Field(None, description="Why no hit is priced, when not available")
    unapplied_filters: list[str] = Field(
        default_factory=list,
        description="Filters that need landed cost and were not applied (pricing unavailable)",
    )


class ListingPage(BaseModel):
    ship_to: str
    items: list[ListingHit]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")
    pricing: Pricing


def hit_of(listing: Listing, quote: dict[str, Any] | None, currency: str) -> ListingHit:
    hit = ListingHit(
        id=listing.id,
        source_hub=listing.source_hub,
        product_id=listing.product_id,
        seller=SellerBrief(
            id=listing.seller_id,
            name=listing.seller_name,
            country=listing.seller_country,
            sme_verified=listing.seller_sme_verified,
        ),
        title=listing.title,
        description=listing.description,
        hs_code=listing.hs_code,
        origin_country=listing.origin_country,
        price=listing.price,
        currency=listing.currency,
        weight_kg=listing.weight_kg,
        dimensions_cm=Dimensions.model_validate(listing.dimensions_cm)
        if listing.dimensions_cm
        else None,
    )
    if quote is None:
        return hit
    if not quote.get("ok"):
        hit.pricing_problem = quote.get("problem") or {"detail": "not priced"}
        return hit
    hit.importable = bool(quote.get("importable", True))
    hit.restriction = quote.get("restriction")
    hit.landed_cost = LandedCost.model_validate({**quote, "currency": currency})
    return hit

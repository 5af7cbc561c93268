"""Catalog request/response schemas."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ehub_core.money import Amount, CurrencyCode

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$", to_upper=True)]
HsCode = Annotated[
    str,
    StringConstraints(pattern=r"^\d{6}(\d{2}){0,2}$"),
    Field(description="HS code: 6 digits, or a national 8- or 10-digit code"),
]


class SellerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    country: CountryCode
    sme_verified: bool = False


class SellerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    country: str
    sme_verified: bool
    created_at: datetime


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seller_id: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=10_000)
    hs_code: HsCode
    origin_country: CountryCode
    price: Amount
    currency: CurrencyCode
    weight_kg: Decimal = Field(gt=0, le=100_000, max_digits=10, decimal_places=3)
    stock: int = Field(0, ge=0)


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    seller_id: str
    title: str
    description: str
    hs_code: str
    origin_country: str
    price: Decimal
    currency: str
    weight_kg: Decimal
    stock: int
    created_at: datetime


class ProductPage(BaseModel):
    items: list[ProductRead]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")

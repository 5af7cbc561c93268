"""Catalog request/response schemas."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ehub_core.countries import CountryCode as IsoCountry
from ehub_core.limits import INT32_MAX, MultilineText, PlainText
from ehub_core.money import Amount, CurrencyCode
from ehub_core.partners import PARTNER_ID_PATTERN

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$", to_upper=True)]
Markets = Annotated[list[IsoCountry], Field(max_length=250)]
HsCode = Annotated[
    str,
    StringConstraints(pattern=r"^\d{6}(\d{2}){0,2}$"),
    Field(description="HS code: 6 digits, or a national 8- or 10-digit code"),
]
StreetLine = Annotated[PlainText, StringConstraints(min_length=1, max_length=200)]


class ShipFrom(BaseModel):
    """The seller's dispatch address: the shipper on the labels of its orders."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: PlainText = Field(min_length=1, max_length=100)
    company: PlainText | None = Field(None, max_length=100)
    street: list[StreetLine] = Field(min_length=1, max_length=3)
    city: PlainText = Field(min_length=1, max_length=100)
    postal_code: PlainText | None = Field(None, max_length=20)
    state: PlainText | None = Field(None, max_length=100)
    country: CountryCode
    phone: PlainText | None = Field(None, max_length=40)
    email: PlainText | None = Field(None, max_length=200)


class SellerCreate(BaseModel):
    """A partner's new seller. ``sme_verified`` is not here: only the hub's operator
    sets it (``POST /operator/v1/sellers/{id}/verification``); sending it is a 422."""

    model_config = ConfigDict(extra="forbid")
    name: PlainText = Field(min_length=1, max_length=200)
    country: CountryCode
    ship_from: ShipFrom | None = Field(
        None, description="Dispatch address of the seller's cross-border orders"
    )
    auto_accept: bool = Field(
        False, description="Accept incoming cross-border orders automatically"
    )


class OperatorSellerCreate(SellerCreate):
    """The operator creates a seller on behalf of a partner (e.g. a network's demo seed)."""

    owner: str | None = Field(
        None,
        pattern=PARTNER_ID_PATTERN,
        description="The partner (prt_...) the seller belongs to; null: the hub's own",
    )
    sme_verified: bool = Field(False, description="Verified small or medium enterprise")


class SellerVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sme_verified: bool


class SellerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    country: str
    sme_verified: bool
    ship_from: ShipFrom | None
    auto_accept: bool
    owner: str | None = Field(description="The partner (prt_...) the seller belongs to")
    created_at: datetime


class Dimensions(BaseModel):
    """One packed unit's outer size, in centimetres."""

    model_config = ConfigDict(extra="forbid")
    length: Decimal = Field(gt=0, le=1000, max_digits=6, decimal_places=1, allow_inf_nan=False)
    width: Decimal = Field(gt=0, le=1000, max_digits=6, decimal_places=1, allow_inf_nan=False)
    height: Decimal = Field(gt=0, le=1000, max_digits=6, decimal_places=1, allow_inf_nan=False)


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seller_id: PlainText = Field(min_length=1, max_length=40)
    title: PlainText = Field(min_length=1, max_length=300)
    description: MultilineText = Field("", max_length=10_000)
    hs_code: HsCode
    origin_country: CountryCode
    price: Amount
    currency: CurrencyCode
    weight_kg: Decimal = Field(
        gt=0, le=100_000, max_digits=10, decimal_places=3, allow_inf_nan=False
    )
    stock: int = Field(0, ge=0, le=INT32_MAX, description="Units in stock (a 32-bit column)")
    dimensions_cm: Dimensions | None = Field(None, description="One packed unit, in cm")
    markets: Markets = Field(
        default_factory=list,
        description="The other hubs (ISO 3166-1 alpha-2) to offer it in: each is sent the "
        "listing over the federation and finds it in its searches",
    )


class ProductUpdate(BaseModel):
    """What a seller may change of a listed product; at least one field."""

    model_config = ConfigDict(extra="forbid")
    title: PlainText | None = Field(None, min_length=1, max_length=300)
    description: MultilineText | None = Field(None, max_length=10_000)
    price: Amount | None = None
    stock: int | None = Field(None, ge=0, le=INT32_MAX)
    markets: Markets | None = Field(
        None, description="The whole new list: hubs left out are sent a delisting"
    )

    @model_validator(mode="after")
    def _something(self) -> ProductUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, description, price, stock, markets")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


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
    dimensions_cm: Dimensions | None = None
    owner: str | None = Field(description="The partner (prt_...) owning the product's seller")
    created_at: datetime
    markets: list[str] = Field(description="The other hubs it is offered in")
    version: int = Field(description="Counts the product's changes (1 when listed)")


class ProductPage(BaseModel):
    items: list[ProductRead]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page")

"""Order API schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ehub_core.countries import CountryCode
from ehub_core.money import CurrencyCode
from ehub_gateway.orders.offers import ID

# Free text: no control characters (they end up on labels and in other hubs' logs).
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
# ISO 3166-1 alpha-2 (pycountry), upper-cased; an unassigned code is a 422 naming the field.
CC = CountryCode


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
    company: Text | None = None
    street: list[Text] = Field(min_length=1, max_length=3)
    city: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
    postal_code: Annotated[str, Field(max_length=20, pattern=r"^[A-Za-z0-9 \-]*$")] | None = None
    state: Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None
    country: CC
    phone: Annotated[str, Field(max_length=40, pattern=r"^[0-9+()\- ]*$")] | None = None
    email: Annotated[str, Field(max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None


class BuyerIn(_In):
    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")] = Field(
        description="The marketplace's id of the buyer"
    )
    identity_number: (
        Annotated[str, Field(min_length=6, max_length=40, pattern=r"^[0-9A-Za-z]+$")] | None
    ) = Field(
        None,
        description="National identity number, required where the destination's regime "
        "needs one (China's cross-border retail import). Stored only as a hash.",
    )


class LineIn(_In):
    product_id: str = Field(pattern=ID)
    quantity: int = Field(gt=0, le=10_000)


class ShippingIn(_In):
    choice: Literal["cheapest", "fastest"] | None = Field(
        "cheapest", description="Pick a rate by price or by transit time"
    )
    carrier: str | None = Field(None, pattern=r"^[a-z0-9_\-]{1,64}$")
    service: str | None = Field(None, pattern=r"^[a-z0-9_\-]{1,64}$")

    @model_validator(mode="after")
    def _one_way(self) -> ShippingIn:
        if (self.carrier is None) != (self.service is None):
            raise ValueError("give both carrier and service, or neither")
        return self


class OrderCreate(_In):
    seller_hub: CC
    seller_id: str = Field(pattern=ID)
    partner_reference: Text | None = Field(None, description="The marketplace's own reference")
    buyer: BuyerIn
    ship_to: AddressIn
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    currency: CurrencyCode = Field(description="The buyer's currency (ISO 4217)")
    shipping: ShippingIn = Field(default_factory=ShippingIn)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "seller_hub": "CA",
                    "seller_id": "sel_lobster",
                    "partner_reference": "tmall-778812",
                    "buyer": {"id": "buyer-42", "identity_number": "110101199003074578"},
                    "ship_to": {
                        "name": "Li Wei",
                        "street": ["88 Century Avenue"],
                        "city": "Shanghai",
                        "postal_code": "200120",
                        "country": "CN",
                        "phone": "+86 21 5555 0100",
                    },
                    "lines": [{"product_id": "prd_lobster", "quantity": 2}],
                    "currency": "CNY",
                    "shipping": {"choice": "cheapest"},
                }
            ]
        },
    )


class ReasonIn(_In):
    reason: Text | None = None


class StepRead(BaseModel):
    at: datetime
    hub: str = Field(description="Where it happened")
    what: str
    state: str = Field(description="The order's state after the step, at this hub")
    detail: dict[str, Any]


class OrderRead(BaseModel):
    id: str
    role: Literal["buyer", "seller"] = Field(description="This hub's side of the order")
    state: str
    next: list[str] = Field(description="Requests a partner may make now at this hub")
    buyer_hub: str
    seller_hub: str
    seller_id: str
    partner_reference: str | None
    lines: list[dict[str, Any]]
    ship_to: dict[str, Any]
    currency: str
    seller_currency: str
    money: dict[str, Any]
    shipping: dict[str, Any]
    shipment: dict[str, Any] | None
    declarations: dict[str, Any]
    reason: str | None
    accept_by: datetime | None
    created_at: datetime
    updated_at: datetime
    timeline: list[StepRead]


class OrderSummary(BaseModel):
    id: str
    role: str
    state: str
    buyer_hub: str
    seller_hub: str
    seller_id: str
    partner_reference: str | None
    currency: str
    total: str
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None

"""Request and response schemas of the logistics API.

Validation lives here so a bad field yields a 422 problem+json naming it
(``parcels.0.weight``, ``destination.country``). Weights and dimensions may be sent in
kg/lb and cm/in; everything is converted to kg and cm before a carrier sees it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ehub_core.countries import CountryCode
from ehub_core.limits import IsoDate, PlainText
from ehub_core.money import Amount, CurrencyCode
from ehub_logistics.carriers.base import (
    Address,
    Customs,
    CustomsItem,
    Parcel,
    RateRequest,
    ServiceLevel,
)

LB_TO_KG = Decimal("0.45359237")
IN_TO_CM = Decimal("2.54")
INCOTERMS = Literal["EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP"]


def _hs_code(value: str) -> str:
    digits = value.replace(".", "").replace(" ", "")
    if not digits.isdigit() or not 6 <= len(digits) <= 10:
        raise ValueError("HS code must be 6 to 10 digits (dots allowed), e.g. 0306.32")
    return digits


HsCode = Annotated[str, AfterValidator(_hs_code)]
Text = Annotated[PlainText, Field(min_length=1, max_length=200)]
Name = Annotated[PlainText, Field(min_length=1, max_length=64)]


# Weights and dimensions: finite, positive, at most 9 decimal places (1 lb = 0.45359237 kg).
def _this_century(value: date) -> date:
    # Carriers' tariffs cover this century; dates beyond it overflowed transit arithmetic.
    if not date(2000, 1, 1) <= value <= date(2099, 12, 31):
        raise ValueError("must be between 2000-01-01 and 2099-12-31")
    return value


ShipDate = Annotated[
    IsoDate, AfterValidator(_this_century), Field(description="YYYY-MM-DD; default today")
]
Measure = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=9, allow_inf_nan=False)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(_In):
    country: CountryCode
    postal_code: PlainText | None = Field(None, max_length=20)
    city: PlainText | None = Field(None, max_length=100)
    state: PlainText | None = Field(None, max_length=100)
    name: PlainText | None = Field(None, max_length=100)
    company: PlainText | None = Field(None, max_length=100)
    street: list[Text] = Field(default_factory=list, max_length=3)
    phone: PlainText | None = Field(None, max_length=40)
    email: PlainText | None = Field(None, max_length=200)

    def to_address(self) -> Address:
        return Address(
            country=self.country,
            postal_code=self.postal_code,
            city=self.city,
            state=self.state,
            name=self.name,
            company=self.company,
            street=tuple(self.street),
            phone=self.phone,
            email=self.email,
        )


class ShippingAddressIn(AddressIn):
    """A label needs someone to hand the parcel to, somewhere to find them."""

    name: PlainText = Field(min_length=1, max_length=100)
    city: PlainText = Field(min_length=1, max_length=100)
    street: list[Text] = Field(min_length=1, max_length=3)


class ParcelIn(_In):
    weight: Measure = Field(le=10_000)
    length: Measure = Field(le=1_000)
    width: Measure = Field(le=1_000)
    height: Measure = Field(le=1_000)
    weight_unit: Literal["kg", "lb"] = "kg"
    dimension_unit: Literal["cm", "in"] = "cm"

    def to_parcel(self) -> Parcel:
        w = self.weight * LB_TO_KG if self.weight_unit == "lb" else self.weight
        f = IN_TO_CM if self.dimension_unit == "in" else Decimal(1)
        return Parcel(
            weight_kg=w,
            length_cm=self.length * f,
            width_cm=self.width * f,
            height_cm=self.height * f,
        )


class MoneyIn(_In):
    amount: Amount
    currency: CurrencyCode


class RateWishes(_In):
    carriers: list[Name] | None = Field(None, min_length=1, max_length=50)
    services: list[Name] | None = Field(None, min_length=1, max_length=200)
    service_levels: list[ServiceLevel] | None = Field(None, min_length=1, max_length=3)
    max_transit_days: int | None = Field(None, ge=1, le=120)


class RateRequestIn(_In):
    origin: AddressIn
    destination: AddressIn
    parcels: list[ParcelIn] = Field(min_length=1, max_length=50)
    declared_value: MoneyIn
    ship_date: ShipDate | None = None
    wishes: RateWishes = Field(default_factory=RateWishes)

    def to_request(self, today: date) -> RateRequest:
        w = self.wishes
        return RateRequest(
            origin=self.origin.to_address(),
            destination=self.destination.to_address(),
            parcels=tuple(p.to_parcel() for p in self.parcels),
            declared_value=self.declared_value.amount,
            currency=self.declared_value.currency,
            ship_date=self.ship_date or today,
            service_levels=frozenset(w.service_levels) if w.service_levels else None,
            services=frozenset(w.services) if w.services else None,
            max_transit_days=w.max_transit_days,
        )


class CustomsItemIn(_In):
    description: Text
    hs_code: HsCode
    quantity: int = Field(ge=1, le=100_000)
    unit_value: Amount
    origin_country: CountryCode
    weight_kg: Measure | None = Field(None, le=10_000)


class CustomsIn(_In):
    items: list[CustomsItemIn] = Field(min_length=1, max_length=200)
    currency: CurrencyCode
    incoterm: INCOTERMS = "DAP"
    contents_type: Literal["merchandise", "gift", "documents", "sample", "return_of_goods"] = (
        "merchandise"
    )
    invoice_number: PlainText | None = Field(None, max_length=64)

    def to_customs(self) -> Customs:
        items = tuple(
            CustomsItem(
                i.description, i.hs_code, i.quantity, i.unit_value, i.origin_country, i.weight_kg
            )
            for i in self.items
        )
        return Customs(items, self.currency, self.incoterm, self.contents_type, self.invoice_number)


class ShipmentCreate(_In):
    carrier: Name
    service: Name
    rate_id: PlainText | None = Field(
        None, max_length=100, description="Pin the price seen in POST /v1/rates"
    )
    shipper: ShippingAddressIn
    recipient: ShippingAddressIn
    parcels: list[ParcelIn] = Field(min_length=1, max_length=50)
    customs: CustomsIn | None = Field(None, description="Required when crossing a border")
    order_id: PlainText | None = Field(None, max_length=64)
    reference: PlainText | None = Field(None, max_length=200)
    ship_date: ShipDate | None = None


# ---- responses ----------------------------------------------------------------------


class Charges(BaseModel):
    base: Decimal
    fuel_surcharge: Decimal
    remote_area_fee: Decimal


class Weights(BaseModel):
    actual_kg: Decimal
    volumetric_kg: Decimal
    chargeable_kg: Decimal


class RateRead(BaseModel):
    rate_id: str
    carrier: str
    carrier_name: str
    service: str
    service_name: str
    service_level: ServiceLevel
    zone: str
    total: Decimal
    currency: str
    charges: Charges
    transit_days: int
    estimated_delivery: date
    weights: Weights
    rate_card: str


class RatesRead(BaseModel):
    rates: list[RateRead] = Field(description="Cheapest first")
    by_transit: list[str] = Field(description="The same rate ids, fastest first")
    cheapest: str | None
    fastest: str | None
    messages: list[str] = Field(description="Why carriers or services are missing")


class When(BaseModel):
    occurred_at: datetime = Field(description="Carrier time, UTC")
    received_at: datetime = Field(description="When the hub learnt of it, UTC")


class Where(BaseModel):
    place: str | None
    country: str | None


class TimelineEventRead(BaseModel):
    id: str
    status: str
    what: str | None
    carrier_code: str | None
    when: When
    where: Where
    why: str | None
    source: str
    anomaly: str | None = None
    vocabularies: dict[str, object]


class ShipmentRead(BaseModel):
    id: str
    status: str
    carrier: str
    service: str
    service_name: str
    tracking_number: str
    order_id: str | None
    reference: str | None
    origin_country: str
    destination_country: str
    shipper: dict[str, object]
    recipient: dict[str, object]
    parcels: list[dict[str, object]]
    customs: dict[str, object] | None
    rate_id: str
    total: Decimal
    currency: str
    charges: Charges
    chargeable_weight_kg: Decimal
    transit_days: int
    ship_date: date
    estimated_delivery: date
    label_url: str
    label_pdf_base64: str | None = Field(None, description="Only in the booking response")
    owner: str | None = Field(
        None, description="The partner (prt_...) that booked it; null: the hub's order saga"
    )
    timeline: list[TimelineEventRead]
    anomalies: list[TimelineEventRead]
    created_at: datetime
    updated_at: datetime


class CarrierRead(BaseModel):
    name: str
    display_name: str


class CarrierEventsAck(BaseModel):
    received: int
    accepted: int
    duplicates: int
    anomalies: list[dict[str, str]]
    unknown_tracking_numbers: list[str]

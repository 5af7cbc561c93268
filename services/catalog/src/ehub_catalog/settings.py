"""Catalog service settings (``EHUB_*``)."""

from typing import ClassVar

from pydantic import AnyHttpUrl, Field, field_validator

from ehub_core.settings import CoreSettings


class CatalogSettings(CoreSettings):
    service: ClassVar[str] = "catalog"

    customs_url: AnyHttpUrl | None = Field(
        AnyHttpUrl("http://127.0.0.1:8002"),
        description="This hub's customs service: landed cost of search hits (empty: none)",
    )
    search_pricing_budget: float = Field(
        0.5,
        gt=0,
        le=30,
        description="Seconds a search waits for customs' landed cost of its page; later, "
        "the hits are answered without it (pricing.available false)",
    )
    search_price_cache_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="Seconds a customs landed cost of a listing is reused by later "
        "searches (same price, destination, currency and day); 0: never",
    )
    catalog_demo_seed: bool = Field(
        False,
        description="At start, add the demo catalog (sellers in CA, MY, RW, BE, CN and "
        "their products) where missing; idempotent",
    )

    @field_validator("customs_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

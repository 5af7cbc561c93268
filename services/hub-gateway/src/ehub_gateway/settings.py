"""Gateway settings (``EHUB_*``)."""

from typing import ClassVar

from pydantic import AnyHttpUrl, Field

from ehub_core.settings import CoreSettings


class GatewaySettings(CoreSettings):
    service: ClassVar[str] = "gateway"

    public_url: AnyHttpUrl | None = Field(None, description="URL peers use to reach this hub")
    catalog_url: AnyHttpUrl = Field(AnyHttpUrl("http://127.0.0.1:8001"))
    customs_url: AnyHttpUrl = Field(AnyHttpUrl("http://127.0.0.1:8002"))
    logistics_url: AnyHttpUrl = Field(AnyHttpUrl("http://127.0.0.1:8003"))

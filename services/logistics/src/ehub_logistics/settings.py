"""Logistics service settings (``EHUB_*``)."""

from typing import ClassVar

from pydantic import Field

from ehub_core.settings import CoreSettings


class LogisticsSettings(CoreSettings):
    service: ClassVar[str] = "logistics"

    carrier_simulation: bool = Field(
        False, description="Drive the simulated carriers' tracking events over time"
    )

"""Logistics service settings (``EHUB_*``)."""

from typing import ClassVar

from pydantic import Field

from ehub_core.settings import CoreSettings


class LogisticsSettings(CoreSettings):
    service: ClassVar[str] = "logistics"

    carrier_simulation: bool = Field(
        False, description="Drive the simulated carriers' tracking events over time"
    )
    carrier_simulation_interval: float = Field(
        5.0, gt=0, le=3600, description="Seconds between two steps of a simulated parcel"
    )

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
    carrier_simulator_scenario: str | None = Field(
        None,
        max_length=40,
        description=(
            "Give every parcel of a simulated carrier this scenario (e.g. delivered, "
            "returned) when the carrier has it; unset: each parcel draws one by the "
            "carrier's odds"
        ),
    )

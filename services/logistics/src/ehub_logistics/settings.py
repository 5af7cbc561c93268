"""Logistics service settings (``EHUB_*``)."""

from typing import ClassVar

from pydantic import Field, SecretStr

from ehub_core.settings import CoreSettings


class LogisticsSettings(CoreSettings):
    service: ClassVar[str] = "logistics"

    carrier_simulation: bool = Field(
        False, description="Drive the simulated carriers' tracking events over time"
    )
    carrier_simulation_interval: float = Field(
        5.0, gt=0, le=3600, description="Seconds between two steps of a simulated parcel"
    )
    carrier_simulator_seed: SecretStr | None = Field(
        None,
        min_length=16,
        description="Secret seed of the simulated carriers' signing keys (webhooks); "
        "unset: keys made at each start (ehub network up sets one per hub)",
    )
    carrier_public_keys: dict[str, str] = Field(
        default_factory=dict,
        description="Per carrier, the base64 Ed25519 key its webhooks are verified with "
        '(JSON, e.g. {"express": "..."}); unset: the simulator\'s own public key',
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

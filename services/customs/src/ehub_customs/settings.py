"""Customs service settings (``EHUB_*``)."""

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from ehub_core.settings import CoreSettings


class CustomsSettings(CoreSettings):
    service: ClassVar[str] = "customs"

    tariff_dir: Path | None = Field(
        None, description="Directory of tariff rule files; default: the bundled rules"
    )
    screening_dir: Path | None = Field(
        None,
        description="Directory of screening data (policy.yaml, goods/<cc>.yaml); default: "
        "the bundled data",
    )
    screening_lists_dir: Path | None = Field(
        None,
        description="Directory of the denied-party lists (lists.yaml and the official files "
        "it names); default: the bundled extract",
    )
    screening_restricted: Literal["hold", "note"] = Field(
        "note",
        description="A restricted good without the document its rule names: hold = held for "
        "an officer; note = the hit is recorded and the declaration not held for it (the "
        "default, for local networks whose demo lobster into CN carries no permit)",
    )

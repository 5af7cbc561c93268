"""Customs service settings (``EHUB_*``)."""

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ehub_core.settings import CoreSettings


class CustomsSettings(CoreSettings):
    service: ClassVar[str] = "customs"

    tariff_dir: Path | None = Field(
        None, description="Directory of tariff rule files; default: the bundled rules"
    )

"""Catalog service settings (``EHUB_*``)."""

from typing import ClassVar

from ehub_core.settings import CoreSettings


class CatalogSettings(CoreSettings):
    service: ClassVar[str] = "catalog"

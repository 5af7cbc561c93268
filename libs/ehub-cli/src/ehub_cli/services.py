"""The four services of a hub: how to build and where to bind each."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from ehub_core.settings import CoreSettings, load_settings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    app_factory: str  # "module:function"
    settings_class: str  # "module:Class"
    port_offset: int

    def load_settings(self, **overrides: Any) -> CoreSettings:
        cls = _resolve(self.settings_class)
        return load_settings(cls, **overrides)

    def build(self, settings: CoreSettings) -> FastAPI:
        factory = _resolve(self.app_factory)
        app: FastAPI = factory(settings)
        return app


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        ServiceSpec(
            "gateway", "ehub_gateway.app:create_app", "ehub_gateway.settings:GatewaySettings", 0
        ),
        ServiceSpec(
            "catalog", "ehub_catalog.app:create_app", "ehub_catalog.settings:CatalogSettings", 1
        ),
        ServiceSpec(
            "customs", "ehub_customs.app:create_app", "ehub_customs.settings:CustomsSettings", 2
        ),
        ServiceSpec(
            "logistics",
            "ehub_logistics.app:create_app",
            "ehub_logistics.settings:LogisticsSettings",
            3,
        ),
    )
}

"""Catalog service application."""

from fastapi import FastAPI

from ehub_catalog.api import routers
from ehub_catalog.consumers import start_consumers
from ehub_catalog.settings import CatalogSettings
from ehub_catalog.startup import start_search, stop_search
from ehub_core.app import create_service_app
from ehub_core.partners import warn_if_open
from ehub_core.settings import load_settings


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or load_settings(CatalogSettings)
    return create_service_app(
        settings,
        title=f"ehub catalog ({settings.hub_id})",
        description="Sellers, products with HS codes, and search.",
        migrations_package="ehub_catalog.migrations",
        routers=routers,
        on_startup=[warn_if_open, start_search, start_consumers],
        on_shutdown=[stop_search],
    )

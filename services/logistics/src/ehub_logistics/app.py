"""Logistics service application."""

from fastapi import FastAPI

from ehub_core.app import ServiceContext, create_service_app
from ehub_core.partners import warn_if_open
from ehub_core.settings import load_settings
from ehub_logistics.api import routers
from ehub_logistics.carriers.registry import load_carriers
from ehub_logistics.consumers import start_consumers
from ehub_logistics.settings import LogisticsSettings
from ehub_logistics.simulation import restore_simulated_shipments


async def _load_carriers(app: FastAPI, ctx: ServiceContext) -> None:
    """Discover carrier adapters (entry points ``ehub.carriers``) and load rate cards."""
    app.state.carriers = load_carriers(ctx.settings)


def create_app(settings: LogisticsSettings | None = None) -> FastAPI:
    settings = settings or load_settings(LogisticsSettings)
    return create_service_app(
        settings,
        title=f"ehub logistics ({settings.hub_id})",
        description="Carriers, rate shopping, shipments, PDF labels and tracking.",
        migrations_package="ehub_logistics.migrations",
        routers=routers,
        on_startup=[warn_if_open, _load_carriers, restore_simulated_shipments, start_consumers],
    )

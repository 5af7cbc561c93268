"""Hub gateway application: the only public edge of a hub."""

from fastapi import FastAPI

from ehub_core.app import create_service_app
from ehub_core.settings import load_settings
from ehub_gateway.api import routers
from ehub_gateway.federation.runtime import start_federation, stop_federation
from ehub_gateway.orders.runtime import start_orders, stop_orders
from ehub_gateway.partners import openapi
from ehub_gateway.partners.door import PartnerDoor
from ehub_gateway.settings import GatewaySettings


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or load_settings(GatewaySettings)
    app = create_service_app(
        settings,
        title=f"ehub hub-gateway ({settings.hub_id})",
        description="Partner REST API, order orchestration and federation with peer hubs.",
        migrations_package="ehub_gateway.migrations",
        routers=routers,
        on_startup=[start_federation, start_orders],
        on_shutdown=[stop_orders, stop_federation],
        middleware=[PartnerDoor],
    )
    openapi.install(app)
    return app

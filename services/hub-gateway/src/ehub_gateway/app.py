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

# A federation batch holds up to 1000 signed envelopes (api/federation.py MAX_BATCH). A
# typical envelope is ~0.5 KiB and the largest an order can make (OrderPlaced with 50 lines
# of 300-character titles, every field at its bound) ~57 KiB: 16 MiB takes 1000 envelopes
# of 16 KiB, or 280 of the largest; senders batch 100 by default (EHUB_DELIVERY_BATCH_SIZE).
FEDERATION_EVENTS_MAX_BODY = 16 << 20


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
        body_limits={"/federation/v1/events": FEDERATION_EVENTS_MAX_BODY},
    )
    openapi.install(app)
    return app

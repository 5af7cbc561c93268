"""HTTP API of the gateway."""

from fastapi import APIRouter

from ehub_gateway.api.federation import router as federation_router
from ehub_gateway.api.internal import router as internal_router
from ehub_gateway.orders.api import peer_router as offers_router
from ehub_gateway.orders.api import router as orders_router
from ehub_gateway.partners.api import router as operator_router
from ehub_gateway.partners.proxy import router as proxy_router
from ehub_gateway.webhooks.api import router as webhooks_router

# The proxy's catch-all ``/v1/{path}`` comes last: the gateway's own routes match first.
routers: list[APIRouter] = [
    federation_router,
    internal_router,
    orders_router,
    offers_router,
    operator_router,
    webhooks_router,
    proxy_router,
]

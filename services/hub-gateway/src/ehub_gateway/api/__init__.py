"""HTTP API of the gateway."""

from fastapi import APIRouter

from ehub_gateway.api.federation import router as federation_router
from ehub_gateway.api.internal import router as internal_router
from ehub_gateway.orders.api import peer_router as offers_router
from ehub_gateway.orders.api import router as orders_router

routers: list[APIRouter] = [federation_router, internal_router, orders_router, offers_router]

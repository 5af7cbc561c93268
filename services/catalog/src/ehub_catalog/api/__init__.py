"""HTTP API of the catalog service."""

from fastapi import APIRouter

from ehub_catalog.api.operator import router as operator_router
from ehub_catalog.api.products import router as products_router
from ehub_catalog.api.sellers import router as sellers_router

routers: list[APIRouter] = [sellers_router, products_router, operator_router]

"""HTTP API of the logistics service."""

from fastapi import APIRouter

from ehub_logistics.api import operator, rates, shipments, webhooks

routers: list[APIRouter] = [rates.router, shipments.router, webhooks.router, operator.router]

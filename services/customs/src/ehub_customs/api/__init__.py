"""HTTP API of the customs service."""

from fastapi import APIRouter

from ehub_customs.api import (
    allowances,
    clearance,
    declarations,
    landed_cost,
    operator,
    rules,
    screening,
)

routers: list[APIRouter] = [
    landed_cost.router,
    rules.router,
    allowances.router,
    declarations.router,
    clearance.router,
    screening.router,
    operator.router,
]

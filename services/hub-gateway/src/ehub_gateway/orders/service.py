"""Placing and steering orders (the routes only parse and answer).

:class:`Orders` (what the routes need) lives here; the work, by concern, beside it:

- ``placing.py``: :func:`place_order`, the buyer's allowance key :func:`buyer_ref`;
- ``requests.py``: :func:`request` (accept, reject, cancel, return);
- ``reading.py``: :func:`read_order`, :func:`get_order`, :func:`list_orders`.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ehub_gateway.federation.runtime import Federation
from ehub_gateway.orders.placing import IDENTITY_REQUIRED, PLACE_SCOPE, buyer_ref, place_order
from ehub_gateway.orders.reading import get_order, list_orders, read_order
from ehub_gateway.orders.requests import REQUEST_ROLE, request
from ehub_gateway.saga.runner import Saga

__all__ = [
    "IDENTITY_REQUIRED",
    "PLACE_SCOPE",
    "REQUEST_ROLE",
    "Orders",
    "buyer_ref",
    "get_order",
    "list_orders",
    "place_order",
    "read_order",
    "request",
]


@dataclass
class Orders:
    """What the order routes need, built at start-up (``app.state.orders``)."""

    fed: Federation
    saga: Saga
    services: httpx.AsyncClient  # to this hub's catalog, customs, logistics
    offer_budget: float
    return_window_days: int = 30

    @property
    def hub(self) -> str:
        return self.fed.hub

    @property
    def customs_url(self) -> str:
        return str(self.fed.settings.customs_url).rstrip("/")

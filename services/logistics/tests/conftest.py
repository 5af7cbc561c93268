"""Fixtures for the logistics API tests: the real app (migrations, carriers from their
entry points) on a real database, talked to in process. Helpers are fixtures because
the suite runs with --import-mode=importlib."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ehub_core.models import OutboxRecord
from ehub_core.testing import serve_in_process
from ehub_logistics.app import create_app
from ehub_logistics.carriers.simulators.engine import SimulatedCarrier, WebhookDelivery
from ehub_logistics.settings import LogisticsSettings

HUB = "CA"


TEST_SEED = "logistics-tests-simulator-seed"  # the simulators' secret in these tests


@pytest.fixture
def simulator_seed() -> str:
    return TEST_SEED


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def served(database_url, tmp_path, settings_overrides):
    settings = LogisticsSettings(
        database_url=database_url,
        var_dir=tmp_path,
        hub_id=HUB,
        **{"carrier_simulator_seed": TEST_SEED, **settings_overrides},
    )
    app = create_app(settings)
    async with serve_in_process(app) as client:
        yield SimpleNamespace(app=app, client=client)
        task = getattr(app.state, "logistics_simulation", None)
        if task is not None:
            task.cancel()


@pytest.fixture
def client(served) -> httpx.AsyncClient:
    return served.client


@pytest.fixture
def app(served):
    return served.app


@pytest.fixture
def carrier(app) -> Callable[[str], SimulatedCarrier]:
    """The carrier side of a simulator: books, and emits signed webhooks."""
    return lambda name: app.state.carriers.get(name).carrier


@pytest.fixture
def send(client) -> Callable[[WebhookDelivery], Awaitable[httpx.Response]]:
    async def _send(delivery: WebhookDelivery) -> httpx.Response:
        return await client.post(delivery.path, content=delivery.body, headers=delivery.headers)

    return _send


@pytest.fixture
def outbox(app) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    async def _rows() -> list[dict[str, Any]]:
        async with app.state.ctx.db.sessionmaker() as session:
            rows = (await session.scalars(select(OutboxRecord).order_by(OutboxRecord.id))).all()
        return [
            {
                "type": r.event_type,
                "topic": r.topic,
                "key": r.key,
                "event_id": r.event_id,
                "payload": json.loads(r.payload),
                "headers": r.headers,
            }
            for r in rows
        ]

    return _rows


def _address(country: str, city: str, name: str, postal: str) -> dict[str, Any]:
    return {
        "country": country,
        "city": city,
        "name": name,
        "postal_code": postal,
        "street": ["1 Harbour Rd"],
    }


@pytest.fixture
def shipment_body() -> Callable[..., dict[str, Any]]:
    def _body(**over: Any) -> dict[str, Any]:
        body = {
            "carrier": "express",
            "service": "express_worldwide",
            "shipper": _address("CA", "Halifax", "Maritime Lobster Co", "B3H 1A1"),
            "recipient": _address("CN", "Shenzhen", "Li Lei", "518000"),
            "parcels": [
                {"weight": "1.5", "length": 30, "width": 20, "height": 10},
                {"weight": "12", "length": 60, "width": 40, "height": 40},
            ],
            "customs": {
                "items": [
                    {
                        "description": "Live lobster",
                        "hs_code": "0306.32",
                        "quantity": 4,
                        "unit_value": "45.00",
                        "origin_country": "CA",
                    }
                ],
                "currency": "USD",
                "incoterm": "DDP",
            },
            "order_id": "ord_test_1",
        }
        return body | over

    return _body


@pytest.fixture
def book(client, shipment_body) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def _book(**over: Any) -> dict[str, Any]:
        r = await client.post("/v1/shipments", json=shipment_body(**over))
        assert r.status_code == 201, r.text
        return r.json()

    return _book

"""Live carrier simulation (``EHUB_CARRIER_SIMULATION=1``).

Every few seconds each simulated carrier moves each of its live shipments one step
and POSTs the signed webhook to this service, in process, through the same route,
signature check, dedup and state machine as a real carrier's delivery. It starts
with the first booking (the simulators forget their bookings on restart anyway) and
stops with the service.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from ehub_logistics.carriers.simulators.adapter import SimulatorAdapter

DEFAULT_INTERVAL_S = 5.0
log = logging.getLogger("ehub.logistics.simulation")


def ensure_simulation(app: FastAPI) -> None:
    """Start the simulation task once, if the settings ask for it."""
    ctx = app.state.ctx
    if not getattr(ctx.settings, "carrier_simulation", False):
        return
    if getattr(app.state, "logistics_simulation", None) is not None:
        return
    interval = float(getattr(ctx.settings, "carrier_simulation_interval", DEFAULT_INTERVAL_S))
    task = asyncio.create_task(run_simulation(app, interval), name="carrier-simulation")
    app.state.logistics_simulation = task
    ctx.tasks.append(task)


async def simulation_tick(app: FastAPI, client: httpx.AsyncClient, now: datetime) -> int:
    """Advance every live simulated shipment one step; return deliveries accepted."""
    sent = 0
    adapters: Any = app.state.carriers
    for adapter in adapters:
        if not isinstance(adapter, SimulatorAdapter):
            continue
        for tracking_number in adapter.carrier.active():
            delivery = adapter.carrier.advance(tracking_number, at=now, now=now)
            if delivery is None:
                continue
            response = await client.post(
                delivery.path, content=delivery.body, headers=delivery.headers
            )
            if response.status_code == 200:
                sent += 1
            else:
                log.warning(
                    "simulated %s webhook refused: %s %s",
                    adapter.name,
                    response.status_code,
                    response.text[:200],
                )
    return sent


async def run_simulation(app: FastAPI, interval: float) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carrier-simulator"
    ) as client:
        while True:
            await asyncio.sleep(interval)
            try:
                await simulation_tick(app, client, datetime.now(UTC))
            except Exception:  # a bad tick must not end the simulation
                log.exception("carrier simulation tick failed")

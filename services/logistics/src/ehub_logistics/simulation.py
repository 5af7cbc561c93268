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
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from ehub_core.app import ServiceContext
from ehub_logistics.carriers.base import Address
from ehub_logistics.carriers.simulators.adapter import SimulatorAdapter
from ehub_logistics.shipments.models import Shipment, TrackingEventRecord

FINISHED = ("delivered", "returned", "cancelled")

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


def _address(data: dict[str, Any]) -> Address:
    return Address(
        country=data.get("country") or "",
        postal_code=data.get("postal_code"),
        city=data.get("city"),
        state=data.get("state"),
        name=data.get("name"),
        company=data.get("company"),
        street=tuple(data.get("street") or ()),
        phone=data.get("phone"),
        email=data.get("email"),
    )


async def restore_simulated_shipments(app: FastAPI, ctx: ServiceContext) -> None:
    """After a restart, hand the simulated carriers back the parcels they carry: every
    unfinished shipment of a simulated carrier, at the step its last reported event
    reached (event ids end in the step number: ``<tracking>-007``)."""
    sims = {a.name: a for a in app.state.carriers if isinstance(a, SimulatorAdapter)}
    if not sims:
        return
    restored = 0
    async with ctx.db.reader() as session:
        shipments = (
            await session.execute(
                select(Shipment).where(
                    Shipment.carrier.in_(list(sims)), Shipment.status.not_in(FINISHED)
                )
            )
        ).scalars()
        for shipment in list(shipments):
            keys = (
                await session.execute(
                    select(TrackingEventRecord.dedup_key).where(
                        TrackingEventRecord.shipment_id == shipment.id,
                        TrackingEventRecord.source == "carrier",
                    )
                )
            ).scalars()
            step = re.compile(rf"{re.escape(shipment.tracking_number)}-(\d+)$")
            sent = max((int(m.group(1)) for k in keys if (m := step.search(k))), default=0)
            if sims[shipment.carrier].carrier.restore(
                shipment.tracking_number,
                service=shipment.service,
                origin=_address(shipment.shipper),
                destination=_address(shipment.recipient),
                booked_at=shipment.created_at,
                sent=sent,
            ):
                restored += 1
    if restored:
        log.info("simulated carriers took back %d unfinished shipments", restored)
        ensure_simulation(app)

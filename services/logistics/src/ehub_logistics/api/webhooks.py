"""``POST /v1/carriers/{carrier}/events``: carriers push tracking as it happens."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from ehub_core.deps import SessionDep
from ehub_core.errors import UnauthorizedError, UnprocessableError
from ehub_logistics.api.deps import PublishingDep
from ehub_logistics.carriers.base import WebhookRejected
from ehub_logistics.carriers.registry import CarriersDep
from ehub_logistics.shipments.schemas import CarrierEventsAck
from ehub_logistics.shipments.timeline import ingest

router = APIRouter(prefix="/v1/carriers", tags=["carrier webhooks"])


@router.post(
    "/{carrier}/events",
    summary="Signed tracking events from a carrier",
    responses={
        401: {"description": "Signature missing, wrong or stale"},
        404: {"description": "No such carrier"},
    },
)
async def receive_events(
    carrier: str,
    request: Request,
    session: SessionDep,
    carriers: CarriersDep,
    publishing: PublishingDep,
) -> CarrierEventsAck:
    """Verified by the carrier's adapter before anything is read. Duplicates are
    acknowledged and skipped; impossible steps are kept as anomalies, not applied.
    Unknown tracking numbers are acknowledged (so the carrier stops retrying) and
    listed."""
    adapter = carriers.get(carrier)
    body = await request.body()
    now = datetime.now(UTC)
    try:
        events = adapter.parse_webhook(dict(request.headers), body, now=now)
    except WebhookRejected as exc:
        raise UnauthorizedError(f"Webhook from {carrier} rejected: {exc}") from None
    except ValueError as exc:
        raise UnprocessableError(str(exc)) from None
    outcome = await ingest(
        session,
        carrier=carrier,
        events=events,
        received_at=now,
        topic=publishing.topic,
    )
    return CarrierEventsAck(
        received=outcome.received,
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        anomalies=outcome.anomalies,
        unknown_tracking_numbers=outcome.unknown_tracking_numbers,
    )

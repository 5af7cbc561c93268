"""``POST /v1/carriers/{carrier}/events``: carriers push tracking as it happens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from ehub_core.deps import SessionDep
from ehub_core.errors import DomainError, UnauthorizedError, UnprocessableError, field_error
from ehub_core.limits import no_control_characters
from ehub_logistics.api.deps import PublishingDep
from ehub_logistics.carriers.base import CarrierEvent, WebhookRejected
from ehub_logistics.carriers.registry import CarriersDep
from ehub_logistics.shipments.schemas import CarrierEventsAck
from ehub_logistics.shipments.timeline import ingest

router = APIRouter(prefix="/v1/carriers", tags=["carrier webhooks"])

#: Events one delivery may carry; a carrier with more sends several deliveries.
MAX_EVENTS_PER_DELIVERY = 100
# The translated events' text (CarrierEvent names, whatever the carrier calls them).
_TEXT_FIELDS = (
    "tracking_number",
    "event_id",
    "carrier_code",
    "place",
    "country",
    "reason_code",
    "description",
)


class TooManyEvents(DomainError):
    status = 413
    title = "Too many events"
    type_slug = "too-many-events"


def _check_text(events: list[CarrierEvent]) -> None:
    """Carrier text reaches timelines, peer hubs and terminals: no control characters."""
    errors: list[dict[str, Any]] = []
    for i, event in enumerate(events):
        for name in _TEXT_FIELDS:
            value = getattr(event, name)
            if value is None:
                continue
            try:
                no_control_characters(value)
            except ValueError as exc:
                errors.append(field_error(["events", i, name], str(exc)))
    if errors:
        fields = ", ".join(e["field"] for e in errors[:5])
        raise UnprocessableError(f"Invalid value for: {fields}", errors=errors[:20])


@router.post(
    "/{carrier}/events",
    summary="Signed tracking events from a carrier",
    responses={
        401: {"description": "Signature missing, wrong or stale"},
        404: {"description": "No such carrier"},
        413: {"description": f"More than {MAX_EVENTS_PER_DELIVERY} events in one delivery"},
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
    if len(events) > MAX_EVENTS_PER_DELIVERY:
        raise TooManyEvents(
            f"A delivery carries at most {MAX_EVENTS_PER_DELIVERY} events; this one has "
            f"{len(events)}. Send them in several deliveries; nothing was recorded.",
            max_events=MAX_EVENTS_PER_DELIVERY,
        )
    _check_text(events)
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

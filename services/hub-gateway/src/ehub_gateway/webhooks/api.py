"""``/v1/webhooks``: a partner's endpoints and their delivery log (docs/webhooks.md).

Every route acts for the partner the door admitted (``request.state.partner``); another
partner's endpoint is "not found".
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ehub_core.deps import ReadSessionDep, SessionDep
from ehub_core.errors import UnauthorizedError
from ehub_gateway.partners.door import Principal
from ehub_gateway.webhooks import service
from ehub_gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such endpoint of this partner's (another partner's is not found)"}
}

EventType = Literal["order.state_changed", "shipment.status_changed", "label.ready"]
ENDPOINT_ID = r"^wh_[0-9a-f]{32}$"


async def get_partner(request: Request) -> str:
    principal: Principal | None = getattr(request.state, "partner", None)
    if principal is None:  # the door admits no one without a key; this is belt and braces
        raise UnauthorizedError("an API key is required")
    return principal.partner_id


PartnerDep = Annotated[str, Depends(get_partner)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=service.MAX_URL,
        description="https:// URL that receives the events (http:// only to a loopback "
        "address, and only where the hub allows it: local networks)",
    )
    event_types: list[EventType] = Field(min_length=1, max_length=20, description="What to send")
    description: str | None = Field(None, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")


class EndpointRead(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    status: Literal["active", "disabled"]
    created_at: datetime
    disabled_at: datetime | None


class EndpointCreated(EndpointRead):
    secret: str = Field(
        description="Signing secret, `whsec_<base64>`: shown once. Verify each delivery's "
        "`webhook-signature` with it (Standard Webhooks)."
    )


class EndpointPage(BaseModel):
    items: list[EndpointRead]
    next_cursor: str | None


class AttemptRead(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryRead(BaseModel):
    id: str = Field(description="The `webhook-id` header: the same on every attempt")
    event_id: str = Field(description="The event (shared by all endpoints it went to)")
    event_type: str
    subject: str = Field(description="What the event is about, e.g. the order id")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description="The body sent: {type, timestamp, data}")
    attempt_log: list[AttemptRead] = Field(description="Every attempt, oldest first")


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None


def _endpoint(e: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": e.id,
        "url": e.url,
        "event_types": list(e.event_types),
        "description": e.description,
        "status": "active" if e.disabled_at is None else "disabled",
        "created_at": e.created_at,
        "disabled_at": e.disabled_at,
    }


def _delivery(d: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryRead:
    return DeliveryRead(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        subject=d.subject,
        status=d.status,
        attempts=d.attempts,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        last_attempt_at=d.last_attempt_at,
        next_attempt_at=d.next_attempt_at if d.status == service.PENDING else None,
        delivered_at=d.delivered_at,
        payload=json.loads(d.payload),
        attempt_log=[
            AttemptRead(
                at=a.at, status_code=a.status_code, error=a.error, duration_ms=a.duration_ms
            )
            for a in attempts
        ],
    )


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreated,
    summary="Register a webhook endpoint",
    responses={409: {"description": "The partner already has 20 active endpoints"}},
    description="Events of the chosen types for this partner are POSTed to `url`, signed "
    "per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`). The "
    "answer carries the signing secret, once.",
)
async def create_endpoint(
    body: EndpointCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    partner: PartnerDep,
) -> EndpointCreated:
    endpoint = await service.create_endpoint(
        session,
        partner_id=partner,
        url=body.url,
        event_types=list(body.event_types),
        description=body.description,
        allow_http=bool(getattr(request.app.state.settings, "webhook_allow_http", False)),
    )
    response.headers["Location"] = f"/v1/webhooks/{endpoint.id}"
    return EndpointCreated(**_endpoint(endpoint), secret=endpoint.secret)


@router.get("", response_model=EndpointPage, summary="This partner's webhook endpoints")
async def list_endpoints(
    session: ReadSessionDep,
    partner: PartnerDep,
    cursor: Annotated[str | None, Query(pattern=ENDPOINT_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> EndpointPage:
    """The caller's webhook endpoints, newest first, paged with `cursor`."""
    rows, next_cursor = await service.list_endpoints(session, partner, cursor=cursor, limit=limit)
    return EndpointPage(items=[EndpointRead(**_endpoint(e)) for e in rows], next_cursor=next_cursor)


@router.get(
    "/{endpoint_id}",
    response_model=EndpointRead,
    summary="One webhook endpoint",
    responses=NOT_FOUND,
)
async def read_endpoint(
    endpoint_id: str, session: ReadSessionDep, partner: PartnerDep
) -> EndpointRead:
    """One of the caller's webhook endpoints (never its signing secret)."""
    return EndpointRead(**_endpoint(await service.get_endpoint(session, partner, endpoint_id)))


@router.delete(
    "/{endpoint_id}",
    response_model=EndpointRead,
    summary="Disable a webhook endpoint",
    responses=NOT_FOUND,
    description="Nothing more is sent to it; deliveries still pending for it end `failed`. "
    "Its delivery log stays readable.",
)
async def disable_endpoint(
    endpoint_id: str, session: SessionDep, partner: PartnerDep
) -> EndpointRead:
    endpoint = await service.disable_endpoint(session, partner, endpoint_id)
    return EndpointRead(**_endpoint(endpoint))


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    summary="The endpoint's delivery log, newest first",
    responses=NOT_FOUND,
)
async def list_deliveries(
    endpoint_id: str,
    session: ReadSessionDep,
    partner: PartnerDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DeliveryPage:
    """What was sent to the endpoint, newest first, with each attempt's outcome; paged with
    `cursor`."""
    rows, next_cursor = await service.list_deliveries(
        session,
        partner,
        endpoint_id,
        status=status,
        cursor=int(cursor) if cursor else None,
        limit=limit,
    )
    return DeliveryPage(items=[_delivery(d, a) for d, a in rows], next_cursor=next_cursor)


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryRead,
    summary="Send a delivery again now (same webhook-id)",
    responses={**NOT_FOUND, 409: {"description": "The endpoint is disabled"}},
    description="A delivered or failed delivery is pending again, with a fresh retry "
    "window; a pending one is attempted now. Receivers deduplicate on `webhook-id`.",
)
async def redeliver(
    endpoint_id: str,
    delivery_id: str,
    session: SessionDep,
    partner: PartnerDep,
) -> DeliveryRead:
    delivery, attempts = await service.redeliver(session, partner, endpoint_id, delivery_id)
    return _delivery(delivery, attempts)

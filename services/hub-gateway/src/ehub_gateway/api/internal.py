"""Internal API for the hub's own services and operators (bearer token): hand events to
the federation relay."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header
from google.protobuf.json_format import ParseDict, ParseError
from pydantic import BaseModel, Field

from ehub_core.deps import SessionDep
from ehub_core.errors import ForbiddenError, UnauthorizedError, UnprocessableError, field_error
from ehub_core.streams import EVENT_TYPES, RELAYABLE_TYPES
from ehub_gateway.federation.outbound import submit
from ehub_gateway.federation.runtime import Federation, get_federation

router = APIRouter(prefix="/internal/v1", tags=["internal"])
FedDep = Annotated[Federation, Depends(get_federation)]

# The event types a hub's own services may hand to the relay (ehub_core.streams).
if TYPE_CHECKING:
    EventType = str
else:
    EventType = Literal[RELAYABLE_TYPES]


async def require_internal(
    fed: FedDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    token = fed.settings.internal_token
    if token is None:
        raise ForbiddenError("The internal API is disabled (EHUB_INTERNAL_TOKEN is unset)")
    expected = f"Bearer {token.get_secret_value()}"
    if authorization is None or not hmac.compare_digest(authorization, expected):
        raise UnauthorizedError("A valid internal bearer token is required")


class OutboundEventCreate(BaseModel):
    type: EventType
    target_hub: str = Field(pattern=r"^[A-Z]{2}$")
    subject: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any] = Field(description="The payload message as protobuf JSON")
    event_id: str | None = Field(None, description="UUIDv7; makes the submission idempotent")
    transport: Literal["http", "kafka"] | None = None


class OutboundBatch(BaseModel):
    events: list[OutboundEventCreate] = Field(min_length=1, max_length=1000)


class OutboundStatus(BaseModel):
    event_id: str
    target_hub: str
    status: str
    created: bool


@router.post(
    "/events",
    status_code=202,
    dependencies=[Depends(require_internal)],
    response_model=list[OutboundStatus],
)
async def submit_events(
    batch: OutboundBatch, session: SessionDep, fed: FedDep
) -> list[OutboundStatus]:
    """Seal each event with this hub's key and queue it for its target hub."""
    key = fed.keyring.active_key()
    out = []
    for i, ev in enumerate(batch.events):
        if fed.trust.peer(ev.target_hub) is None:
            await fed.trust.load()  # a peer added moments ago by the operator
        if ev.target_hub == fed.hub or fed.trust.peer(ev.target_hub) is None:
            raise UnprocessableError(
                f"{ev.target_hub} is not a peer of hub {fed.hub}",
                errors=[field_error(f"events.{i}.target_hub", "not a peer", "unknown_peer")],
            )
        try:
            payload = ParseDict(ev.payload, EVENT_TYPES[ev.type].message())
        except ParseError as exc:
            raise UnprocessableError(
                f"payload is not a valid {ev.type}: {exc}",
                errors=[field_error(f"events.{i}.payload", str(exc), "payload_invalid")],
            ) from None
        try:
            row, created = await submit(
                session,
                key=key,
                target_hub=ev.target_hub,
                payload=payload,
                subject=ev.subject,
                event_id=ev.event_id,
                transport=ev.transport,
            )
        except ValueError as exc:
            raise UnprocessableError(
                str(exc),
                errors=[field_error(f"events.{i}.event_id", str(exc), "value_error")],
            ) from None
        out.append(
            OutboundStatus(
                event_id=row.event_id, target_hub=row.target_hub, status=row.status, created=created
            )
        )
    fed.delivery.notify()
    return out

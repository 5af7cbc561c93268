"""Events this hub seals for a peer: stored in ``fed_outbound`` in the caller's
transaction, then delivered by the :class:`~ehub_gateway.federation.delivery.DeliveryWorker`
until the peer's signed receipt arrives."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message
from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.envelope import envelope_digest, read_unverified, seal
from ehub_core.errors import ConflictError
from ehub_core.signing import HubKey
from ehub_gateway.federation.models import DeliveryStatus, OutboundEvent


def current_traceparent() -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


async def submit(
    session: AsyncSession,
    *,
    key: HubKey,
    target_hub: str,
    payload: Message,
    subject: str,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    transport: str | None = None,
) -> tuple[OutboundEvent, bool]:
    """Seal and queue one event for ``target_hub``; return (row, created).

    A repeated ``event_id`` with the same content returns the stored row (idempotent);
    with different content it is a 409.
    """
    now = datetime.now(UTC)
    if event_id is not None:
        existing = await session.get(OutboundEvent, event_id)
        if existing is not None:
            env = read_unverified(existing.envelope)
            if (
                env.target_hub != target_hub
                or env.subject != subject
                or env.payload != payload.SerializeToString(deterministic=True)
            ):
                raise ConflictError(f"event {event_id} was already submitted with other content")
            return existing, False
    data = seal(
        payload,
        key,
        target_hub=target_hub,
        subject=subject,
        event_id=event_id,
        occurred_at=occurred_at,
        traceparent=current_traceparent(),
        now=now,
    )
    env = read_unverified(data)
    row = OutboundEvent(
        event_id=env.event_id,
        target_hub=target_hub,
        event_type=env.type,
        subject=subject,
        envelope=data,
        digest=envelope_digest(data),
        transport=transport,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    return row, True


def reseal(row: OutboundEvent, key: HubKey) -> None:
    """Sign the same event again with ``key`` (its old key expired before delivery)."""
    from ehub_core.envelope import PAYLOAD_TYPES

    env = read_unverified(row.envelope)
    payload = PAYLOAD_TYPES[env.type].FromString(env.payload)
    data = seal(
        payload,
        key,
        target_hub=env.target_hub,
        subject=env.subject,
        event_id=env.event_id,
        occurred_at=env.occurred_at.ToDatetime(tzinfo=UTC),
        traceparent=env.traceparent,
        tracestate=env.tracestate,
    )
    row.envelope = data
    row.digest = envelope_digest(data)

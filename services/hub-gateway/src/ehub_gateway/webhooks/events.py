"""Webhook events: the catalogue, :func:`emit` and waking the worker after a commit.

:func:`emit` is called inside the transaction that makes the change (an order's new
state): its delivery rows commit with the change or not at all, like the outbox. The
worker (``webhooks/worker.py``) is woken right after that commit and sends them.
"""

from __future__ import annotations

import json
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ehub_core.ids import new_id
from ehub_gateway.webhooks.models import WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from ehub_gateway.orders.models import Order

ORDER_STATE_CHANGED = "order.state_changed"
SHIPMENT_STATUS_CHANGED = "shipment.status_changed"
LABEL_READY = "label.ready"
# The catalogue. Shipment and label events are accepted in subscriptions already and
# emitted once the shipment events are wired to webhooks (docs/webhooks.md).
EVENT_TYPES = (ORDER_STATE_CHANGED, SHIPMENT_STATUS_CHANGED, LABEL_READY)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


# -- waking the worker after a commit ---------------------------------------------------

_DIRTY = "ehub_webhooks_dirty"
_HOOKED = "ehub_webhooks_hooked"
_listeners: weakref.WeakSet[Any] = weakref.WeakSet()


def add_listener(worker: Any) -> None:
    """``worker.notify()`` is called after each commit that wrote deliveries."""
    _listeners.add(worker)


def remove_listener(worker: Any) -> None:
    _listeners.discard(worker)


def _notify_all() -> None:
    for worker in list(_listeners):
        worker.notify()


def wake_after_commit(session: AsyncSession) -> None:
    sync: Session = session.sync_session
    sync.info[_DIRTY] = True
    if sync.info.get(_HOOKED):
        return
    sync.info[_HOOKED] = True

    def committed(s: Session) -> None:
        if s.info.pop(_DIRTY, False):
            _notify_all()

    def rolled_back(s: Session, _previous: Any = None) -> None:
        s.info.pop(_DIRTY, None)

    event.listen(sync, "after_commit", committed)
    event.listen(sync, "after_rollback", rolled_back)


# -- events ---------------------------------------------------------------------------


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def emit(
    session: AsyncSession,
    *,
    partner_id: str | None,
    event_type: str,
    subject: str,
    data: dict[str, Any],
) -> int:
    """Queue ``event_type`` for every active endpoint of ``partner_id`` subscribed to it,
    in the caller's transaction; return how many deliveries were queued.

    The body is fixed now (``{"type", "timestamp", "data"}``) and sent byte for byte on
    every attempt, under one ``webhook-id`` per (event, endpoint).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if partner_id is None:
        return 0
    e = WebhookEndpoint.__table__.c
    rows = (
        await session.execute(
            select(e.id, e.event_types).where(e.partner_id == partner_id, e.disabled_at.is_(None))
        )
    ).all()
    targets = [r.id for r in rows if event_type in (_types(r.event_types))]
    if not targets:
        return 0
    now = datetime.now(UTC)
    event_id = new_id("evt")
    body = json.dumps(
        {"type": event_type, "timestamp": iso(now), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    await session.execute(
        insert(WebhookDelivery),
        [
            {
                "id": new_id("msg"),
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "partner_id": partner_id,
                "event_type": event_type,
                "subject": subject,
                "payload": body,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "retry_from": now,
                "created_at": now,
            }
            for endpoint_id in targets
        ],
    )
    wake_after_commit(session)
    return len(targets)


def _types(value: Any) -> list[str]:
    if isinstance(value, str):  # a driver that hands JSON back undecoded
        decoded: list[str] = json.loads(value)
        return decoded
    return list(value)


async def order_state_changed(
    session: AsyncSession, order: Order, new_state: str, *, what: str, hub: str, at: datetime
) -> int:
    """Called by the saga before an order moves to ``new_state``: an
    ``order.state_changed`` event for the order's partner if the state really changes."""
    previous = str(order.state)
    if new_state == previous or order.partner_id is None:
        return 0
    return await emit(
        session,
        partner_id=order.partner_id,
        event_type=ORDER_STATE_CHANGED,
        subject=order.id,
        data={
            "order_id": order.id,
            "state": str(new_state),
            "previous_state": previous,
            "what": what,
            "hub": hub,
            "at": iso(at),
            "role": str(order.role),
        },
    )

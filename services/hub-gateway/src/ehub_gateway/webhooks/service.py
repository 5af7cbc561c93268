"""Webhook endpoints, events and the delivery log.

:func:`emit` is called inside the transaction that makes the change (an order's new
state): its delivery rows commit with the change or not at all, like the outbox. The
worker (``webhooks/worker.py``) is woken right after that commit and sends them.

Signing follows Standard Webhooks (https://www.standardwebhooks.com): the secret is
``whsec_`` + base64 of 24 random bytes; ``webhook-signature`` is ``v1,`` + base64 of
HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}`` keyed with the decoded secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ehub_core.errors import ConflictError, NotFoundError, UnprocessableError, field_error
from ehub_core.ids import new_id
from ehub_gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from ehub_gateway.orders.models import Order

ORDER_STATE_CHANGED = "order.state_changed"
SHIPMENT_STATUS_CHANGED = "shipment.status_changed"
LABEL_READY = "label.ready"
# The catalogue. Shipment and label events are accepted in subscriptions already and
# emitted once the shipment events are wired to webhooks (docs/webhooks.md).
EVENT_TYPES = (ORDER_STATE_CHANGED, SHIPMENT_STATUS_CHANGED, LABEL_READY)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
MAX_ACTIVE_ENDPOINTS = 20
MAX_URL = 2000

# Cloud metadata services: never a webhook destination (SSRF).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


# -- signing --------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (one ``v1`` signature)."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "ehub-webhooks/1",
    }


# -- destinations ---------------------------------------------------------------------


def _url_error(msg: str) -> UnprocessableError:
    return UnprocessableError(
        f"url: {msg}",
        errors=[field_error("url", msg)],
    )


def literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host name denotes by itself (``10.0.0.1``, ``[::1]``, and the legacy
    IPv4 forms ``2852039166`` or ``0xa9.254.169.254`` that resolvers accept), else None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is never a webhook destination, else None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_IPS:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast:
        return "not a unicast address"
    return None


def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = literal_ip(host)
    return ip is not None and ip.is_loopback


def validate_url(url: str, *, allow_http: bool) -> str:
    """The URL if it may receive webhooks, else 422 naming ``url``.

    https only; http only to a loopback address and only when ``EHUB_WEBHOOK_ALLOW_HTTP``
    is on (local networks); never credentials in the URL, link-local or metadata hosts.
    """
    if len(url) > MAX_URL:
        raise _url_error(f"at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _url_error("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _url_error(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _url_error("must be an https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _url_error("must not contain credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _url_error("has no host")
    if port == 0:
        raise _url_error("port 0 is not a destination")
    if host in METADATA_HOSTS:
        raise _url_error(f"{host} is a cloud metadata service")
    ip = literal_ip(host)
    if ip is not None and (why := forbidden_ip(ip)) is not None:
        raise _url_error(f"{host} is {why}")
    if scheme == "http":
        if not allow_http:
            raise _url_error("must be an https:// URL")
        if not is_loopback_host(host):
            raise _url_error("http:// is allowed only to a loopback address; use https://")
    return url


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


# -- endpoints ------------------------------------------------------------------------


async def create_endpoint(
    session: AsyncSession,
    *,
    partner_id: str,
    url: str,
    event_types: list[str],
    description: str | None,
    allow_http: bool,
) -> WebhookEndpoint:
    validate_url(url, allow_http=allow_http)
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise UnprocessableError(
            f"unknown event types: {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)})",
            errors=[field_error("event_types", "unknown event type")],
        )
    e = WebhookEndpoint.__table__.c
    active = (
        await session.execute(
            select(e.id).where(e.partner_id == partner_id, e.disabled_at.is_(None))
        )
    ).all()
    if len(active) >= MAX_ACTIVE_ENDPOINTS:
        raise ConflictError(
            f"a partner may have at most {MAX_ACTIVE_ENDPOINTS} active webhook endpoints; "
            "delete one first"
        )
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        partner_id=partner_id,
        url=url,
        description=description,
        event_types=list(dict.fromkeys(event_types)),
        secret=new_secret(),
        created_at=datetime.now(UTC),
        disabled_at=None,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, partner_id: str, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint:
    """The partner's own endpoint; another partner's is "not found" too."""
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    endpoint = (await session.execute(stmt)).scalar_one_or_none()
    if endpoint is None or endpoint.partner_id != partner_id:
        raise NotFoundError(f"no webhook endpoint {endpoint_id}")
    return endpoint


async def list_endpoints(
    session: AsyncSession, partner_id: str, *, cursor: str | None, limit: int
) -> tuple[list[WebhookEndpoint], str | None]:
    stmt = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.partner_id == partner_id)
        .order_by(WebhookEndpoint.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        stmt = stmt.where(WebhookEndpoint.id < cursor)
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


async def disable_endpoint(
    session: AsyncSession, partner_id: str, endpoint_id: str
) -> WebhookEndpoint:
    """Stop sending to it; what was still pending for it ends ``failed``."""
    endpoint = await get_endpoint(session, partner_id, endpoint_id, for_update=True)
    if endpoint.disabled_at is None:
        now = datetime.now(UTC)
        endpoint.disabled_at = now
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
            .values(status=FAILED, last_error="endpoint disabled", next_attempt_at=None)
        )
    return endpoint


# -- the delivery log -----------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    partner_id: str,
    endpoint_id: str,
    *,
    status: str | None,
    cursor: int | None,
    limit: int,
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], str | None]:
    """Newest first; each with its attempts (oldest first)."""
    endpoint = await get_endpoint(session, partner_id, endpoint_id)
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.seq.desc())
        .limit(limit + 1)
    )
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if cursor is not None:
        stmt = stmt.where(WebhookDelivery.seq < cursor)
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {r.seq: [] for r in rows}
    if rows:
        for a in (
            await session.execute(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_seq.in_(list(attempts)))
                .order_by(WebhookAttempt.id)
            )
        ).scalars():
            attempts[a.delivery_seq].append(a)
    return [(r, attempts[r.seq]) for r in rows], (str(rows[-1].seq) if more and rows else None)


async def redeliver(
    session: AsyncSession, partner_id: str, endpoint_id: str, delivery_id: str
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    """A new attempt now, under the same webhook-id. A delivered or failed delivery goes
    back to ``pending`` with a fresh retry window; a pending one is simply due now."""
    endpoint = await get_endpoint(session, partner_id, endpoint_id)
    if endpoint.disabled_at is not None:
        raise ConflictError(f"webhook endpoint {endpoint_id} is disabled")
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    delivery = (await session.execute(stmt)).scalar_one_or_none()
    if delivery is None:
        raise NotFoundError(f"no delivery {delivery_id} for webhook endpoint {endpoint_id}")
    now = datetime.now(UTC)
    if delivery.status != PENDING:
        delivery.status = PENDING
        delivery.retry_from = now
        delivery.delivered_at = None
    delivery.next_attempt_at = now
    wake_after_commit(session)
    await session.flush()
    attempts = list(
        (
            await session.execute(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_seq == delivery.seq)
                .order_by(WebhookAttempt.id)
            )
        ).scalars()
    )
    return delivery, attempts

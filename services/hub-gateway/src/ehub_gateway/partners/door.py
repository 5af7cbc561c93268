"""The front door: every partner request to ``/v1/...`` passes here first.

From the request line and headers alone — before any byte of the body is read — the
door finds the operation's scope, checks the API key (a cache refreshed from the
database every ``EHUB_PARTNER_RELOAD_INTERVAL``, so a revocation anywhere holds within
about a second), the scope and the key's rate limit. A refusal is a problem+json answer
that changes nothing. An admitted request carries its partner in ``scope["state"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from ehub_core.db import Database
from ehub_core.errors import PROBLEM_BASE
from ehub_gateway.partners.models import Partner, PartnerKey
from ehub_gateway.partners.service import hash_secret, parse_key

log = logging.getLogger("ehub.gateway.door")

# (method, path pattern, scope, owning service or None for the gateway's own routes)
OPERATIONS: list[tuple[str, re.Pattern[str], str, str | None]] = [
    (m, re.compile(p), s, svc)
    for m, p, s, svc in (
        ("POST", r"^/v1/orders$", "orders:write", None),
        ("GET", r"^/v1/orders(/[^/]+)?$", "orders:read", None),
        ("POST", r"^/v1/orders/[^/]+/(accept|reject|cancel|returns)$", "orders:write", None),
        ("POST", r"^/v1/webhooks$", "webhooks:write", None),
        ("GET", r"^/v1/webhooks(/[^/]+(/deliveries)?)?$", "webhooks:read", None),
        ("DELETE", r"^/v1/webhooks/[^/]+$", "webhooks:write", None),
        ("POST", r"^/v1/webhooks/[^/]+/deliveries/[^/]+/redeliver$", "webhooks:write", None),
        ("POST", r"^/v1/(sellers|products)$", "catalog:write", "catalog"),
        ("GET", r"^/v1/(sellers|products)(/[^/]+)?$", "catalog:read", "catalog"),
        ("PATCH", r"^/v1/products/[^/]+$", "catalog:write", "catalog"),
        ("POST", r"^/v1/landed-cost$", "quotes:read", "customs"),
        ("GET", r"^/v1/rules/[^/]+$", "quotes:read", "customs"),
        ("GET", r"^/v1/allowances/[^/]+/[^/]+$", "allowances:read", "customs"),
        ("GET", r"^/v1/declarations$", "declarations:read", "customs"),
        ("GET", r"^/v1/clearance/queue$", "clearance:read", "customs"),
        ("POST", r"^/v1/clearance/[^/]+/(claim|decide)$", "clearance:write", "customs"),
        ("GET", r"^/v1/screening/whitelist$", "clearance:read", "customs"),
        ("POST", r"^/v1/screening/whitelist$", "clearance:write", "customs"),
        ("DELETE", r"^/v1/screening/whitelist/[0-9]+$", "clearance:write", "customs"),
        ("POST", r"^/v1/rates$", "rates:read", "logistics"),
        ("GET", r"^/v1/carriers$", "rates:read", "logistics"),
        ("POST", r"^/v1/shipments$", "shipments:write", "logistics"),
        ("POST", r"^/v1/shipments/[^/]+/cancel$", "shipments:write", "logistics"),
        ("GET", r"^/v1/shipments(/[^/]+(/label\.pdf)?)?$", "shipments:read", "logistics"),
    )
]
# Carriers call their webhooks at the door too; the carrier's signature is their key.
CARRIER_WEBHOOK = re.compile(r"^/v1/carriers/[^/]+/events$")


def operation(method: str, path: str) -> tuple[str, str | None] | None:
    for m, pattern, scope, service in OPERATIONS:
        if m == method and pattern.match(path):
            return scope, service
    return None


def owning_service(method: str, path: str) -> str | None:
    if method == "POST" and CARRIER_WEBHOOK.match(path):
        return "logistics"
    op = operation(method, path)
    return op[1] if op else None


@dataclass(frozen=True)
class Principal:
    partner_id: str
    role: str
    scopes: frozenset[str]
    key_id: str
    mode: str


@dataclass
class _Key:
    principal: Principal
    secret_hash: str
    expires_at: datetime | None
    revoked_at: datetime | None
    rate: float
    burst: float


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class KeyCache:
    """Every key of the hub in memory, reloaded from the database on an interval."""

    db: Database
    reload_interval: float = 0.5
    keys: dict[str, _Key] = field(default_factory=dict)
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def load(self) -> None:
        async with self.db.reader() as session:
            rows = (
                await session.execute(
                    select(PartnerKey, Partner).join(Partner, Partner.id == PartnerKey.partner_id)
                )
            ).all()
        self.keys = {
            k.id: _Key(
                Principal(p.id, p.role, frozenset(p.scopes), k.id, k.mode),
                k.secret_hash,
                k.expires_at,
                k.revoked_at,
                p.rate_per_second,
                p.burst,
            )
            for k, p in rows
        }

    async def run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.reload_interval)
            try:
                await self.load()
            except Exception:
                log.exception("reloading partner keys failed; keeping the last set")

    def stop(self) -> None:
        self._stop.set()

    async def find(self, key_id: str) -> _Key | None:
        found = self.keys.get(key_id)
        if found is None:  # made moments ago by the operator: look once more
            await self.load()
            found = self.keys.get(key_id)
        return found

    def take(self, key: _Key) -> tuple[bool, float, float]:
        """Token bucket: (allowed, tokens left, seconds until one token is back)."""
        now = time.monotonic()
        b = self.buckets.get(key.principal.key_id)
        if b is None:
            b = self.buckets[key.principal.key_id] = _Bucket(key.burst, now)
        b.tokens = min(key.burst, b.tokens + (now - b.at) * key.rate)
        b.at = now
        if b.tokens >= 1:
            b.tokens -= 1
            return True, b.tokens, 0.0
        return False, b.tokens, (1 - b.tokens) / key.rate


def _problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> bytes:
    body = {"type": f"{PROBLEM_BASE}{slug}", "title": title, "status": status, "detail": detail}
    body.update(extra)
    return json.dumps(body).encode()


class PartnerDoor:
    """ASGI middleware guarding ``/v1/`` (carrier webhooks excepted)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "POST" and CARRIER_WEBHOOK.match(path):
            await self.app(scope, receive, send)
            return
        cache: KeyCache | None = getattr(scope["app"].state, "keys", None)
        if cache is None:  # still starting
            await _answer(send, 503, _problem(503, "unavailable", "Starting", "try again"))
            return
        op = operation(method, path)
        if op is None:
            await self.app(scope, receive, send)  # 404 / 405 from the router
            return
        required, _service = op
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        parsed = parse_key(token) if token else None
        www = [(b"www-authenticate", b'Bearer realm="ehub"')]
        if parsed is None:
            detail = (
                "an API key is required: Authorization: Bearer ek_live_..."
                if not token
                else "malformed API key"
            )
            await _answer(send, 401, _problem(401, "unauthorized", "Unauthorized", detail), www)
            return
        _mode, key_id, secret = parsed
        key = await cache.find(key_id)
        now = datetime.now(UTC)
        if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
            await _answer(
                send, 401, _problem(401, "unauthorized", "Unauthorized", "unknown API key"), www
            )
            return
        if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            why = "revoked" if key.revoked_at is not None else "expired"
            await _answer(
                send,
                401,
                _problem(401, "unauthorized", "Unauthorized", f"API key {key_id} is {why}"),
                www,
            )
            return
        if required not in key.principal.scopes:
            await _answer(
                send,
                403,
                _problem(
                    403,
                    "missing-scope",
                    "Missing scope",
                    f"this operation needs the scope {required!r}",
                    scope=required,
                ),
            )
            return
        allowed, left, wait = cache.take(key)
        limit = [
            (b"ratelimit-limit", str(int(key.burst)).encode()),
            (b"ratelimit-remaining", str(int(left)).encode()),
            (b"ratelimit-reset", str(math.ceil((key.burst - left) / key.rate)).encode()),
        ]
        if not allowed:
            retry = str(max(1, math.ceil(wait))).encode()
            await _answer(
                send,
                429,
                _problem(
                    429,
                    "rate-limited",
                    "Too many requests",
                    f"key {key_id} may make {key.rate:g} requests/s (bursts of {key.burst:g})",
                ),
                [(b"retry-after", retry), *limit],
            )
            return
        scope.setdefault("state", {})["partner"] = key.principal

        async def send_with_limits(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *limit]}
            await send(message)

        await self.app(scope, receive, send_with_limits)


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""The webhook delivery worker: sends due deliveries, signed, and records every attempt.

- **Due**: ``pending``, ``next_attempt_at`` reached, no attempt underway (``leased_until``),
  and no older ``pending`` delivery for the same endpoint and subject — so one order's
  events reach an endpoint in the order they happened; a delivery that ends ``failed``
  no longer holds the next ones back.
- **Claiming across replicas**: a short transaction selects due rows with
  ``SELECT ... FOR UPDATE OF webhook_deliveries SKIP LOCKED`` on Postgres and sets a lease
  (``leased_until``, longer than the request timeout) before any request is sent; the
  lease, not a held transaction, keeps every other replica off the row while its attempt
  is underway, and SKIP LOCKED keeps replicas from waiting on each other's claims. No
  advisory lock: every replica delivers, none sends the same delivery concurrently. On
  SQLite (one process per database) the claim is one ``BEGIN IMMEDIATE`` transaction.
  A replica that dies mid-attempt leaves the lease to run out; the delivery is then
  attempted again under the same ``webhook-id`` (receivers deduplicate on it).
- **Answers**: 2xx is delivered; anything else (status, timeout, refused connection,
  redirect) is retried after a random delay in [0, min(backoff_max, backoff_base *
  2^(attempts-1))] (full jitter) until ``max_age`` after the event (or its redelivery),
  with a last attempt at that moment; then ``failed``.
- **Waking**: a commit that wrote deliveries wakes the worker (``service.wake_after_commit``);
  otherwise it looks every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import exists, insert, or_, select, update
from sqlalchemy.orm import aliased

from ehub_core import http_client
from ehub_core.db import Database
from ehub_gateway.settings import GatewaySettings
from ehub_gateway.webhooks import service
from ehub_gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from ehub_gateway.webhooks.service import DELIVERED, FAILED, PENDING

log = logging.getLogger("ehub.gateway.webhooks")

ERROR_SNIPPET = 300  # characters of a refusing answer's body kept as the attempt's error


class Refused(Exception):
    """The destination may not be called (it resolves to a forbidden address)."""


@dataclass(frozen=True)
class Claimed:
    seq: int
    id: str
    url: str
    secret: str
    payload: str


class WebhookWorker:
    def __init__(
        self,
        db: Database,
        *,
        max_age: float = 86400.0,
        backoff_base: float = 5.0,
        backoff_max: float = 3600.0,
        timeout: float = 10.0,
        concurrency: int = 32,
        poll_interval: float = 1.0,
        allow_http: bool = False,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.max_age = max_age
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.allow_http = allow_http
        # An attempt takes at most ``timeout`` (all of it: connect, send, answer); past the
        # lease another replica may try again.
        self.lease = timedelta(seconds=max(30.0, timeout * 3))
        self._own_client = client is None
        self.client = client or http_client.client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            trust_env=False,
        )
        self._inflight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    @classmethod
    def from_settings(cls, db: Database, settings: GatewaySettings) -> WebhookWorker:
        return cls(
            db,
            max_age=settings.webhook_max_age,
            backoff_base=settings.webhook_backoff_base,
            backoff_max=settings.webhook_backoff_max,
            timeout=settings.webhook_timeout,
            concurrency=settings.webhook_concurrency,
            poll_interval=settings.webhook_poll_interval,
            allow_http=settings.webhook_allow_http,
        )

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        service.add_listener(self)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await self.dispatch()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook dispatch failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            service.remove_listener(self)
            await self._finish()

    async def _finish(self) -> None:
        if self._inflight:  # let attempts underway record their answer, briefly
            _done, pending = await asyncio.wait(self._inflight, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._own_client:
            await self.client.aclose()

    async def dispatch(self) -> int:
        """Claim what is due (up to the free slots) and start its attempts."""
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        claimed = await self.claim(free)
        for c in claimed:
            task = asyncio.create_task(self.attempt(c), name=f"webhook:{c.id}")
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # the next delivery of that endpoint and subject may be due now

    async def run_once(self) -> int:
        """Claim what is due, send it and record the answers (tests, tools)."""
        claimed = await self.claim(self.concurrency)
        await asyncio.gather(*(self.attempt(c) for c in claimed))
        return len(claimed)

    # -- claiming -------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries (the head of each endpoint+subject chain)."""
        now = datetime.now(UTC)
        d = WebhookDelivery
        older = aliased(WebhookDelivery)
        held_back = (
            exists()
            .where(
                older.endpoint_id == d.endpoint_id,
                older.subject == d.subject,
                older.status == PENDING,
                older.seq < d.seq,
            )
            .correlate(d)
        )
        # Plain rows, not ORM objects: this runs after every batch of answers.
        stmt = (
            select(
                d.seq,
                d.id,
                d.payload,
                WebhookEndpoint.url,
                WebhookEndpoint.secret,
                WebhookEndpoint.disabled_at,
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == d.endpoint_id)
            .where(
                d.status == PENDING,
                d.next_attempt_at <= now,
                or_(d.leased_until.is_(None), d.leased_until <= now),
                ~held_back,
            )
            .order_by(d.seq)
            .limit(limit)
        )
        if self.db.is_postgres:
            stmt = stmt.with_for_update(of=d, skip_locked=True)
        async with self.db.transaction() as session:
            rows = (await session.execute(stmt)).all()
            if not rows:
                return []
            disabled = [r.seq for r in rows if r.disabled_at is not None]
            out = [
                Claimed(r.seq, r.id, r.url, r.secret, r.payload)
                for r in rows
                if r.disabled_at is None
            ]
            if disabled:  # disabled while the event was being emitted
                await session.execute(
                    update(d)
                    .where(d.seq.in_(disabled))
                    .values(status=FAILED, last_error="endpoint disabled", next_attempt_at=None)
                    .execution_options(synchronize_session=False)
                )
            if out:
                await session.execute(
                    update(d)
                    .where(d.seq.in_([c.seq for c in out]))
                    .values(leased_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
        return out

    # -- one attempt ----------------------------------------------------------------------

    async def attempt(self, c: Claimed) -> None:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            await self.check_destination(c.url)
            body = c.payload.encode()
            headers = service.headers_for(c.secret, c.id, int(time.time()), body)
            async with (
                asyncio.timeout(self.timeout),
                self.client.stream("POST", c.url, content=body, headers=headers) as resp,
            ):
                status = resp.status_code
                said = await _snippet(resp)  # read (a little) so the connection is reused
                if not 200 <= status < 300:
                    error = f"HTTP {status}: {said}" if said else f"HTTP {status}"
        except Refused as exc:
            error = f"refused: {exc}"
        except (TimeoutError, httpx.TimeoutException) as exc:
            error = f"timed out after {self.timeout:g} s ({exc.__class__.__name__})"
        except httpx.HTTPError as exc:
            error = f"{exc.__class__.__name__}: {exc}"[:1000]
        except Exception as exc:  # an unusable URL and the like: recorded, retried
            error = f"{exc.__class__.__name__}: {exc}"[:1000]
        duration_ms = int((time.monotonic() - started) * 1000)
        try:
            await self.record(c, status, error, duration_ms)
        except Exception:  # the lease runs out and the delivery is attempted again
            log.exception("recording webhook attempt %s failed", c.id)

    async def check_destination(self, url: str) -> None:
        """Refuse what registration refused, now against the addresses the host resolves
        to (a name registered harmlessly may point elsewhere later)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        if parts.scheme == "http" and not self.allow_http:
            raise Refused("http:// endpoints need EHUB_WEBHOOK_ALLOW_HTTP")
        if host in service.METADATA_HOSTS:
            raise Refused(f"{host} is a cloud metadata service")
        ip = service.literal_ip(host)
        if ip is not None:
            addresses = [ip]
        else:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise Refused(f"cannot resolve {host}: {exc}") from None
            found = {service.literal_ip(str(info[4][0])) for info in infos}
            addresses = [a for a in found if a is not None]
        for a in addresses:
            if (why := service.forbidden_ip(a)) is not None:
                raise Refused(f"{host} resolves to {a}, {why}")
            if parts.scheme == "http" and not a.is_loopback:
                raise Refused(f"http:// only to loopback; {host} resolves to {a}")

    def backoff(self, attempts: int) -> float:
        """Full jitter: a random delay up to base * 2^(attempts-1), capped."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(attempts - 1, 40))
        return random.uniform(0, ceiling)

    async def record(
        self, c: Claimed, status: int | None, error: str | None, duration_ms: int
    ) -> None:
        d = WebhookDelivery
        async with self.db.transaction() as session:
            stmt = select(d.status, d.attempts, d.retry_from).where(d.seq == c.seq)
            if self.db.is_postgres:
                stmt = stmt.with_for_update()
            row = (await session.execute(stmt)).one()
            now = datetime.now(UTC)
            await session.execute(
                insert(WebhookAttempt).values(
                    delivery_seq=c.seq,
                    at=now,
                    status_code=status,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            attempts = row.attempts + 1
            values: dict[str, Any] = {
                "attempts": attempts,
                "last_attempt_at": now,
                "last_status_code": status,
                "last_error": error,
                "leased_until": None,
            }
            if error is None:
                values.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
            elif row.status == PENDING:
                deadline = row.retry_from + timedelta(seconds=self.max_age)
                if now >= deadline:
                    values.update(status=FAILED, next_attempt_at=None)
                    log.warning(
                        "webhook %s to %s failed for good after %d attempts: %s",
                        c.id,
                        c.url,
                        attempts,
                        error,
                    )
                else:
                    delay = timedelta(seconds=self.backoff(attempts))
                    values["next_attempt_at"] = min(now + delay, deadline)
            await session.execute(
                update(d)
                .where(d.seq == c.seq)
                .values(**values)
                .execution_options(synchronize_session=False)
            )


async def _snippet(resp: httpx.Response) -> str:
    """The start of an answer's body (never all of it: a partner's server is not ours)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= ERROR_SNIPPET:
            break
    return b"".join(chunks)[:ERROR_SNIPPET].decode("utf-8", "replace").strip()

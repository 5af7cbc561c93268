"""Transactional outbox and its relay (ARCHITECTURE §4).

A service calls :func:`enqueue` (or :func:`enqueue_many`, one statement for many events)
in the transaction that changes its state, so the event exists exactly when the change
does; nothing else writes the outbox table. The :class:`OutboxRelay` publishes pending
rows to the bus in id order (acks=all) and only then marks them sent. A crash between
the two re-publishes on restart; consumers dedup through the inbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import propagate
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import metrics
from ehub_core.bus import BusUnavailable, EventBus, Message
from ehub_core.db import Database
from ehub_core.ids import uuid7
from ehub_core.models import OutboxRecord

log = logging.getLogger("ehub.outbox")

OUTBOX_DIRTY = "ehub_outbox_dirty"
_RELAY_LOCK = 0x0E_4B_0B_01  # advisory lock id of the outbox relay (per database)


async def enqueue(
    session: AsyncSession,
    *,
    topic: str,
    event_type: str,
    payload: bytes | Mapping[str, Any],
    key: str | None = None,
    event_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Add an event to the outbox in the session's transaction; return its event id.

    ``payload`` is bytes (e.g. a signed envelope) or a JSON-able mapping. The current
    trace context is stored with the event so the trace continues in the consumer.
    """
    event_id = event_id or str(uuid7())
    body = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
    hdrs: dict[str, str] = {"event_id": event_id, "event_type": event_type}
    propagate.inject(hdrs)
    if headers:
        hdrs.update(headers)
    session.add(
        OutboxRecord(
            id=str(uuid7()),
            event_id=event_id,
            event_type=event_type,
            topic=topic,
            key=key,
            payload=body,
            headers=hdrs,
            created_at=datetime.now(UTC),
            attempts=0,
        )
    )
    session.info[OUTBOX_DIRTY] = True
    return event_id


@dataclass(frozen=True)
class NewEvent:
    """One event for :func:`enqueue_many` (the arguments of :func:`enqueue`)."""

    topic: str
    event_type: str
    payload: bytes | Mapping[str, Any]
    key: str | None = None
    event_id: str | None = None
    headers: Mapping[str, str] | None = None


async def enqueue_many(
    session: AsyncSession,
    events: Sequence[NewEvent],
    *,
    current_trace: bool = True,
    now: datetime | None = None,
) -> list[str]:
    """Add ``events`` to the outbox in one multi-row statement, in the session's
    transaction; return their event ids.

    Headers are those of :func:`enqueue`. With ``current_trace=False`` the current trace
    context is not stored: an event relayed for another hub carries its own
    ``traceparent`` header, or none, never the relaying request's.
    """
    if not events:
        return []
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for ev in events:
        event_id = ev.event_id or str(uuid7())
        hdrs: dict[str, str] = {"event_id": event_id, "event_type": ev.event_type}
        if current_trace:
            propagate.inject(hdrs)
        if ev.headers:
            hdrs.update(ev.headers)
        payload = ev.payload
        rows.append(
            {
                "id": str(uuid7()),
                "event_id": event_id,
                "event_type": ev.event_type,
                "topic": ev.topic,
                "key": ev.key,
                "payload": payload
                if isinstance(payload, bytes)
                else json.dumps(payload, default=str).encode(),
                "headers": hdrs,
                "created_at": now,
                "attempts": 0,
            }
        )
    # A Core multi-row insert: one statement whatever the number of events.
    await session.execute(insert(OutboxRecord), rows)
    session.info[OUTBOX_DIRTY] = True
    return [str(r["event_id"]) for r in rows]


async def enqueue_again(session: AsyncSession, event_id: str) -> bool:
    """Publish the stored event ``event_id`` once more: its outbox row, if there is one,
    is marked pending again in the session's transaction. Return whether there is one."""
    existing = await session.scalar(
        select(OutboxRecord.id).where(OutboxRecord.event_id == event_id)
    )
    if existing is None:
        return False
    await session.execute(
        update(OutboxRecord)
        .where(OutboxRecord.id == existing, OutboxRecord.sent_at.is_not(None))
        .values(sent_at=None)
    )
    session.info[OUTBOX_DIRTY] = True
    return True


def to_message(row: Any) -> Message:
    """An outbox row (ORM object or Core row) as a bus message."""
    headers = row.headers
    if isinstance(headers, str):  # some drivers hand JSON back undecoded
        headers = json.loads(headers)
    payload = row.payload
    return Message(
        row.topic,
        payload if type(payload) is bytes else bytes(payload),
        row.key.encode() if row.key else None,
        tuple([(k, v.encode()) for k, v in headers.items()]) if headers else (),
    )


class OutboxRelay:
    """Publishes committed outbox rows; one per service process."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        service: str = "service",
        batch_size: int = 500,
        poll_interval: float = 0.5,
        max_backoff: float = 10.0,
        audit_interval: float = 5.0,
        replay_window: float = 120.0,
        replay_on_start: bool = True,
    ) -> None:
        self.db = db
        self.bus = bus
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.audit_interval = audit_interval
        self.replay_window = replay_window
        self._replay_pending = replay_on_start
        self._audited_at = 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.healthy = False

    def notify(self) -> None:
        """Wake the relay now (called after a commit that enqueued events)."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish every pending row, in id order; return how many were published.

        Pipelined: while batch N awaits the broker's acks, batch N+1 is read, and batch
        N is marked sent while N+1 is in flight. A batch is marked sent only after the
        broker acknowledged all of it; batch N+1 is sent only after N was acknowledged,
        so per-key order holds. Rows committed late with an earlier id stay pending and
        are picked up by the next call (the scan restarts from the beginning).
        """
        total = 0
        after: str | None = None
        inflight: tuple[list[str], asyncio.Task[dict[int, str]]] | None = None
        try:
            while True:
                rows = await self._fetch(after)
                nxt: tuple[list[str], asyncio.Task[dict[int, str]]] | None = None
                if inflight is not None:
                    ids, task = inflight
                    inflight = None
                    try:
                        refused = await task
                    except BusUnavailable as exc:
                        await self._record_failure(ids, str(exc))
                        raise
                    if rows:
                        nxt = self._start(rows)
                    dead = {ids[i]: reason for i, reason in refused.items()}
                    sent = [i for i in ids if i not in dead]
                    await self._mark_sent_ids(sent, dead)
                    total += len(sent)
                    metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(sent))
                elif rows:
                    nxt = self._start(rows)
                if nxt is None:
                    return total
                inflight = nxt
                after = nxt[0][-1]
        finally:
            if inflight is not None:  # an error left a batch in flight: it stays pending
                inflight[1].cancel()
                await asyncio.gather(inflight[1], return_exceptions=True)

    def _start(self, rows: list[Any]) -> tuple[list[str], asyncio.Task[dict[int, str]]]:
        messages = [to_message(r) for r in rows]
        return [r.id for r in rows], asyncio.create_task(self.bus.publish(messages))

    async def _fetch(self, after: str | None) -> list[Any]:
        t = OutboxRecord.__table__
        # Core rows, not ORM objects: the relay is a hot loop and needs no identity map.
        stmt = (
            select(t.c.id, t.c.topic, t.c.key, t.c.payload, t.c.headers)
            .where(t.c.sent_at.is_(None))
            .order_by(t.c.id)
            .limit(self.batch_size)
        )
        if after is not None:
            stmt = stmt.where(t.c.id > after)
        async with self.db.reader() as session:
            return list((await session.execute(stmt)).all())

    async def _record_failure(self, ids: list[str], error: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(OutboxRecord)
                .where(OutboxRecord.id.in_(ids))
                .values(attempts=OutboxRecord.attempts + 1, last_error=error[:2000])
            )

    async def _mark_sent_ids(self, ids: list[str], dead: Mapping[str, str] | None = None) -> None:
        async with self.db.transaction() as session:
            if ids:
                await self._mark_sent(session, ids)
            if dead:
                await self._dead_letter(session, dead)

    async def _dead_letter(self, session: AsyncSession, dead: Mapping[str, str]) -> None:
        """Rows the broker refused for good (too large, an invalid topic): out of the way
        of the rows behind them, kept with the reason for an operator to look at
        (``dead_at`` set, never published again, not even by a replay)."""
        now = datetime.now(UTC)
        for row_id, reason in dead.items():
            await session.execute(
                update(OutboxRecord)
                .where(OutboxRecord.id == row_id)
                .values(
                    sent_at=now,
                    dead_at=now,
                    attempts=OutboxRecord.attempts + 1,
                    last_error=reason[:2000],
                )
            )
        metrics.OUTBOX_DEAD.labels(self.service).inc(len(dead))
        log.error(
            "outbox relay: the broker refused %d row(s) for good; dead-lettered: %s",
            len(dead),
            "; ".join(f"{k}: {v[:200]}" for k, v in dead.items()),
        )

    async def _mark_sent(self, session: AsyncSession, ids: list[str]) -> None:
        await session.execute(
            update(OutboxRecord).where(OutboxRecord.id.in_(ids)).values(sent_at=datetime.now(UTC))
        )

    async def replay_lost(self, *, now: float | None = None) -> int:
        """Every ``audit_interval`` s, ask the bus whether the broker lost records it had
        acknowledged (the embedded broker forgets its log when it restarts); if so, mark
        this outbox's rows of those topics sent in the last ``replay_window`` s pending
        again, so the next publish sends them once more. Consumers' inboxes skip the
        copies they had. Returns how many rows were marked."""
        now = time.monotonic() if now is None else now
        if now - self._audited_at < self.audit_interval:
            return 0
        self._audited_at = now
        lost = await self.bus.lost_topics()
        if not lost:
            return 0
        since = datetime.now(UTC) - timedelta(seconds=self.replay_window)
        async with self.db.transaction() as session:
            result = await session.execute(
                update(OutboxRecord)
                .where(
                    OutboxRecord.topic.in_(sorted(lost)),
                    OutboxRecord.sent_at.is_not(None),
                    OutboxRecord.dead_at.is_(None),
                    OutboxRecord.sent_at >= since,
                )
                .values(sent_at=None)
            )
        count = int(getattr(result, "rowcount", 0) or 0)
        metrics.OUTBOX_REPLAYED.labels(self.service).inc(count)
        log.warning(
            "outbox relay: the broker lost records of %s; publishing %d rows of the last "
            "%.0f s again",
            ", ".join(sorted(lost)),
            count,
            self.replay_window,
        )
        return count

    async def replay_window_once(self) -> int:
        """At start, publish again what was sent in the last ``replay_window`` s.

        The audit (:meth:`replay_lost`) knows what the broker acknowledged only since
        this process started: a broker that lost its log while no relay of this database
        was running (the service restarting as the broker did, as the crash test makes
        happen) goes unseen otherwise, and those events would be lost to their consumers.
        Consumers skip the copies they had (inbox, or idempotent by domain key). Off
        (``EHUB_RELAY_REPLAY_ON_START=false``) on a replicated Kafka that does not lose
        what it acknowledged with ``acks=all``."""
        if self.replay_window <= 0:
            return 0
        since = datetime.now(UTC) - timedelta(seconds=self.replay_window)
        async with self.db.transaction() as session:
            result = await session.execute(
                update(OutboxRecord)
                .where(
                    OutboxRecord.sent_at.is_not(None),
                    OutboxRecord.dead_at.is_(None),
                    OutboxRecord.sent_at >= since,
                )
                .values(sent_at=None)
            )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            metrics.OUTBOX_REPLAYED.labels(self.service).inc(count)
            log.info(
                "outbox relay: started; publishing again the %d rows sent in the last %.0f s",
                count,
                self.replay_window,
            )
        return count

    async def pending_count(self) -> int:
        async with self.db.reader() as session:
            stmt = (
                select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))
            )
            return int((await session.scalar(stmt)) or 0)

    async def run(self) -> None:
        """Relay until :meth:`stop`; back off exponentially while the broker is down."""
        backoff = self.poll_interval
        while not self._stopping.is_set():
            try:
                async with self._leadership() as leader:
                    if leader:
                        if self._replay_pending:
                            await self.replay_window_once()
                            self._replay_pending = False
                        await self.publish_pending()
                        self.healthy = True
                        if await self.replay_lost():
                            await self.publish_pending()
                backoff = self.poll_interval
            except BusUnavailable as exc:
                self.healthy = False
                log.warning("outbox relay: broker unavailable (%s); retry in %.1fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay iteration failed")
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            await self._sleep(self.poll_interval)

    @asynccontextmanager
    async def _leadership(self) -> AsyncIterator[bool]:
        """On Postgres, only the replica holding an advisory lock relays (no double
        publishing across replicas); SQLite has one process per database."""
        if not self.db.is_postgres:
            yield True
            return
        async with self.db.engine.connect() as conn:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _RELAY_LOCK})
            try:
                yield bool(got)
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _RELAY_LOCK})
                await conn.commit()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiter, stopper}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            waiter.cancel()
            stopper.cancel()

    def stop(self) -> None:
        self._stopping.set()

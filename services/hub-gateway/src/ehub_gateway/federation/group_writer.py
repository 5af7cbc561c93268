"""Group commit for federation ingest over HTTP.

Each signed request's cryptography (HTTP signature, every envelope) runs in its own
handler, outside any transaction; what must be written — its nonce, its events' inbox
entries, the received rows and their republication — is handed to one writer task,
which takes whatever requests are waiting and records them all in one transaction, with
one multi-row statement per table. The handler answers (with its signed receipt) only
after that transaction committed, so nothing acknowledged is lost; a failed transaction
fails every request in it, and their senders retry. Per-transaction costs (begin,
commit, one round trip per statement) are then paid once per group, not per request.

Whether each sender may speak of the orders its events are about is judged here too, in
the transaction that records them (``parties.py``), requests in their order of arrival: a
refused request is answered 403 and keeps nothing, not even its nonce, while the others
of its group go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import and_, delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database, insert_new
from ehub_core.envelope import VerifiedEnvelope
from ehub_core.inbox import consume_many
from ehub_core.models import NonceRecord
from ehub_core.outbox import OUTBOX_DIRTY, OutboxRelay
from ehub_gateway.federation.ingest import INBOX_CONSUMER, NewRows, id_conflicts
from ehub_gateway.federation.parties import NotOrderParty, OrderClaim, OrderParties

log = logging.getLogger("ehub.gateway.ingest")


@dataclass(frozen=True)
class Nonce:
    kid: str
    nonce: str
    expires_at: datetime


class DeferredNonces:
    """A :class:`~ehub_core.signing.NonceStore` that only remembers the nonce: the group
    writer checks and stores it, in the same transaction as the request's effect."""

    def __init__(self) -> None:
        self.seen: Nonce | None = None

    async def check_and_store(self, kid: str, nonce: str, expires_at: datetime) -> bool:
        self.seen = Nonce(kid, nonce, expires_at)
        return True


@dataclass
class IngestJob:
    nonce: Nonce
    good: Sequence[tuple[bytes, VerifiedEnvelope]]
    via: str
    sender_hub: str
    claims: Sequence[OrderClaim] = ()
    future: asyncio.Future[tuple[bool, set[str], set[tuple[str, str]]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


# A job's outcome: (nonce was fresh, ids of the events that took effect), or its refusal.
# (nonce fresh, ids taken now, (id, digest) of copies of ids held here with other bytes
# or from another hub)
JobResult = tuple[bool, set[str], set[tuple[str, str]]] | NotOrderParty


class IngestWriter:
    def __init__(
        self, db: Database, own_hub: str, relay: OutboxRelay | None, max_jobs: int = 256
    ) -> None:
        self.db = db
        self.own_hub = own_hub
        self.relay = relay
        self.max_jobs = max_jobs
        self._queue: list[IngestJob] = []
        self._wake = asyncio.Event()
        self._stopping = False

    async def submit(self, job: IngestJob) -> tuple[bool, set[str], set[tuple[str, str]]]:
        """Record the job; return (nonce was fresh, ids of the events that took effect,
        (id, digest) of the events whose id is held here with other bytes or hub).
        Raises :class:`NotOrderParty` if its sender may not speak of an order it names."""
        self._queue.append(job)
        self._wake.set()
        return await job.future

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            jobs, self._queue = self._queue[: self.max_jobs], self._queue[self.max_jobs :]
            try:
                async with self.db.transaction() as session:
                    results = await self._apply(session, jobs)
            except asyncio.CancelledError:
                for job in jobs:
                    job.future.cancel()
                raise
            except Exception as exc:
                log.exception("ingest group of %d request(s) failed", len(jobs))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(result, NotOrderParty):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
            if self.relay is not None:
                self.relay.notify()

    async def _apply(self, session: AsyncSession, jobs: Sequence[IngestJob]) -> list[JobResult]:
        fresh_nonces = await self._store_nonces(session, [j.nonce for j in jobs])
        admitted: list[bool] = []
        for job in jobs:
            key = (job.nonce.kid, job.nonce.nonce)
            # A nonce twice in one group: the first request has it, the second is a replay.
            admitted.append(key in fresh_nonces)
            fresh_nonces.discard(key)
        refusals = await self._judge(session, jobs, admitted)
        # A refused request keeps nothing: its nonce is given back, as a request refused
        # before the group writer never stored it.
        refused = [j.nonce for j, r in zip(jobs, refusals, strict=True) if r is not None]
        await self._forget_nonces(session, refused)
        event_ids = [
            v.envelope.event_id
            for job, ok, refusal in zip(jobs, admitted, refusals, strict=True)
            if ok and refusal is None
            for _, v in job.good
        ]
        fresh = await consume_many(session, event_ids=event_ids, consumer=INBOX_CONSUMER)
        now = datetime.now(UTC)
        rows = NewRows()
        results: list[JobResult] = []
        held: dict[str, tuple[str, str]] = {}  # taken in this group: (source hub, digest)
        for job, ok, refusal in zip(jobs, admitted, refusals, strict=True):
            if refusal is not None:
                results.append(refusal)
                continue
            taken: set[str] = set()
            conflicts: set[tuple[str, str]] = set()
            if ok:
                for data, verified in job.good:
                    event_id = verified.envelope.event_id
                    if event_id in fresh:
                        fresh.discard(event_id)  # an event twice in the group counts once
                        taken.add(event_id)
                        held[event_id] = (verified.envelope.source_hub, verified.digest)
                        rows.add(data, verified, own_hub=self.own_hub, via=job.via, now=now)
                if len(taken) < len(job.good):  # a copy of an id held before, or twice
                    conflicts = await id_conflicts(session, job.good, held)
            results.append((ok, taken, conflicts))
        await rows.write(session)
        if rows.received:
            session.info[OUTBOX_DIRTY] = True
        return results

    async def _judge(
        self, session: AsyncSession, jobs: Sequence[IngestJob], admitted: Sequence[bool]
    ) -> list[NotOrderParty | None]:
        """Each admitted job's refusal, if its sender may not speak of an order it names;
        judged in arrival order, so an order placed by one job is known to the next."""
        claims = [c for job, ok in zip(jobs, admitted, strict=True) if ok for c in job.claims]
        if not claims:
            return [None] * len(jobs)
        parties = await OrderParties.load(session, self.own_hub, claims)
        return [
            parties.judge(job.claims, job.sender_hub) if ok and job.claims else None
            for job, ok in zip(jobs, admitted, strict=True)
        ]

    async def _forget_nonces(self, session: AsyncSession, nonces: Sequence[Nonce]) -> None:
        if nonces:
            await session.execute(
                delete(NonceRecord).where(
                    or_(
                        *(
                            and_(NonceRecord.key_id == n.kid, NonceRecord.nonce == n.nonce)
                            for n in nonces
                        )
                    )
                )
            )

    async def _store_nonces(
        self, session: AsyncSession, nonces: Sequence[Nonce]
    ) -> set[tuple[str, str]]:
        rows = [{"key_id": n.kid, "nonce": n.nonce, "expires_at": n.expires_at} for n in nonces]
        return {
            (k, n) for k, n in await insert_new(session, NonceRecord, rows, ("key_id", "nonce"))
        }

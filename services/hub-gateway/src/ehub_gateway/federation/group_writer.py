"""Group commit for federation ingest, over HTTP and the backbone alike.

Each request's cryptography (HTTP signature, every envelope) runs in its own handler,
outside any transaction; what must be written is handed to one writer task as an
:class:`~ehub_gateway.federation.ingest_record.IngestJob`, which takes whatever jobs are
waiting and records them all in one transaction (``ingest_record.py``), with one
multi-row statement per table. A handler answers only after that transaction committed,
so nothing acknowledged is lost; a failed transaction fails every job in it, and their
senders retry. Per-transaction costs (begin, commit, one round trip per statement) are
then paid once per group, not per request.

Each job gets its signed receipt from here. A backbone job's receipt is written to the
outbox (for the sender's ``ehub.fed.<hub>`` topic) in the transaction that records its
events, so it is not lost if the broker is briefly unreachable; an HTTP job's receipt is
the response, signed after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database
from ehub_core.outbox import OutboxRelay, enqueue
from ehub_core.signing import HubKey
from ehub_gateway.federation.ingest import count_ingested, sign_job_receipt
from ehub_gateway.federation.ingest_record import (
    IngestJob,
    JobResult,
    Recorded,
    record_jobs,
)
from ehub_gateway.federation.parties import NotOrderParty

log = logging.getLogger("ehub.gateway.ingest")


class IngestWriter:
    def __init__(
        self,
        db: Database,
        own_hub: str,
        relay: OutboxRelay | None,
        key: Callable[[], HubKey],
        max_jobs: int = 256,
    ) -> None:
        self.db = db
        self.own_hub = own_hub
        self.relay = relay
        self.key = key
        self.max_jobs = max_jobs
        self._queue: list[IngestJob] = []
        self._wake = asyncio.Event()
        self._stopping = False

    async def submit(self, job: IngestJob) -> tuple[Recorded, bytes]:
        """Record the job; return what became of it and its signed receipt. Raises
        :class:`NotOrderParty` if its sender may not speak of an order it names."""
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
            now = datetime.now(UTC)
            try:
                async with self.db.transaction() as session:
                    results = await record_jobs(session, self.own_hub, jobs, now)
                    receipts = await self._backbone_receipts(session, jobs, results, now)
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
            for i, (job, result) in enumerate(zip(jobs, results, strict=True)):
                if job.future.done():
                    continue
                if isinstance(result, NotOrderParty):
                    job.future.set_exception(result)
                    continue
                count_ingested(self.own_hub, job, result)
                receipt = receipts.get(i, b"")
                if not receipt and result.fresh_nonce:  # a replayed request gets a 401
                    receipt = sign_job_receipt(job, result, self.key(), now)
                job.future.set_result((result, receipt))
            if self.relay is not None:
                self.relay.notify()

    async def _backbone_receipts(
        self,
        session: AsyncSession,
        jobs: Sequence[IngestJob],
        results: Sequence[JobResult],
        now: datetime,
    ) -> dict[int, bytes]:
        """Sign and enqueue the receipts of the jobs that want theirs sent back over the
        backbone; return them by job index."""
        out: dict[int, bytes] = {}
        for i, (job, result) in enumerate(zip(jobs, results, strict=True)):
            if job.receipt_topic is None or isinstance(result, NotOrderParty):
                continue
            out[i] = sign_job_receipt(job, result, self.key(), now)
            await enqueue(
                session,
                topic=job.receipt_topic,
                event_type="Receipt",
                payload=out[i],
                key=self.own_hub,
                headers={"kind": "receipt", "source_hub": self.own_hub},
            )
        return out

"""Delivering sealed events to peers until each is receipted.

Over HTTP, a batch goes in one signed ``POST /federation/v1/events`` and the signed
receipt comes back in the (signed) response. Over the backbone, each envelope is
published to the peer's ``ehub.fed.<hub>`` topic and the receipt comes back as a message
on ours; an event not receipted within ``receipt_timeout`` is sent again, which covers a
broker that lost it (each further re-send waits twice as long, up to
``receipt_timeout_max``); after ``backbone_http_fallback`` unanswered attempts every
other one goes over HTTP. Failures back off exponentially with full jitter; after
``delivery_max_attempts`` an event goes to the dead-letter state for an operator
(``ehub dlq list`` / ``ehub dlq replay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from ehub_core import metrics
from ehub_core.bus import BusUnavailable, EventBus, Message
from ehub_core.db import Database
from ehub_core.envelope import verify_receipt
from ehub_core.proto.ehub.v1.envelope_pb2 import EnvelopeBatch
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt, ReceiptOutcome
from ehub_core.signing import KeyRing, SignatureError, verify_response
from ehub_core.signing.errors import Reason
from ehub_gateway.federation.models import OutboundEvent, StoredReceipt
from ehub_gateway.federation.outbound import reseal
from ehub_gateway.federation.trust import PeerInfo, TrustStore
from ehub_gateway.settings import GatewaySettings

log = logging.getLogger("ehub.gateway.delivery")

BATCH_CONTENT_TYPE = "application/x-protobuf; messageType=ehub.v1.EnvelopeBatch"
RECEIPT_CONTENT_TYPE = "application/x-protobuf; messageType=ehub.v1.SignedReceipt"
# Rejections that a later attempt can cure: the peer does not know our key yet, etc.
_RETRYABLE = {Reason.UNKNOWN_KEY, Reason.KEY_NOT_YET_VALID, Reason.CLOCK_SKEW}
_ACCEPTED = {ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED, ReceiptOutcome.RECEIPT_OUTCOME_DUPLICATE}


def _forbidden_event(resp: httpx.Response, rows: Sequence[OutboundEvent]) -> str | None:
    """The event a 403 problem names (``event_id``), if it is one of ``rows``."""
    try:
        named = resp.json().get("event_id")
    except (ValueError, AttributeError):
        return None
    return named if named in {r.event_id for r in rows} else None


def fed_topic(hub_id: str) -> str:
    return f"ehub.fed.{hub_id.lower()}"


class DeliveryWorker:
    def __init__(
        self,
        *,
        db: Database,
        settings: GatewaySettings,
        keyring: KeyRing,
        trust: TrustStore,
        client: httpx.AsyncClient,
        bus: EventBus | None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.keyring = keyring
        self.trust = trust
        self.client = client
        self.bus = bus
        self.hub = settings.hub_id
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                sent = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery round failed")
                sent = 0
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)

    async def deliver_due(self) -> int:
        """Send every due event once; return how many were attempted."""
        now = datetime.now(UTC)
        async with self.db.reader() as session:
            rows = (
                await session.scalars(
                    select(OutboundEvent)
                    .where(
                        OutboundEvent.status.in_(("pending", "sent")),
                        OutboundEvent.next_attempt_at <= now,
                    )
                    .order_by(OutboundEvent.created_at, OutboundEvent.event_id)
                    .limit(self.settings.delivery_batch_size * 10)
                )
            ).all()
        by_peer: dict[tuple[str, str], list[OutboundEvent]] = defaultdict(list)
        for row in rows:
            peer = self.trust.peer(row.target_hub)
            transport = row.transport or (peer.transport if peer else "http")
            if transport == "kafka" and (self.bus is None or self._try_http(row)):
                transport = "http"
            by_peer[(row.target_hub, transport)].append(row)
        size = self.settings.delivery_batch_size
        for (target, transport), group in by_peer.items():
            peer = self.trust.peer(target)
            for i in range(0, len(group), size):
                chunk = group[i : i + size]
                if peer is None:
                    await self._retry(chunk, f"{target} is not a known peer")
                elif transport == "kafka":
                    await self._send_kafka(peer, chunk)
                else:
                    await self._send_http(peer, chunk)
        return len(rows)

    # -- HTTP ----------------------------------------------------------------------------

    async def _send_http(self, peer: PeerInfo, rows: Sequence[OutboundEvent]) -> None:
        body = EnvelopeBatch(envelopes=[r.envelope for r in rows]).SerializeToString()
        try:
            resp = await self.client.post(
                peer.events_url, content=body, headers={"Content-Type": BATCH_CONTENT_TYPE}
            )
        except httpx.HTTPError as exc:
            await self._retry(rows, f"{peer.hub_id} unreachable: {exc.__class__.__name__}: {exc}")
            return
        if resp.status_code == 403 and (culprit := _forbidden_event(resp, rows)) is not None:
            await self._refused(rows, culprit, f"{peer.hub_id} refused it (403): {resp.text[:300]}")
            return
        if resp.status_code != 200:
            await self._retry(rows, f"{peer.hub_id} answered {resp.status_code}: {resp.text[:300]}")
            return
        try:
            await verify_response(
                resp.status_code,
                resp.headers,
                resp.content,
                request_method="POST",
                request_url=str(resp.request.url),
                request_headers=resp.request.headers,
                resolve_key=self.trust.resolve,
                expected_hub=peer.hub_id,
                clock_skew=self.settings.clock_skew,
            )
            receipt = verify_receipt(
                resp.content,
                self.trust.resolve,
                expected_receiver=peer.hub_id,
                expected_sender=self.hub,
                clock_skew=self.settings.clock_skew,
            )
        except SignatureError as exc:
            await self._retry(rows, f"unverifiable answer from {peer.hub_id}: {exc}")
            return
        await self.apply_receipt(receipt, resp.content, rows=rows)

    # -- backbone ------------------------------------------------------------------------

    async def _send_kafka(self, peer: PeerInfo, rows: Sequence[OutboundEvent]) -> None:
        assert self.bus is not None
        messages = []
        for r in rows:
            headers = [
                ("event_id", r.event_id.encode()),
                ("kind", b"envelope"),
                ("source_hub", self.hub.encode()),
            ]
            messages.append(
                Message(fed_topic(peer.hub_id), r.envelope, r.subject.encode(), tuple(headers))
            )
        try:
            await self.bus.publish(messages)
        except BusUnavailable as exc:
            await self._retry(rows, f"backbone unavailable: {exc}")
            return
        # Sent; the receipt arrives on our topic. Until then it is re-sent on a timeout.
        now = datetime.now(UTC)
        async with self._unreceipted(rows) as pending:
            for row in pending:
                row.status = "sent"
                row.attempts += 1
                row.sent_at = now
                row.next_attempt_at = now + timedelta(seconds=self._receipt_wait(row.attempts))
                if row.attempts >= self.settings.delivery_max_attempts:
                    row.status = "dead"
                    row.last_error = f"no receipt after {row.attempts} sends over the backbone"

    # -- outcomes ------------------------------------------------------------------------

    async def apply_receipt(
        self, receipt: Receipt, signed: bytes, rows: Sequence[OutboundEvent] | None = None
    ) -> int:
        """Mark what a verified receipt confirms; return how many rows it receipted."""
        now = datetime.now(UTC)
        entries = {e.event_id: e for e in receipt.entries}
        ids = [r.event_id for r in rows] if rows is not None else list(entries)
        done = 0
        async with self.db.transaction() as session:
            current = (
                await session.scalars(select(OutboundEvent).where(OutboundEvent.event_id.in_(ids)))
            ).all()
            stored = False
            for row in current:
                if row.status == "receipted":
                    continue
                entry = entries.get(row.event_id)
                if entry is None:
                    self._backoff(row, "not in the peer's receipt", now)
                elif entry.outcome in _ACCEPTED and entry.envelope_sha256 == bytes.fromhex(
                    row.digest
                ):
                    if not stored:
                        await session.merge(
                            StoredReceipt(
                                receipt_id=receipt.receipt_id,
                                receiver_hub=receipt.receiver_hub,
                                signed_receipt=signed,
                                received_at=now,
                            )
                        )
                        stored = True
                    row.status = "receipted"
                    row.receipt_id = receipt.receipt_id
                    row.receipted_at = now
                    row.last_error = None
                    done += 1
                elif entry.outcome == ReceiptOutcome.RECEIPT_OUTCOME_REJECTED:
                    if entry.reason_code == Reason.KEY_EXPIRED:
                        reseal(row, self.keyring.active_key())
                        self._backoff(row, "re-sealed: the signing key had expired", now)
                    elif entry.reason_code in _RETRYABLE:
                        self._backoff(row, f"rejected ({entry.reason_code}); will retry", now)
                    else:
                        row.status = "dead"
                        row.last_error = f"rejected by {receipt.receiver_hub}: {entry.reason_code}"
                else:
                    self._backoff(row, "receipt digest does not match", now)
        if done:
            metrics.FED_RECEIPTED.labels(self.hub).inc(done)
        return done

    def _try_http(self, row: OutboundEvent) -> bool:
        """Whether this attempt at a backbone event goes over signed HTTP instead.

        After ``backbone_http_fallback`` attempts without a receipt, every other attempt
        uses HTTP, whose answer carries the receipt. The backbone can fail in ways the
        sender cannot see: a broker that lost its data leaves consumers waiting at
        offsets past the end of the new log, so neither the events nor the receipts
        that follow are read for a long time. Alternating (rather than switching) keeps
        delivery going when it is HTTP that cannot get through.
        """
        after = self.settings.backbone_http_fallback
        return after > 0 and row.attempts >= after and (row.attempts - after) % 2 == 0

    def _receipt_wait(self, sends: int) -> float:
        """How long to wait for a receipt after the ``sends``-th send before sending again.

        Doubling, as TCP does with its retransmission timeout: a fixed interval re-sends
        every unreceipted event again and again while the peer is still working through
        its backlog (after a restart, or a rebalance of its consumer group), and each copy
        lengthens the backlog it has to get through before it can answer.
        """
        base = self.settings.receipt_timeout
        return min(base * 2 ** min(sends - 1, 30), max(base, self.settings.receipt_timeout_max))

    @asynccontextmanager
    async def _unreceipted(
        self, rows: Sequence[OutboundEvent]
    ) -> AsyncIterator[Sequence[OutboundEvent]]:
        """The current versions of ``rows`` not yet receipted, in a write transaction (a
        receipt may have arrived over the backbone since they were read)."""
        ids = [r.event_id for r in rows]
        async with self.db.transaction() as session:
            yield (
                await session.scalars(
                    select(OutboundEvent).where(
                        OutboundEvent.event_id.in_(ids), OutboundEvent.status != "receipted"
                    )
                )
            ).all()

    def _backoff(self, row: OutboundEvent, error: str, now: datetime) -> None:
        row.attempts += 1
        row.last_error = error[:2000]
        if row.attempts >= self.settings.delivery_max_attempts:
            row.status = "dead"
            return
        cap = min(
            self.settings.delivery_backoff_max,
            self.settings.delivery_backoff_base * 2 ** (row.attempts - 1),
        )
        # Full jitter: many hubs retrying at once spread out instead of stampeding.
        row.next_attempt_at = now + timedelta(seconds=random.uniform(cap / 2, cap))

    async def _refused(self, rows: Sequence[OutboundEvent], culprit: str, error: str) -> None:
        """The peer refused the whole batch because of one event it named (403: we may
        not send it). That event is dead-lettered for good; the others were not judged
        and go again at once, so one forbidden event never holds back its batch."""
        log.warning("event %s dead-lettered: %s", culprit, error)
        now = datetime.now(UTC)
        async with self._unreceipted(rows) as pending:
            for row in pending:
                if row.event_id == culprit:
                    row.attempts += 1
                    row.status = "dead"
                    row.last_error = error[:2000]
                else:
                    row.next_attempt_at = now

    async def _retry(self, rows: Sequence[OutboundEvent], error: str) -> None:
        log.warning("delivery of %d event(s) failed: %s", len(rows), error)
        now = datetime.now(UTC)
        async with self._unreceipted(rows) as pending:
            for row in pending:
                self._backoff(row, error, now)

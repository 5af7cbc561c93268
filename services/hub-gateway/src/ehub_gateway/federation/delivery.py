"""Delivering sealed events to peers until each is receipted.

The :class:`DeliveryWorker` takes the due events (``outbound_store.py``), groups them by
peer and transport and hands each batch to its sender: signed HTTP
(``delivery_http.py``) or the backbone (``delivery_kafka.py``). After
``backbone_http_fallback`` unanswered attempts over the backbone every other one goes
over HTTP. Receipts are applied by ``receipts.py``; failed attempts back off
exponentially with full jitter and, after ``delivery_max_attempts``, are dead-lettered
(``delivery_outcomes.py``; ``ehub dlq list`` / ``ehub dlq replay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from ehub_core.bus import EventBus
from ehub_core.db import Database
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt
from ehub_core.signing import KeyRing
from ehub_gateway.federation import outbound_store
from ehub_gateway.federation.delivery_http import HttpSender
from ehub_gateway.federation.delivery_kafka import KafkaSender, unanswered
from ehub_gateway.federation.delivery_outcomes import Outcomes, dead_letter
from ehub_gateway.federation.models import DeliveryStatus, OutboundEvent
from ehub_gateway.federation.receipts import ReceiptBook
from ehub_gateway.federation.trust import TrustStore
from ehub_gateway.settings import GatewaySettings

log = logging.getLogger("ehub.gateway.delivery")


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
        self.trust = trust
        self.hub = settings.hub_id
        self.outcomes = Outcomes(db, settings)
        self.receipts = ReceiptBook(self.hub, keyring, self.outcomes)
        self.http = HttpSender(
            hub=self.hub,
            client=client,
            trust=trust,
            clock_skew=settings.clock_skew,
            outcomes=self.outcomes,
            receipts=self.receipts,
        )
        self.kafka = (
            KafkaSender(hub=self.hub, bus=bus, settings=settings, outcomes=self.outcomes)
            if bus is not None
            else None
        )
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

    async def apply_receipt(self, receipt: Receipt, signed: bytes) -> int:
        """Apply a verified receipt that came over the backbone."""
        return await self.receipts.apply(receipt, signed)

    async def deliver_due(self) -> int:
        """Send every due event once; return how many were attempted."""
        rows = await outbound_store.due(
            self.db, datetime.now(UTC), self.settings.delivery_batch_size * 10
        )
        by_peer: dict[tuple[str, str], list[OutboundEvent]] = defaultdict(list)
        out_of_attempts = []
        for row in rows:
            if (
                row.status == DeliveryStatus.SENT
                and row.attempts >= self.settings.delivery_max_attempts
            ):
                out_of_attempts.append(row)
                continue
            peer = self.trust.peer(row.target_hub)
            transport = row.transport or (peer.transport if peer else "http")
            if transport == "kafka" and (self.kafka is None or self._try_http(row)):
                transport = "http"
            by_peer[(row.target_hub, transport)].append(row)
        if out_of_attempts:
            await self._give_up(out_of_attempts)
        size = self.settings.delivery_batch_size
        for (target, transport), group in by_peer.items():
            peer = self.trust.peer(target)
            for i in range(0, len(group), size):
                chunk = group[i : i + size]
                if peer is None:
                    await self.outcomes.retry(chunk, f"{target} is not a known peer")
                elif transport == "kafka" and self.kafka is not None:
                    await self.kafka.send(peer, chunk)
                else:
                    await self.http.send(peer, chunk)
        return len(rows)

    async def _give_up(self, rows: Sequence[OutboundEvent]) -> None:
        """Dead-letter backbone events out of attempts whose last send got no receipt in
        time (a receipt arriving later still settles them)."""
        now = datetime.now(UTC)
        async with outbound_store.unreceipted(self.db, rows) as pending:
            for row in pending:
                if row.status == DeliveryStatus.SENT:
                    dead_letter(row, unanswered(self.settings, row), now)

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

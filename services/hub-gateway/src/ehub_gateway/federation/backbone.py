"""The Kafka backbone side of federation: this hub's topic ``ehub.fed.<hub>`` carries
envelopes from peers (``kind=envelope``) and receipts for what we sent (``kind=receipt``).

An envelope is ingested exactly as over HTTP (``ingest.py``: verified here, recorded by
the group writer); its signed receipt goes back through the outbox to the sender's topic,
written in the transaction that records the event, so it is not lost if the broker is
briefly unreachable. A duplicate is receipted again, which covers a receipt the broker
lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ehub_core import metrics
from ehub_core.bus import Message, SpanFactory
from ehub_core.envelope import read_unverified, verify_receipt
from ehub_core.errors import ForbiddenError
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt
from ehub_core.signing import SignatureError
from ehub_core.streams import fed_topic
from ehub_gateway.federation.delivery import DeliveryWorker
from ehub_gateway.federation.group_writer import IngestWriter
from ehub_gateway.federation.ingest import verify_batch
from ehub_gateway.federation.ingest_record import IngestJob
from ehub_gateway.federation.trust import TrustStore
from ehub_gateway.settings import GatewaySettings

log = logging.getLogger("ehub.gateway.backbone")


class Backbone:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        trust: TrustStore,
        delivery: DeliveryWorker,
        writer: IngestWriter,
    ) -> None:
        self.settings = settings
        self.trust = trust
        self.writer = writer
        self.delivery = delivery
        self.hub = settings.hub_id

    @property
    def topic(self) -> str:
        return fed_topic(self.hub)

    async def handle(self, message: Message) -> None:
        kind = message.header("kind")
        try:
            if kind == "envelope":
                await self._on_envelope(message)
            elif kind == "receipt":
                await self._on_receipt(message)
            else:
                log.warning("ignoring message of kind %r on %s", kind, message.topic)
        except (SignatureError, ForbiddenError) as exc:
            self._refused(kind, message, exc)

    async def handle_batch(self, messages: Sequence[Message], span: SpanFactory) -> None:
        """What one fetch of ``ehub.fed.<hub>`` brought: each envelope verified in its own
        trace and recorded as its own job (one receipt each; a refusal is that message's
        alone), all jobs handed to the group writer together so they commit in one
        transaction; the receipts applied in one transaction."""
        jobs: list[tuple[Message, asyncio.Future[Any]]] = []
        receipts: list[tuple[Receipt, bytes]] = []
        for message in messages:
            kind = message.header("kind")
            with span(message):
                try:
                    if kind == "envelope":
                        job = self._envelope_job(message)
                        jobs.append((message, asyncio.ensure_future(self.writer.submit(job))))
                    elif kind == "receipt":
                        receipts.append((self._verified_receipt(message), message.value))
                    else:
                        log.warning("ignoring message of kind %r on %s", kind, message.topic)
                except (SignatureError, ForbiddenError) as exc:
                    self._refused(kind, message, exc)
        if receipts:
            await self.delivery.receipts.apply_many(receipts)
        for message, future in jobs:
            try:
                await future
            except ForbiddenError as exc:  # not a party to the order it names
                self._refused("envelope", message, exc)

    def _refused(self, kind: str | None, message: Message, exc: Exception) -> None:
        # Unauthenticated or unauthorized: dropped (the sender cannot be answered without
        # trusting it); counted for operators.
        log.warning("rejected %s on %s: %s", kind, message.topic, exc)
        metrics.FED_INGESTED.labels(self.hub, "kafka", "forbidden").inc()

    async def _on_envelope(self, message: Message) -> None:
        await self.writer.submit(self._envelope_job(message))

    def _envelope_job(self, message: Message) -> IngestJob:
        claimed_source = read_unverified(message.value).source_hub
        if self.trust.peer(claimed_source) is None:
            raise SignatureError("unknown_key", f"{claimed_source} is not a peer")
        good, rejected, claims = verify_batch(
            [message.value],
            sender_hub=claimed_source,  # verified: the envelope key must be its hub's
            own_hub=self.hub,
            trust=self.trust,
            clock_skew=self.settings.clock_skew,
            now=datetime.now(UTC),
            max_event_bytes=self.settings.max_event_bytes,
        )
        return IngestJob(
            claimed_source,
            "kafka",
            good,
            rejected,
            claims,
            receipt_topic=fed_topic(claimed_source),
        )

    async def _on_receipt(self, message: Message) -> None:
        await self.delivery.apply_receipt(self._verified_receipt(message), message.value)

    def _verified_receipt(self, message: Message) -> Receipt:
        receipt = verify_receipt(
            message.value,
            self.trust.resolve,
            expected_sender=self.hub,
            clock_skew=self.settings.clock_skew,
        )
        if self.trust.peer(receipt.receiver_hub) is None:
            raise SignatureError("unknown_key", f"{receipt.receiver_hub} is not a peer")
        return receipt

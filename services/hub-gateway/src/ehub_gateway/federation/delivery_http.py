"""Sending a batch of sealed events to a peer over signed HTTP.

A batch goes in one signed ``POST /federation/v1/events``; the signed receipt comes back
in the (signed) response and is applied at once. A 403 naming one of the events (we may
not send it) dead-letters that one and sends the others again; any other failure —
unreachable, another status, an answer that does not verify — is a failed attempt for
every event of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from ehub_core.envelope import verify_receipt
from ehub_core.proto.ehub.v1.envelope_pb2 import EnvelopeBatch
from ehub_core.signing import SignatureError, verify_response
from ehub_gateway.federation.delivery_outcomes import Outcomes
from ehub_gateway.federation.models import OutboundEvent
from ehub_gateway.federation.receipts import ReceiptBook
from ehub_gateway.federation.trust import PeerInfo, TrustStore

BATCH_CONTENT_TYPE = "application/x-protobuf; messageType=ehub.v1.EnvelopeBatch"
RECEIPT_CONTENT_TYPE = "application/x-protobuf; messageType=ehub.v1.SignedReceipt"


def forbidden_event(resp: httpx.Response, rows: Sequence[OutboundEvent]) -> str | None:
    """The event a 403 problem names (``event_id``), if it is one of ``rows``."""
    try:
        named = resp.json().get("event_id")
    except (ValueError, AttributeError):
        return None
    return named if named in {r.event_id for r in rows} else None


class HttpSender:
    def __init__(
        self,
        *,
        hub: str,
        client: httpx.AsyncClient,
        trust: TrustStore,
        clock_skew: int,
        outcomes: Outcomes,
        receipts: ReceiptBook,
    ) -> None:
        self.hub = hub
        self.client = client
        self.trust = trust
        self.clock_skew = clock_skew
        self.outcomes = outcomes
        self.receipts = receipts

    async def send(self, peer: PeerInfo, rows: Sequence[OutboundEvent]) -> None:
        body = EnvelopeBatch(envelopes=[r.envelope for r in rows]).SerializeToString()
        at = datetime.now(UTC)
        try:
            resp = await self.client.post(
                peer.events_url, content=body, headers={"Content-Type": BATCH_CONTENT_TYPE}
            )
        except httpx.HTTPError as exc:
            error = f"{peer.hub_id} unreachable: {exc.__class__.__name__}: {exc}"
            await self.outcomes.retry(rows, error, attempted_at=at)
            return
        if resp.status_code == 403 and (culprit := forbidden_event(resp, rows)) is not None:
            error = f"{peer.hub_id} refused it (403): {resp.text[:300]}"
            await self.outcomes.refused(rows, culprit, error, attempted_at=at)
            return
        if resp.status_code != 200:
            error = f"{peer.hub_id} answered {resp.status_code}: {resp.text[:300]}"
            await self.outcomes.retry(rows, error, attempted_at=at)
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
                clock_skew=self.clock_skew,
            )
            receipt = verify_receipt(
                resp.content,
                self.trust.resolve,
                expected_receiver=peer.hub_id,
                expected_sender=self.hub,
                clock_skew=self.clock_skew,
            )
        except SignatureError as exc:
            error = f"unverifiable answer from {peer.hub_id}: {exc}"
            await self.outcomes.retry(rows, error, attempted_at=at)
            return
        await self.receipts.apply(receipt, resp.content, rows=rows, attempted_at=at)

"""Applying a peer's verified receipt to what we sent it.

An entry ACCEPTED or DUPLICATE with the digest we sealed settles its event for good (the
signed receipt is kept as proof of delivery, ``fed_receipts``); a rejection a later
attempt can cure (the peer does not know our key yet, clocks apart) backs off, one for
an expired key is re-sealed with our current key, and any other is dead-lettered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import metrics
from ehub_core.proto.ehub.v1.receipt_pb2 import Receipt, ReceiptEntry, ReceiptOutcome
from ehub_core.signing import KeyRing
from ehub_core.signing.errors import Reason
from ehub_gateway.federation import outbound_store
from ehub_gateway.federation.delivery_outcomes import Outcomes, dead_letter
from ehub_gateway.federation.models import DeliveryStatus, OutboundEvent, StoredReceipt
from ehub_gateway.federation.outbound import reseal

# Rejections that a later attempt can cure: the peer does not know our key yet, etc.
RETRYABLE = frozenset({Reason.UNKNOWN_KEY, Reason.KEY_NOT_YET_VALID, Reason.CLOCK_SKEW})
_ACCEPTED = {ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED, ReceiptOutcome.RECEIPT_OUTCOME_DUPLICATE}


class ReceiptBook:
    def __init__(self, hub: str, keyring: KeyRing, outcomes: Outcomes) -> None:
        self.hub = hub
        self.keyring = keyring
        self.outcomes = outcomes

    async def apply(
        self,
        receipt: Receipt,
        signed: bytes,
        rows: Sequence[OutboundEvent] | None = None,
        *,
        attempted_at: datetime | None = None,
    ) -> int:
        """Mark what a verified receipt confirms; return how many rows it receipted.

        ``rows`` are the events of the request it answers (HTTP); over the backbone it
        answers the events it names."""
        async with self.outcomes.db.transaction() as session:
            done = await self._apply(session, receipt, signed, rows, attempted_at)
        if done:
            metrics.FED_RECEIPTED.labels(self.hub).inc(done)
        return done

    async def apply_many(self, receipts: Sequence[tuple[Receipt, bytes]]) -> int:
        """Apply several verified backbone receipts in one transaction (what one fetch
        of the backbone brought); return how many rows they receipted."""
        done = 0
        async with self.outcomes.db.transaction() as session:
            for receipt, signed in receipts:
                done += await self._apply(session, receipt, signed, None, None)
        if done:
            metrics.FED_RECEIPTED.labels(self.hub).inc(done)
        return done

    async def _apply(
        self,
        session: AsyncSession,
        receipt: Receipt,
        signed: bytes,
        rows: Sequence[OutboundEvent] | None,
        attempted_at: datetime | None,
    ) -> int:
        now = datetime.now(UTC)
        entries = {e.event_id: e for e in receipt.entries}
        ids = [r.event_id for r in rows] if rows is not None else list(entries)
        done = 0
        stored = False
        for row in await outbound_store.by_ids(session, ids):
            if row.status == DeliveryStatus.RECEIPTED:
                continue
            if attempted_at is not None:
                row.sent_at = attempted_at
            entry = entries.get(row.event_id)
            if entry is None:
                self.outcomes.backoff(row, "not in the peer's receipt", now)
            elif entry.outcome in _ACCEPTED and entry.envelope_sha256 == bytes.fromhex(row.digest):
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
                row.status = DeliveryStatus.RECEIPTED
                row.receipt_id = receipt.receipt_id
                row.receipted_at = now
                row.last_error = None
                done += 1
            elif entry.outcome == ReceiptOutcome.RECEIPT_OUTCOME_REJECTED:
                self._rejected(row, entry, receipt.receiver_hub, now)
            else:
                self.outcomes.backoff(row, "receipt digest does not match", now)
        return done

    def _rejected(self, row: OutboundEvent, entry: ReceiptEntry, peer: str, now: datetime) -> None:
        if entry.reason_code == Reason.KEY_EXPIRED:
            reseal(row, self.keyring.active_key())
            self.outcomes.backoff(row, "re-sealed: the signing key had expired", now)
        elif entry.reason_code in RETRYABLE:
            self.outcomes.backoff(row, f"rejected by {peer} ({entry.reason_code}); will retry", now)
        else:
            row.attempts += 1
            dead_letter(row, f"rejected by {peer}: {entry.reason_code}", now)

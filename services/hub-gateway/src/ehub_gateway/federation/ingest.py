"""Receiving events from peers, over HTTP or the backbone alike: verify, record once,
receipt.

1. :func:`verify_batch`: each envelope's origin signature is verified, outside any
   transaction; the sender may only deliver its own events, for this hub, of types it
   is allowed (``ehub_core.streams``, and the peer's allow list). A sender overstepping
   its rights is refused as a whole (403 naming the event), with nothing written.
2. The request becomes an :class:`~ehub_gateway.federation.ingest_record.IngestJob`,
   handed to the group writer (``group_writer.py``), which records it with whatever
   other requests are waiting, in one transaction (``ingest_record.py``): whether the
   sender is the other hub of each order its events are about (``parties.py``), the
   inbox, ``fed_received`` and the republication of each new event.
3. :func:`sign_job_receipt`: a signed receipt lists every envelope: accepted, duplicate
   (accepted before) or rejected with a reason code. :func:`count_ingested` counts the
   outcomes for ``ehub_fed_ingested_total``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from ehub_core import metrics
from ehub_core.envelope import (
    VerifiedEnvelope,
    envelope_digest,
    read_unverified,
    receipt_entry,
    sign_receipt,
    verify_envelope,
)
from ehub_core.errors import ForbiddenError
from ehub_core.proto.ehub.v1.receipt_pb2 import ReceiptEntry, ReceiptOutcome
from ehub_core.signing import HubKey, SignatureError
from ehub_core.signing.errors import Reason
from ehub_core.streams import EVENT_TYPES
from ehub_gateway.federation.ingest_record import IngestJob, Recorded
from ehub_gateway.federation.parties import OrderClaim, order_claim
from ehub_gateway.federation.trust import TrustStore

EVENT_TOO_LARGE = "event_too_large"
DEFAULT_MAX_EVENT_BYTES = 262_144
# The receipt reason of an event whose id this hub holds with other bytes or from another
# hub (docs/federation-wire.md).
EVENT_ID_CONFLICT = "event_id_conflict"


def _rejected(data: bytes, reason: str) -> ReceiptEntry:
    try:
        event_id = read_unverified(data).event_id
    except SignatureError:
        event_id = ""
    try:
        digest = envelope_digest(data)
    except SignatureError:
        digest = hashlib.sha256(data).hexdigest()
    return receipt_entry(event_id, digest, ReceiptOutcome.RECEIPT_OUTCOME_REJECTED, reason)


class VerifiedBatch(NamedTuple):
    """A batch after its cryptography: the envelopes that verified, the receipt entries of
    those that did not, and what the good ones say about orders (judged with the database,
    in the transaction that records them)."""

    good: list[tuple[bytes, VerifiedEnvelope]]
    rejected: list[ReceiptEntry]
    claims: list[OrderClaim]


def verify_batch(
    envelopes: Sequence[bytes],
    *,
    sender_hub: str,
    own_hub: str,
    trust: TrustStore,
    clock_skew: int,
    now: datetime,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> VerifiedBatch:
    """Verify each envelope; 403 (whole batch) if the sender oversteps its rights."""
    good: list[tuple[bytes, VerifiedEnvelope]] = []
    rejected: list[ReceiptEntry] = []
    claims: list[OrderClaim] = []
    peer = trust.peer(sender_hub)
    for data in envelopes:
        if len(data) > max_event_bytes:
            # Republished as it is, it would stop at the broker (message too large):
            # refused before any cryptography, with nothing written.
            rejected.append(_rejected(data, EVENT_TOO_LARGE))
            continue
        try:
            verified = verify_envelope(
                data, trust.resolve, expected_target=own_hub, now=now, clock_skew=clock_skew
            )
            info = trust.resolve(verified.key_id)
            # A signature made while the key was valid stops counting once it expired:
            # the sender re-seals with its current key.
            if info is not None and (problem := info.validity_at(now)) is not None:
                raise SignatureError(problem, f"key {verified.key_id} is no longer valid")
        except SignatureError as exc:
            rejected.append(_rejected(data, exc.reason_code))
            continue
        env = verified.envelope
        if env.source_hub != sender_hub:
            raise ForbiddenError(
                f"hub {sender_hub} may only deliver its own events, not {env.source_hub}'s",
                event_id=env.event_id,
            )
        if peer is None or not peer.may_send(env.type):
            raise ForbiddenError(
                f"hub {sender_hub} may not send {env.type} events", event_id=env.event_id
            )
        if env.type not in EVENT_TYPES:
            rejected.append(_rejected(data, Reason.UNKNOWN_EVENT_TYPE))
            continue
        if EVENT_TYPES[env.type].payload_problem(env.payload) is not None:
            # Signed, but not a usable event (an empty KeyRevoked was accepted and
            # republished): refused in the receipt, nothing written.
            rejected.append(_rejected(data, Reason.MALFORMED_PAYLOAD))
            continue
        try:
            claim = order_claim(env, EVENT_TYPES[env.type].stream)
        except SignatureError as exc:
            rejected.append(_rejected(data, exc.reason_code))
            continue
        good.append((data, verified))
        if claim is not None:
            claims.append(claim)
    return VerifiedBatch(good, rejected, claims)


def receipt_entries(
    good: Sequence[tuple[bytes, VerifiedEnvelope]],
    accepted: set[str],
    conflicts: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
) -> list[ReceiptEntry]:
    """ACCEPTED for the events that took effect now, REJECTED ``event_id_conflict`` for an
    id this hub holds with other bytes or from another hub, DUPLICATE for the others (the
    same id and digest, accepted before)."""
    entries = []
    for _, verified in good:
        env = verified.envelope
        if (env.event_id, verified.digest) in conflicts:
            entries.append(
                receipt_entry(
                    env.event_id,
                    verified.digest,
                    ReceiptOutcome.RECEIPT_OUTCOME_REJECTED,
                    EVENT_ID_CONFLICT,
                )
            )
            continue
        outcome = (
            ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED
            if env.event_id in accepted
            else ReceiptOutcome.RECEIPT_OUTCOME_DUPLICATE
        )
        entries.append(receipt_entry(env.event_id, verified.digest, outcome))
    return entries


def sign_job_receipt(job: IngestJob, recorded: Recorded, key: HubKey, now: datetime) -> bytes:
    """The signed receipt of a recorded request: its good envelopes' outcomes, then the
    entries of those that did not verify."""
    entries = receipt_entries(job.good, set(recorded.taken), recorded.conflicts)
    return sign_receipt([*entries, *job.rejected], key, sender_hub=job.sender_hub, received_at=now)


def count_ingested(hub: str, job: IngestJob, recorded: Recorded) -> None:
    """Count a recorded request's envelopes by outcome (``ehub_fed_ingested_total``)."""
    if not recorded.fresh_nonce:
        metrics.FED_INGESTED.labels(hub, job.via, "replayed_nonce").inc()
        return
    accepted, conflicts = len(recorded.taken), len(recorded.conflicts)
    for outcome, n in (
        ("accepted", accepted),
        ("duplicate", len(job.good) - accepted - conflicts),
        ("rejected", len(job.rejected) + conflicts),
    ):
        if n:
            metrics.FED_INGESTED.labels(hub, job.via, outcome).inc(n)

"""Signed event envelopes and delivery receipts (``ehub.v1``), and UUIDv7 event ids.

An event is sealed once, by its origin hub: the :class:`Envelope` is serialized and those
exact bytes are signed and carried in a :class:`SignedEnvelope`. Every hop (outbox, Kafka,
``POST /federation/v1/events``, a peer's inbox) passes the SignedEnvelope bytes through
untouched, so the origin's signature verifies anywhere. Receivers answer with a
:class:`SignedReceipt` listing each envelope's id and digest.

Digest: :func:`envelope_digest` is the lower-case hex SHA-256 of the signed ``Envelope``
bytes (``SignedEnvelope.envelope``), the bytes the signature covers; receipts carry the same
32 bytes raw.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from ehub_core.ids import uuid7
from ehub_core.proto.ehub.v1.envelope_pb2 import Envelope, SignedEnvelope
from ehub_core.proto.ehub.v1.receipt_pb2 import (
    Receipt,
    ReceiptEntry,
    ReceiptOutcome,
    SignedReceipt,
)
from ehub_core.signing.detached import check_detached, check_key_window, sign_detached
from ehub_core.signing.errors import Reason, SignatureError
from ehub_core.signing.http import DEFAULT_CLOCK_SKEW, KeyResolver
from ehub_core.signing.keys import HubKey, hub_of, utc, validate_hub_id
from ehub_core.streams import EVENT_TYPES

__all__ = [
    "ENVELOPE_CONTEXT",
    "PAYLOAD_TYPES",
    "RECEIPT_CONTEXT",
    "SCHEMA_VERSION",
    "OpenedEnvelope",
    "VerifiedEnvelope",
    "confirms",
    "envelope_digest",
    "new_event_id",
    "open_envelope",
    "payload_type",
    "read_unverified",
    "receipt_entry",
    "seal",
    "sign_receipt",
    "verify_envelope",
    "verify_receipt",
]

ENVELOPE_CONTEXT = "ehub.v1.Envelope"
RECEIPT_CONTEXT = "ehub.v1.Receipt"
SCHEMA_VERSION = 1

PAYLOAD_TYPES: Mapping[str, type[Message]] = MappingProxyType(
    {name: t.message for name, t in EVENT_TYPES.items()}
)
"""Envelope ``type`` -> payload message class. The type is the message's short name; the
table is :data:`ehub_core.streams.EVENT_TYPES`, the one registry of federated event types."""

_ACCEPTED_OUTCOMES = frozenset(
    {ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED, ReceiptOutcome.RECEIPT_OUTCOME_DUPLICATE}
)


def payload_type(payload: Message) -> str:
    """The envelope ``type`` for a payload message; ValueError if it is not registered."""
    name = payload.DESCRIPTOR.name
    if PAYLOAD_TYPES.get(name) is not type(payload):
        raise ValueError(f"{type(payload).__name__} is not a registered event payload")
    return name


# ------------------------------------------------------------------------------------------
# UUIDv7 (RFC 9562 §5.7), monotonic within this process


def new_event_id() -> str:
    """A UUIDv7 event id (see :func:`ehub_core.ids.uuid7`), as canonical lower-case text."""
    return str(uuid7())


def _is_uuid7(text: str) -> bool:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return False
    return str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122


# ------------------------------------------------------------------------------------------
# Envelopes


def _timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(utc(value))
    return ts


def _datetime(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def seal(
    payload: Message,
    key: HubKey,
    *,
    target_hub: str,
    subject: str,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
    traceparent: str = "",
    tracestate: str = "",
    now: datetime | None = None,
) -> bytes:
    """Build, serialize and sign an event; return the ``SignedEnvelope`` bytes to store and
    send as they are. The source hub is the key's hub; ``occurred_at`` defaults to ``now``."""
    now = utc(now, "now") if now is not None else datetime.now(UTC)
    if not key.is_valid_at(now):
        raise ValueError(f"key {key.kid} is not valid at {now.isoformat()}")
    if event_id is not None and not _is_uuid7(event_id):
        raise ValueError(f"event_id must be a lower-case UUIDv7, got {event_id!r}")
    if not subject:
        raise ValueError("subject is required (it is the Kafka key and ordering scope)")
    envelope = Envelope(
        event_id=event_id or new_event_id(),
        type=payload_type(payload),
        source_hub=key.hub_id,
        target_hub=validate_hub_id(target_hub),
        subject=subject,
        occurred_at=_timestamp(occurred_at if occurred_at is not None else now),
        schema_version=SCHEMA_VERSION,
        traceparent=traceparent,
        tracestate=tracestate,
        payload=payload.SerializeToString(deterministic=True),
        key_id=key.kid,
        signed_at=_timestamp(now),
    )
    data = envelope.SerializeToString(deterministic=True)
    return SignedEnvelope(
        envelope=data, key_id=key.kid, signature=sign_detached(ENVELOPE_CONTEXT, data, key)
    ).SerializeToString(deterministic=True)


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope whose origin signature verified. ``envelope_bytes`` are the signed bytes."""

    envelope: Envelope
    envelope_bytes: bytes
    key_id: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.envelope_bytes).hexdigest()


class OpenedEnvelope(NamedTuple):
    envelope: Envelope
    payload: Message


def _parse_signed_envelope(data: bytes) -> SignedEnvelope:
    try:
        signed = SignedEnvelope.FromString(data)
    except DecodeError as exc:
        raise SignatureError(Reason.MALFORMED_ENVELOPE, f"not a SignedEnvelope: {exc}") from exc
    if not signed.envelope or not signed.key_id:
        raise SignatureError(Reason.MALFORMED_ENVELOPE, "envelope and key_id are required")
    return signed


def verify_envelope(
    data: bytes,
    resolve_key: KeyResolver,
    *,
    expected_target: str | None = None,
    now: datetime | None = None,
    clock_skew: int = DEFAULT_CLOCK_SKEW,
) -> VerifiedEnvelope:
    """Verify a ``SignedEnvelope`` without decoding its payload (enough to relay, dedup or
    receipt it). Raises :class:`SignatureError`: ``malformed_envelope``, ``unknown_key``,
    ``key_revoked``, ``bad_signature``, ``key_expired``/``key_not_yet_valid`` (at
    ``signed_at``), ``clock_skew`` (``signed_at`` in the future), ``hub_mismatch`` (source
    hub is not the key's hub), ``target_mismatch`` (not for ``expected_target``)."""
    now = utc(now, "now") if now is not None else datetime.now(UTC)
    signed = _parse_signed_envelope(data)
    # Cryptography before parsing the inner bytes: any change to them is `bad_signature`.
    info = check_detached(
        ENVELOPE_CONTEXT, signed.envelope, signed.signature, signed.key_id, resolve_key
    )
    try:
        envelope = Envelope.FromString(signed.envelope)
    except DecodeError as exc:
        raise SignatureError(Reason.MALFORMED_ENVELOPE, f"not an Envelope: {exc}") from exc
    if envelope.key_id != signed.key_id or not envelope.HasField("signed_at"):
        raise SignatureError(Reason.MALFORMED_ENVELOPE, "key_id or signed_at inconsistent")
    signed_at = _datetime(envelope.signed_at)
    check_key_window(info, signed_at)
    if signed_at > now + timedelta(seconds=clock_skew):
        raise SignatureError(Reason.CLOCK_SKEW, f"signed_at {signed_at:%FT%TZ} is in the future")
    if envelope.source_hub != hub_of(signed.key_id):
        raise SignatureError(
            Reason.HUB_MISMATCH, f"{signed.key_id} cannot sign for {envelope.source_hub!r}"
        )
    if expected_target is not None and envelope.target_hub != expected_target:
        raise SignatureError(
            Reason.TARGET_MISMATCH, f"event is for {envelope.target_hub!r}, not {expected_target}"
        )
    if not _is_uuid7(envelope.event_id) or not envelope.subject or not envelope.type:
        raise SignatureError(Reason.MALFORMED_ENVELOPE, "event_id, subject and type required")
    return VerifiedEnvelope(envelope, signed.envelope, signed.key_id)


def open_envelope(
    data: bytes,
    resolve_key: KeyResolver,
    *,
    expected_target: str | None = None,
    now: datetime | None = None,
    clock_skew: int = DEFAULT_CLOCK_SKEW,
) -> OpenedEnvelope:
    """:func:`verify_envelope`, then decode the payload by its registered ``type``
    (``unknown_event_type`` if unregistered or of another schema version)."""
    verified = verify_envelope(
        data, resolve_key, expected_target=expected_target, now=now, clock_skew=clock_skew
    )
    envelope = verified.envelope
    cls = PAYLOAD_TYPES.get(envelope.type)
    if cls is None or envelope.schema_version != SCHEMA_VERSION:
        raise SignatureError(
            Reason.UNKNOWN_EVENT_TYPE, f"{envelope.type} v{envelope.schema_version} is unknown"
        )
    try:
        payload = cls.FromString(envelope.payload)
    except DecodeError as exc:
        raise SignatureError(Reason.MALFORMED_ENVELOPE, f"bad {envelope.type} payload") from exc
    return OpenedEnvelope(envelope, payload)


def read_unverified(data: bytes) -> Envelope:
    """Parse a SignedEnvelope's Envelope WITHOUT checking the signature: only for routing
    envelopes this hub sealed itself (outbox relay). Never trust the result otherwise."""
    signed = _parse_signed_envelope(data)
    try:
        return Envelope.FromString(signed.envelope)
    except DecodeError as exc:
        raise SignatureError(Reason.MALFORMED_ENVELOPE, f"not an Envelope: {exc}") from exc


def envelope_digest(data: bytes) -> str:
    """Hex SHA-256 of the signed Envelope bytes inside the SignedEnvelope ``data``."""
    return hashlib.sha256(_parse_signed_envelope(data).envelope).hexdigest()


# ------------------------------------------------------------------------------------------
# Receipts


def receipt_entry(
    event_id: str,
    digest: str,
    outcome: ReceiptOutcome.ValueType = ReceiptOutcome.RECEIPT_OUTCOME_ACCEPTED,
    reason_code: str = "",
) -> ReceiptEntry:
    """One line of a receipt; ``digest`` as :func:`envelope_digest` returns it (hex)."""
    return ReceiptEntry(
        event_id=event_id,
        envelope_sha256=bytes.fromhex(digest),
        outcome=outcome,
        reason_code=reason_code,
    )


def sign_receipt(
    entries: Iterable[ReceiptEntry],
    key: HubKey,
    *,
    sender_hub: str,
    received_at: datetime | None = None,
    receipt_id: str | None = None,
) -> bytes:
    """Sign a receipt for a delivery from ``sender_hub``; return ``SignedReceipt`` bytes."""
    received_at = utc(received_at, "received_at") if received_at else datetime.now(UTC)
    if not key.is_valid_at(received_at):
        raise ValueError(f"key {key.kid} is not valid at {received_at.isoformat()}")
    receipt = Receipt(
        receipt_id=receipt_id or new_event_id(),
        receiver_hub=key.hub_id,
        sender_hub=validate_hub_id(sender_hub),
        received_at=_timestamp(received_at),
        entries=list(entries),
        key_id=key.kid,
    )
    data = receipt.SerializeToString(deterministic=True)
    return SignedReceipt(
        receipt=data, key_id=key.kid, signature=sign_detached(RECEIPT_CONTEXT, data, key)
    ).SerializeToString(deterministic=True)


def verify_receipt(
    data: bytes,
    resolve_key: KeyResolver,
    *,
    expected_receiver: str | None = None,
    expected_sender: str | None = None,
    now: datetime | None = None,
    clock_skew: int = DEFAULT_CLOCK_SKEW,
) -> Receipt:
    """Verify a ``SignedReceipt`` from the receiving hub; return the receipt.

    The key must belong to ``receiver_hub`` (and to ``expected_receiver``, the hub the caller
    delivered to): ``hub_mismatch`` otherwise, as for a receipt naming another sender.
    Other reasons as for :func:`verify_envelope`, ``malformed_receipt`` for bad framing.
    """
    now = utc(now, "now") if now is not None else datetime.now(UTC)
    try:
        signed = SignedReceipt.FromString(data)
    except DecodeError as exc:
        raise SignatureError(Reason.MALFORMED_RECEIPT, f"not a SignedReceipt: {exc}") from exc
    if not signed.receipt or not signed.key_id:
        raise SignatureError(Reason.MALFORMED_RECEIPT, "receipt and key_id are required")
    info = check_detached(
        RECEIPT_CONTEXT, signed.receipt, signed.signature, signed.key_id, resolve_key
    )
    try:
        receipt = Receipt.FromString(signed.receipt)
    except DecodeError as exc:
        raise SignatureError(Reason.MALFORMED_RECEIPT, f"not a Receipt: {exc}") from exc
    if receipt.key_id != signed.key_id or not receipt.HasField("received_at"):
        raise SignatureError(Reason.MALFORMED_RECEIPT, "key_id or received_at inconsistent")
    received_at = _datetime(receipt.received_at)
    check_key_window(info, received_at)
    if received_at > now + timedelta(seconds=clock_skew):
        raise SignatureError(Reason.CLOCK_SKEW, f"received_at {received_at:%FT%TZ} is future")
    signer_hub = hub_of(signed.key_id)
    if receipt.receiver_hub != signer_hub or expected_receiver not in (None, signer_hub):
        raise SignatureError(
            Reason.HUB_MISMATCH, f"receipt for {receipt.receiver_hub!r} signed by {signed.key_id}"
        )
    if expected_sender is not None and receipt.sender_hub != expected_sender:
        raise SignatureError(
            Reason.HUB_MISMATCH, f"receipt is for a delivery from {receipt.sender_hub!r}"
        )
    return receipt


def confirms(receipt: Receipt, event_id: str, digest: str) -> bool:
    """True if a verified receipt shows ``event_id`` with exactly this digest delivered
    (accepted or already held). A matching id with another digest does not count."""
    wanted = bytes.fromhex(digest)
    return any(
        e.event_id == event_id and e.envelope_sha256 == wanted and e.outcome in _ACCEPTED_OUTCOMES
        for e in receipt.entries
    )

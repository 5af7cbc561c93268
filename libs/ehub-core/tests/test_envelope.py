"""Signed event envelopes, receipts and UUIDv7 event ids, with real Ed25519 keys."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ehub_core.envelope import (
    PAYLOAD_TYPES,
    confirms,
    envelope_digest,
    new_event_id,
    open_envelope,
    payload_type,
    read_unverified,
    receipt_entry,
    seal,
    sign_receipt,
    verify_envelope,
    verify_receipt,
)
from ehub_core.proto.ehub.v1 import common_pb2, customs_pb2, orders_pb2
from ehub_core.proto.ehub.v1.envelope_pb2 import Envelope, SignedEnvelope
from ehub_core.proto.ehub.v1.receipt_pb2 import ReceiptOutcome, SignedReceipt
from ehub_core.signing import HubKey, PublicKeyInfo, SignatureError
from ehub_core.signing.detached import sign_detached

NOW = datetime(2026, 11, 15, 12, 0, 0, tzinfo=UTC)


def key(kid: str, start: datetime = NOW - timedelta(days=1), days: int = 30) -> HubKey:
    return HubKey.generate(kid=kid, not_before=start, not_after=start + timedelta(days=days))


CN = key("CN#2026-11")
CA = key("CA#2026-11")


def trusting(*keys: HubKey | PublicKeyInfo):
    infos = {
        (k.public_info if isinstance(k, HubKey) else k).kid: (
            k.public_info if isinstance(k, HubKey) else k
        )
        for k in keys
    }
    return infos.get


def order_placed() -> orders_pb2.OrderPlaced:
    return orders_pb2.OrderPlaced(
        order_id="ord_123",
        buyer_hub="CN",
        seller_hub="CA",
        lines=[
            orders_pb2.OrderLine(
                sku="LOBSTER-1",
                hs_code="030632",
                quantity=2,
                unit_price=common_pb2.Money(amount="49.90", currency="CAD"),
            )
        ],
    )


def sealed(signer: HubKey = CN, **kwargs) -> bytes:
    options: dict[str, Any] = {"target_hub": "CA", "subject": "ord_123", "now": NOW}
    options.update(kwargs)
    return seal(order_placed(), signer, **options)


def reason(exc_info: pytest.ExceptionInfo[SignatureError]) -> str:
    return exc_info.value.reason_code


# -- UUIDv7 -------------------------------------------------------------------------------


def test_event_ids_are_uuid7_with_the_current_millisecond():
    before = int(datetime.now(UTC).timestamp() * 1000)
    parsed = uuid.UUID(new_event_id())
    after = int(datetime.now(UTC).timestamp() * 1000)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_event_ids_are_strictly_increasing_even_within_one_millisecond():
    ids = [new_event_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    millis = [uuid.UUID(i).int >> 80 for i in ids]
    assert len(set(millis)) < len(ids)  # many shared a millisecond


def test_event_ids_stay_unique_across_threads():
    results: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(new_event_id() for _ in range(5000))

    threads = [threading.Thread(target=work, args=(r,)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for r in results for i in r]
    assert len(set(everything)) == len(everything)
    assert all(r == sorted(r) for r in results)


# -- sealing and opening ------------------------------------------------------------------


def test_sealed_event_opens_to_the_same_envelope_and_payload():
    event_id = new_event_id()
    data = sealed(event_id=event_id, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    envelope, payload = open_envelope(data, trusting(CN), expected_target="CA", now=NOW)
    assert payload == order_placed()
    assert envelope.event_id == event_id
    assert (envelope.type, envelope.schema_version) == ("OrderPlaced", 1)
    assert (envelope.source_hub, envelope.target_hub, envelope.subject) == ("CN", "CA", "ord_123")
    assert envelope.key_id == CN.kid
    assert envelope.signed_at.ToDatetime(tzinfo=UTC) == NOW
    assert envelope.traceparent.startswith("00-")


def test_envelope_verifies_from_the_exact_bytes_whatever_the_transport():
    data = sealed()
    # Kafka value, HTTP batch member, outbox column: the bytes are passed, never rebuilt.
    assert verify_envelope(bytes(bytearray(data)), trusting(CN), now=NOW).digest == (
        envelope_digest(data)
    )


def test_every_single_byte_flip_is_rejected():
    data = sealed()
    for position in range(len(data)):
        for mask in (0x01, 0x80):
            tampered = bytearray(data)
            tampered[position] ^= mask
            with pytest.raises(SignatureError):
                verify_envelope(bytes(tampered), trusting(CN), now=NOW)


def test_flipped_byte_inside_the_signed_envelope_is_a_bad_signature():
    signed = SignedEnvelope.FromString(sealed())
    inner = bytearray(signed.envelope)
    inner[len(inner) // 2] ^= 0x01
    signed.envelope = bytes(inner)
    with pytest.raises(SignatureError) as info:
        verify_envelope(signed.SerializeToString(), trusting(CN), now=NOW)
    assert reason(info) == "bad_signature"


def test_envelope_from_an_untrusted_key_is_rejected():
    with pytest.raises(SignatureError) as info:
        verify_envelope(sealed(), trusting(CA), now=NOW)
    assert reason(info) == "unknown_key"


def test_envelope_signed_by_the_wrong_key_is_rejected():
    impostor = key("CN#2026-11")  # same id, other key material
    with pytest.raises(SignatureError) as info:
        verify_envelope(sealed(impostor), trusting(CN), now=NOW)
    assert reason(info) == "bad_signature"


def test_envelope_of_a_revoked_key_is_rejected():
    with pytest.raises(SignatureError) as info:
        verify_envelope(sealed(), trusting(CN.public_info.as_revoked()), now=NOW)
    assert reason(info) == "key_revoked"


def test_envelope_signed_outside_the_key_window_is_rejected():
    published = PublicKeyInfo(
        kid=CN.kid,
        public_key=CN.public_key,
        not_before=NOW - timedelta(days=30),
        not_after=NOW - timedelta(seconds=1),
    )
    with pytest.raises(SignatureError) as info:
        verify_envelope(sealed(), trusting(published), now=NOW)
    assert reason(info) == "key_expired"


def test_old_envelope_still_verifies_after_its_key_expired():
    # A dead-lettered event replayed next month: judged by when it was signed.
    data = sealed()
    later = CN.not_after + timedelta(days=30)
    assert verify_envelope(data, trusting(CN), now=later).envelope.source_hub == "CN"


def test_envelope_signed_in_the_future_is_rejected():
    with pytest.raises(SignatureError) as info:
        verify_envelope(sealed(now=NOW + timedelta(minutes=10)), trusting(CN), now=NOW)
    assert reason(info) == "clock_skew"


def test_hub_cannot_sign_events_for_another_hub():
    envelope = Envelope.FromString(SignedEnvelope.FromString(sealed(CA, target_hub="CN")).envelope)
    envelope.source_hub = "CN"  # CA's key claiming a CN event
    data = envelope.SerializeToString()
    forged = SignedEnvelope(
        envelope=data, key_id=CA.kid, signature=sign_detached("ehub.v1.Envelope", data, CA)
    ).SerializeToString()
    with pytest.raises(SignatureError) as info:
        verify_envelope(forged, trusting(CN, CA), now=NOW)
    assert reason(info) == "hub_mismatch"


def test_envelope_for_another_hub_is_rejected_when_a_target_is_expected():
    with pytest.raises(SignatureError) as info:
        verify_envelope(sealed(target_hub="MY"), trusting(CN), expected_target="CA", now=NOW)
    assert reason(info) == "target_mismatch"


def test_unregistered_event_type_is_rejected_on_open():
    signed = SignedEnvelope.FromString(sealed())
    envelope = Envelope.FromString(signed.envelope)
    envelope.type = "OrderTeleported"
    data = envelope.SerializeToString()
    resealed = SignedEnvelope(
        envelope=data, key_id=CN.kid, signature=sign_detached("ehub.v1.Envelope", data, CN)
    ).SerializeToString()
    assert verify_envelope(resealed, trusting(CN), now=NOW)  # relayable, but not openable
    with pytest.raises(SignatureError) as info:
        open_envelope(resealed, trusting(CN), now=NOW)
    assert reason(info) == "unknown_event_type"


def test_garbage_is_a_malformed_envelope():
    with pytest.raises(SignatureError) as info:
        verify_envelope(b"\xff\xff\xff", trusting(CN), now=NOW)
    assert reason(info) == "malformed_envelope"


def test_seal_refuses_bad_input():
    with pytest.raises(ValueError, match="not a registered"):
        seal(common_pb2.Money(), CN, target_hub="CA", subject="x", now=NOW)
    with pytest.raises(ValueError, match="UUIDv7"):
        sealed(event_id=str(uuid.uuid4()))
    with pytest.raises(ValueError, match="not valid"):
        sealed(now=NOW + timedelta(days=60))


def test_registry_covers_the_architecture_event_types():
    assert set(PAYLOAD_TYPES) >= {
        "OrderPlaced",
        "OrderAccepted",
        "OrderRejected",
        "OrderCancelled",
        "DeclarationFiled",
        "ClearanceDecided",
        "ShipmentBooked",
        "ShipmentEvent",
        "DeliveryConfirmed",
        "KeyRevoked",
    }
    decided = customs_pb2.ClearanceDecided(
        phase=customs_pb2.CLEARANCE_PHASE_IMPORT, decision=customs_pb2.CLEARANCE_DECISION_HELD
    )
    assert payload_type(decided) == "ClearanceDecided"


def test_unverified_read_is_available_for_routing_own_events():
    assert read_unverified(sealed(target_hub="MY")).target_hub == "MY"


def test_digest_is_hex_sha256_of_the_signed_envelope_bytes():
    data = sealed()
    inner = SignedEnvelope.FromString(data).envelope
    assert envelope_digest(data) == hashlib.sha256(inner).hexdigest()


# -- receipts -----------------------------------------------------------------------------


def receipt_for(data: bytes, signer: HubKey = CA, **kwargs) -> bytes:
    verified = verify_envelope(data, trusting(CN), now=NOW)
    entry = receipt_entry(verified.envelope.event_id, verified.digest)
    options: dict[str, Any] = {"sender_hub": "CN", "received_at": NOW}
    options.update(kwargs)
    return sign_receipt([entry], signer, **options)


def test_receipt_verifies_with_the_receivers_key_and_confirms_delivery():
    data = sealed()
    receipt = verify_receipt(
        receipt_for(data), trusting(CA), expected_receiver="CA", expected_sender="CN", now=NOW
    )
    event_id = read_unverified(data).event_id
    assert confirms(receipt, event_id, envelope_digest(data))
    assert not confirms(receipt, event_id, envelope_digest(sealed()))  # same id, other bytes
    assert receipt.receiver_hub == "CA" and receipt.key_id == CA.kid


def test_receipt_signed_by_another_key_is_rejected():
    stranger = key("CA#2026-11")  # claims CA's key id
    with pytest.raises(SignatureError) as info:
        verify_receipt(receipt_for(sealed(), stranger), trusting(CA), now=NOW)
    assert reason(info) == "bad_signature"


def test_receipt_forged_by_a_trusted_key_of_another_hub_is_rejected():
    # MY is trusted, but it cannot confirm a delivery to CA.
    my = key("MY#2026-11")
    with pytest.raises(SignatureError) as info:
        verify_receipt(receipt_for(sealed(), my), trusting(CA, my), expected_receiver="CA", now=NOW)
    assert reason(info) == "hub_mismatch"


def test_receipt_with_an_altered_digest_is_rejected():
    data = sealed()
    signed = SignedReceipt.FromString(receipt_for(data))
    body = bytearray(signed.receipt)
    digest_at = body.find(bytes.fromhex(envelope_digest(data)))
    assert digest_at > 0
    body[digest_at] ^= 0xFF
    signed.receipt = bytes(body)
    with pytest.raises(SignatureError) as info:
        verify_receipt(signed.SerializeToString(), trusting(CA), now=NOW)
    assert reason(info) == "bad_signature"


def test_receipt_for_another_sender_is_rejected():
    with pytest.raises(SignatureError) as info:
        verify_receipt(receipt_for(sealed()), trusting(CA), expected_sender="MY", now=NOW)
    assert reason(info) == "hub_mismatch"


def test_rejected_entry_does_not_confirm_delivery():
    data = sealed()
    event_id = read_unverified(data).event_id
    signed = sign_receipt(
        [
            receipt_entry(
                event_id,
                envelope_digest(data),
                ReceiptOutcome.RECEIPT_OUTCOME_REJECTED,
                "unknown_event_type",
            )
        ],
        CA,
        sender_hub="CN",
        received_at=NOW,
    )
    receipt = verify_receipt(signed, trusting(CA), now=NOW)
    assert not confirms(receipt, event_id, envelope_digest(data))
    assert receipt.entries[0].reason_code == "unknown_event_type"


def test_receipt_signature_cannot_pass_as_an_envelope_signature():
    signed = SignedReceipt.FromString(receipt_for(sealed()))
    disguised = SignedEnvelope(
        envelope=signed.receipt, key_id=signed.key_id, signature=signed.signature
    ).SerializeToString()
    with pytest.raises(SignatureError) as info:
        verify_envelope(disguised, trusting(CA), now=NOW)
    assert reason(info) == "bad_signature"

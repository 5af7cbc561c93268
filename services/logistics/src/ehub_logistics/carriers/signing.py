"""Ed25519 signatures on carrier webhooks.

A delivery carries two headers::

    X-Carrier-Timestamp: 1767225600
    X-Carrier-Signature: ed25519=<base64 signature of b"1767225600." + body>

The timestamp is inside the signed bytes, so a captured delivery cannot be replayed
outside the tolerance window; inside it, event ids deduplicate. Any adapter whose
carrier signs this way (or is told to) can reuse :func:`verify_delivery`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ehub_logistics.carriers.base import WebhookRejected

TIMESTAMP_HEADER = "x-carrier-timestamp"
SIGNATURE_HEADER = "x-carrier-signature"
SCHEME = "ed25519="
DEFAULT_TOLERANCE_S = 300


def simulator_signing_key(carrier: str, seed: str) -> SigningKey:
    """The deterministic key of a simulated carrier: same seed, same key pair."""
    return SigningKey(hashlib.sha256(f"ehub-carrier-simulator/{carrier}/{seed}".encode()).digest())


def public_key_b64(key: SigningKey) -> str:
    return base64.b64encode(bytes(key.verify_key)).decode()


def verify_key_from_b64(value: str) -> VerifyKey:
    """Parse a configured public key; raise ValueError on anything but 32 base64 bytes."""
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError("carrier public key is not base64") from exc
    if len(raw) != 32:
        raise ValueError(f"carrier public key must be 32 bytes, got {len(raw)}")
    return VerifyKey(raw)


def signed_bytes(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode() + b"." + body


def sign_delivery(key: SigningKey, body: bytes, *, now: datetime | None = None) -> dict[str, str]:
    """The two headers that authenticate ``body`` as sent at ``now``."""
    ts = int((now or datetime.now(UTC)).timestamp())
    signature = key.sign(signed_bytes(ts, body)).signature
    return {
        "X-Carrier-Timestamp": str(ts),
        "X-Carrier-Signature": SCHEME + base64.b64encode(signature).decode(),
    }


def verify_delivery(
    key: VerifyKey,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise :class:`WebhookRejected` unless ``body`` is signed by ``key`` recently.

    ``headers`` keys must be lower-case.
    """
    ts_raw = headers.get(TIMESTAMP_HEADER)
    sig_raw = headers.get(SIGNATURE_HEADER)
    if not ts_raw or not sig_raw:
        raise WebhookRejected("missing X-Carrier-Timestamp or X-Carrier-Signature header")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise WebhookRejected("X-Carrier-Timestamp is not an integer") from None
    current = int((now or datetime.now(UTC)).timestamp())
    if abs(current - ts) > tolerance_s:
        raise WebhookRejected(f"timestamp outside the {tolerance_s}s window")
    if not sig_raw.startswith(SCHEME):
        raise WebhookRejected("signature scheme must be ed25519")
    try:
        signature = base64.b64decode(sig_raw[len(SCHEME) :], validate=True)
        key.verify(signed_bytes(ts, body), signature)
    except (binascii.Error, BadSignatureError, ValueError):
        raise WebhookRejected("signature does not verify") from None

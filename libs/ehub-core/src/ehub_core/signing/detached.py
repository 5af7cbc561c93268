"""Detached Ed25519 signatures over exact bytes, with a domain-separation context.

Used for event envelopes and receipts. The signed message is ``context || 0x00 || data``
(context e.g. ``ehub.v1.Envelope``), so bytes signed as one kind of object can never be
passed off as another: protobuf parsing is lenient enough that a Receipt's bytes may well
parse as an Envelope. HTTP signature bases start with ``"``, so they cannot collide either.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ehub_core.signing.errors import Reason, SignatureError
from ehub_core.signing.keys import HubKey, PublicKeyInfo


def _message(context: str, data: bytes) -> bytes:
    return context.encode("ascii") + b"\x00" + data


def sign_detached(context: str, data: bytes, key: HubKey) -> bytes:
    """The 64-byte signature by ``key`` over ``context || 0x00 || data``."""
    return key.sign(_message(context, data))


def check_detached(
    context: str,
    data: bytes,
    signature: bytes,
    key_id: str,
    resolve_key: Callable[[str], PublicKeyInfo | None],
) -> PublicKeyInfo:
    """Verify the cryptography and revocation only; return the key for further checks
    (its window against the signed time, which lives inside ``data``).

    Raises ``SignatureError`` with ``unknown_key``, ``key_revoked`` or ``bad_signature``.
    """
    info = resolve_key(key_id)
    if info is None or info.kid != key_id:
        raise SignatureError(Reason.UNKNOWN_KEY, f"no trusted key {key_id!r}")
    if info.revoked:
        raise SignatureError(Reason.KEY_REVOKED, f"key {key_id} is revoked")
    if not info.verify(_message(context, data), signature):
        raise SignatureError(Reason.BAD_SIGNATURE, f"{context} signature by {key_id} is invalid")
    return info


def check_key_window(info: PublicKeyInfo, signed_at: datetime) -> None:
    """``key_expired`` / ``key_not_yet_valid`` unless ``info`` was valid at ``signed_at``."""
    problem = info.validity_at(signed_at)
    if problem is not None:
        raise SignatureError(problem, f"key {info.kid} was not valid at {signed_at:%FT%TZ}")

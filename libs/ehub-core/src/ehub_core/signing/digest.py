"""RFC 9530 ``Content-Digest``: we send ``sha-256``; we accept ``sha-256`` and ``sha-512``.

The digest is over the content bytes as sent (after any Content-Encoding), and an empty body
has a digest too: every signed hub-to-hub message carries one, so coverage never depends on
whether there is a body.
"""

from __future__ import annotations

import hashlib
import hmac

from ehub_core.signing.errors import Reason, SignatureError
from ehub_core.signing.structured_fields import (
    Item,
    SFError,
    parse_dictionary,
    serialize_dictionary,
)

CONTENT_DIGEST = "Content-Digest"
_ACCEPTED = {"sha-256": "sha256", "sha-512": "sha512"}  # RFC 9530 name -> hashlib name


def content_digest(body: bytes) -> str:
    """The ``Content-Digest`` field value for ``body``: ``sha-256=:<base64>:``."""
    return serialize_dictionary({"sha-256": Item(hashlib.sha256(body).digest())})


def verify_content_digest(field_value: str | None, body: bytes) -> None:
    """Check a ``Content-Digest`` field value against ``body``.

    Every ``sha-256``/``sha-512`` member present must match; other algorithms are ignored
    (RFC 9530 §2), but at least one accepted algorithm must be present. Raises
    ``SignatureError("digest_mismatch")`` when the field is missing, malformed or wrong.
    """
    if field_value is None:
        raise SignatureError(Reason.DIGEST_MISMATCH, "Content-Digest header is missing")
    try:
        members = parse_dictionary(field_value)
    except SFError as exc:
        raise SignatureError(Reason.DIGEST_MISMATCH, f"malformed Content-Digest: {exc}") from exc
    checked = 0
    for algorithm, member in members.items():
        hash_name = _ACCEPTED.get(algorithm)
        if hash_name is None:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            raise SignatureError(
                Reason.DIGEST_MISMATCH, f"Content-Digest {algorithm} is not a byte sequence"
            )
        if not hmac.compare_digest(member.value, hashlib.new(hash_name, body).digest()):
            raise SignatureError(
                Reason.DIGEST_MISMATCH, f"Content-Digest {algorithm} does not match the body"
            )
        checked += 1
    if not checked:
        raise SignatureError(
            Reason.DIGEST_MISMATCH, "Content-Digest has no sha-256 or sha-512 member"
        )

"""The one error every signature, digest, envelope and receipt check raises.

``reason_code`` is a stable, machine-readable string: peers and dashboards key on it, so a
code is never renamed or reused. ``detail`` is for humans and logs and may change freely.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Stable reason codes carried by :class:`SignatureError`."""

    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    MISSING_COMPONENTS = "missing_components"
    UNKNOWN_KEY = "unknown_key"
    KEY_EXPIRED = "key_expired"
    KEY_NOT_YET_VALID = "key_not_yet_valid"
    KEY_REVOKED = "key_revoked"
    BAD_SIGNATURE = "bad_signature"
    DIGEST_MISMATCH = "digest_mismatch"
    CLOCK_SKEW = "clock_skew"
    SIGNATURE_EXPIRED = "signature_expired"
    REPLAYED_NONCE = "replayed_nonce"
    HUB_MISMATCH = "hub_mismatch"
    MALFORMED_ENVELOPE = "malformed_envelope"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    TARGET_MISMATCH = "target_mismatch"
    MALFORMED_RECEIPT = "malformed_receipt"
    MALFORMED_PAYLOAD = "malformed_payload"  # the payload does not parse, or lacks a field


class SignatureError(Exception):
    """A message failed authentication; the receiver must reject it.

    Every reason maps to HTTP 401 (``http_status``): the sender could not be authenticated.
    Authorization failures of an authenticated hub (403) are not signature errors.
    """

    http_status = 401

    def __init__(self, reason_code: Reason | str, detail: str = "") -> None:
        self.reason_code = str(reason_code)
        self.detail = detail
        super().__init__(f"{self.reason_code}: {detail}" if detail else self.reason_code)

    def __repr__(self) -> str:
        return f"SignatureError({self.reason_code!r}, {self.detail!r})"

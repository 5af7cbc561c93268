"""Hub identity and message authentication: Ed25519 keys, RFC 9421 HTTP signatures,
RFC 9530 content digests and replay protection. Envelope and receipt signing build on this
in :mod:`ehub_core.envelope`. Wire format: ``docs/federation-wire.md``."""

from ehub_core.signing.components import HeadersLike, target_uri_from_asgi
from ehub_core.signing.digest import content_digest, verify_content_digest
from ehub_core.signing.errors import Reason, SignatureError
from ehub_core.signing.http import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_LABEL,
    HUB_HEADER,
    REQUEST_COMPONENTS,
    RESPONSE_COMPONENTS,
    KeyResolver,
    VerifiedRequest,
    VerifiedResponse,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)
from ehub_core.signing.httpx_auth import HubSigningAuth
from ehub_core.signing.keyring import (
    DEFAULT_KEY_LIFETIME,
    KeyFileError,
    KeyRing,
    NoActiveKeyError,
)
from ehub_core.signing.keys import HubKey, PublicKeyInfo, fingerprint, hub_of
from ehub_core.signing.nonces import MemoryNonceStore, NonceStore, NonceStoreFullError, new_nonce

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "DEFAULT_KEY_LIFETIME",
    "DEFAULT_LABEL",
    "HUB_HEADER",
    "REQUEST_COMPONENTS",
    "RESPONSE_COMPONENTS",
    "HeadersLike",
    "HubKey",
    "HubSigningAuth",
    "KeyFileError",
    "KeyResolver",
    "KeyRing",
    "MemoryNonceStore",
    "NoActiveKeyError",
    "NonceStore",
    "NonceStoreFullError",
    "PublicKeyInfo",
    "Reason",
    "SignatureError",
    "VerifiedRequest",
    "VerifiedResponse",
    "content_digest",
    "fingerprint",
    "hub_of",
    "new_nonce",
    "sign_request",
    "sign_response",
    "target_uri_from_asgi",
    "verify_content_digest",
    "verify_request",
    "verify_response",
]

"""Hub signing keys: Ed25519 private keys, their public halves, and fingerprints.

A key id (``kid``) is ``<HUB>#<label>``, e.g. ``CN#2026-11``: the hub is the ISO 3166-1
alpha-2 code before ``#``, so every verifier can tell which hub a key speaks for without
asking anyone. The label after ``#`` is the month the key became valid, with ``.2``, ``.3``
appended if a hub rotates more than once in a month.

Fingerprint: ``SHA256:`` + standard base64 without padding of SHA-256 over the raw 32-byte
Ed25519 public key. It looks like an OpenSSH fingerprint on purpose (operators recognise and
compare it), but it is *not* the value ``ssh-keygen -l`` prints for the same key: OpenSSH
hashes its own wire encoding of the key, we hash the raw key bytes.

Signing and verifying use PyNaCl's libsodium bindings directly (about twice as fast as
``cryptography`` on these machines; verification bounds federation ingest).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ehub_core.signing.errors import Reason

ALG_ED25519 = "ed25519"
_HUB_RE = re.compile(r"[A-Z]{2}")
_KID_RE = re.compile(r"([A-Z]{2})#([0-9A-Za-z][0-9A-Za-z.-]{0,63})")
SIGNATURE_BYTES = nacl.bindings.crypto_sign_BYTES
PUBLIC_KEY_BYTES = nacl.bindings.crypto_sign_PUBLICKEYBYTES
SEED_BYTES = nacl.bindings.crypto_sign_SEEDBYTES


def validate_hub_id(hub_id: str) -> str:
    """Return ``hub_id`` if it is an upper-case ISO 3166-1 alpha-2 code, else raise ValueError."""
    if not isinstance(hub_id, str) or not _HUB_RE.fullmatch(hub_id):
        raise ValueError(f"hub id must be an ISO 3166-1 alpha-2 code like 'CN', got {hub_id!r}")
    return hub_id


def hub_of(kid: str) -> str:
    """The hub a key id speaks for (the part before ``#``); ValueError if ``kid`` is malformed."""
    match = _KID_RE.fullmatch(kid) if isinstance(kid, str) else None
    if match is None:
        raise ValueError(f"key id must look like 'CN#2026-11', got {kid!r}")
    return match.group(1)


def fingerprint(public_key: bytes) -> str:
    """``SHA256:<base64 without padding>`` of the raw 32-byte Ed25519 public key."""
    digest = hashlib.sha256(public_key).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def utc(value: datetime, name: str = "datetime") -> datetime:
    """``value`` converted to UTC; naive datetimes are refused, never guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` suffix, the form used in key metadata and documents."""
    return utc(value).isoformat().replace("+00:00", "Z")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def validity_reason(not_before: datetime, not_after: datetime, when: datetime) -> Reason | None:
    """Why a key with this window cannot vouch for something made at ``when``, or None."""
    if when < not_before:
        return Reason.KEY_NOT_YET_VALID
    if when > not_after:
        return Reason.KEY_EXPIRED
    return None


@dataclass(frozen=True, eq=True, repr=False)
class PublicKeyInfo:
    """A verification key as peers know it: the raw key, its id, window and revocation state.

    Key resolvers hand these to the verifiers. ``revoked=True`` makes every verification with
    the key fail with ``key_revoked``, whatever its window says.
    """

    kid: str
    public_key: bytes
    not_before: datetime
    not_after: datetime
    alg: str = ALG_ED25519
    revoked: bool = False

    def __post_init__(self) -> None:
        hub_of(self.kid)
        if self.alg != ALG_ED25519:
            raise ValueError(f"unsupported key algorithm {self.alg!r}")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_BYTES:
            raise ValueError("an Ed25519 public key is 32 raw bytes")
        object.__setattr__(self, "not_before", utc(self.not_before, "not_before"))
        object.__setattr__(self, "not_after", utc(self.not_after, "not_after"))
        if self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before")

    @property
    def hub_id(self) -> str:
        return hub_of(self.kid)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature over ``message``.

        Checks only the cryptography; the window and revocation are the caller's policy
        (see :meth:`validity_at`).
        """
        if len(signature) != SIGNATURE_BYTES:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.public_key)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def validity_at(self, when: datetime) -> Reason | None:
        """Why this key cannot vouch for something made at ``when`` (revoked, outside its
        window), or None when it can."""
        if self.revoked:
            return Reason.KEY_REVOKED
        return validity_reason(self.not_before, self.not_after, utc(when, "when"))

    def as_revoked(self) -> PublicKeyInfo:
        return replace(self, revoked=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``/.well-known/ehub`` (``public_key`` is base64url without padding,
        as the ``x`` member of an OKP JWK)."""
        return {
            "kid": self.kid,
            "alg": self.alg,
            "public_key": b64url(self.public_key),
            "fingerprint": self.fingerprint,
            "not_before": format_time(self.not_before),
            "not_after": format_time(self.not_after),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PublicKeyInfo:
        """Parse :meth:`to_dict` output; a ``fingerprint`` member, if present, must match."""
        info = cls(
            kid=data["kid"],
            alg=data.get("alg", ALG_ED25519),
            public_key=b64url_decode(data["public_key"]),
            not_before=datetime.fromisoformat(data["not_before"]),
            not_after=datetime.fromisoformat(data["not_after"]),
        )
        if "fingerprint" in data and data["fingerprint"] != info.fingerprint:
            raise ValueError(f"fingerprint of key {info.kid} does not match its public key")
        return info

    def __repr__(self) -> str:
        return (
            f"PublicKeyInfo(kid={self.kid!r}, fingerprint={self.fingerprint!r}, "
            f"not_before={format_time(self.not_before)}, not_after={format_time(self.not_after)}"
            f"{', revoked' if self.revoked else ''})"
        )


class HubKey:
    """A hub's Ed25519 private signing key with its id and validity window.

    The private key never appears in ``repr``/``str`` and the object refuses to be pickled;
    :meth:`private_pkcs8_pem` is the one explicit way out (used by :class:`KeyRing`).
    """

    __slots__ = ("_secret", "kid", "not_after", "not_before", "public_info")

    def __init__(self, seed: bytes, *, kid: str, not_before: datetime, not_after: datetime):
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 raw bytes")
        public_key, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        self._secret: bytes = secret
        self.kid = kid
        self.public_info = PublicKeyInfo(
            kid=kid, public_key=public_key, not_before=not_before, not_after=not_after
        )
        self.not_before = self.public_info.not_before
        self.not_after = self.public_info.not_after

    @classmethod
    def generate(cls, *, kid: str, not_before: datetime, not_after: datetime) -> HubKey:
        return cls(
            secrets.token_bytes(SEED_BYTES), kid=kid, not_before=not_before, not_after=not_after
        )

    @classmethod
    def from_pkcs8_pem(
        cls, pem: bytes, *, kid: str, not_before: datetime, not_after: datetime
    ) -> HubKey:
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, ed25519.Ed25519PrivateKey):
            raise ValueError(f"key file for {kid} does not hold an Ed25519 private key")
        return cls(loaded.private_bytes_raw(), kid=kid, not_before=not_before, not_after=not_after)

    def private_pkcs8_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (``openssl pkey`` reads it)."""
        seed = nacl.bindings.crypto_sign_ed25519_sk_to_seed(self._secret)
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def hub_id(self) -> str:
        return self.public_info.hub_id

    @property
    def public_key(self) -> bytes:
        return self.public_info.public_key

    @property
    def fingerprint(self) -> str:
        return self.public_info.fingerprint

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature over ``message``."""
        return nacl.bindings.crypto_sign(message, self._secret)[:SIGNATURE_BYTES]

    def is_valid_at(self, when: datetime) -> bool:
        return self.not_before <= utc(when, "when") <= self.not_after

    def __repr__(self) -> str:
        return (
            f"HubKey(kid={self.kid!r}, fingerprint={self.fingerprint!r}, "
            f"not_before={format_time(self.not_before)}, not_after={format_time(self.not_after)})"
        )

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("HubKey holds a private key and cannot be pickled")


def __getattr__(name: str) -> Any:
    # The on-disk key ring lives in keyring.py (its own seam: files, locks, permissions);
    # keep `from ehub_core.signing.keys import KeyRing` working for callers who expect it here.
    if name in {"KeyRing", "KeyFileError", "NoActiveKeyError", "DEFAULT_KEY_LIFETIME"}:
        from ehub_core.signing import keyring

        return getattr(keyring, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

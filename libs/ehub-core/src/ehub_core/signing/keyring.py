"""A hub's private signing keys on disk, with rotation.

Layout of the directory (mode 0700)::

    keyring.json          public metadata: kid, file, public key, fingerprint, window
    CN_2026-11.pem        PKCS#8 PEM private key, mode 0600 (``#`` becomes ``_``)
    .keyring.lock         flock target serialising writers
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ehub_core.signing.keys import (
    HubKey,
    PublicKeyInfo,
    b64url,
    format_time,
    utc,
    validate_hub_id,
)

DEFAULT_KEY_LIFETIME = timedelta(days=365)
_METADATA_FILE = "keyring.json"
_LOCK_FILE = ".keyring.lock"
_FORMAT = "ehub-keyring/1"


class KeyFileError(Exception):
    """The key directory is unreadable, inconsistent or unsafely permissioned."""


class NoActiveKeyError(LookupError):
    """No key in the ring is valid at the requested time."""


def _now() -> datetime:
    return datetime.now(UTC)


class KeyRing:
    """A hub's private keys on disk: one directory (mode 0700) holding one PKCS#8 PEM file per
    key (created 0600 with ``O_EXCL``, never overwritten) and ``keyring.json`` with each key's
    id, file, public key, fingerprint and window (public data only).

    Mutations take an exclusive ``flock`` on the directory and re-read the metadata first, so
    two processes sharing the directory (uvicorn workers, the ``ehub`` CLI) do not lose each
    other's keys. Loading refuses key files readable by group or others, as OpenSSH does
    (group read is allowed when the file's group is this process's own group, as a
    Kubernetes ``fsGroup`` volume sets it), unless ``strict_permissions=False`` (for
    volumes that cannot carry modes).
    """

    def __init__(
        self, directory: str | os.PathLike[str], hub_id: str, *, strict_permissions: bool = True
    ) -> None:
        self.directory = Path(directory)
        self.hub_id = validate_hub_id(hub_id)
        self.strict_permissions = strict_permissions
        self._keys: dict[str, HubKey] = {}
        self._revoked: dict[str, tuple[PublicKeyInfo, datetime]] = {}
        self.reload()

    # -- reading --------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the metadata and key files from disk."""
        meta_path = self.directory / _METADATA_FILE
        if not meta_path.exists():
            self._keys, self._revoked = {}, {}
            return
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"cannot read {meta_path}: {exc}") from exc
        if meta.get("format") != _FORMAT or meta.get("hub_id") != self.hub_id:
            raise KeyFileError(
                f"{meta_path} is not an {_FORMAT} key ring for hub {self.hub_id} "
                f"(format={meta.get('format')!r}, hub_id={meta.get('hub_id')!r})"
            )
        keys: dict[str, HubKey] = {}
        for entry in meta.get("keys", []):
            key = self._load_key(entry)
            keys[key.kid] = key
        revoked = {}
        for entry in meta.get("revoked", []):
            info = PublicKeyInfo.from_dict(entry).as_revoked()
            revoked[info.kid] = (info, datetime.fromisoformat(entry["revoked_at"]))
        self._keys, self._revoked = keys, revoked

    def _load_key(self, entry: dict[str, Any]) -> HubKey:
        path = self.directory / entry["file"]
        try:
            st = path.stat()
            mode = st.st_mode
            # Kubernetes' fsGroup may add group read to files on the volume: allowed only
            # when that group is this process's own; nothing else for group or others.
            unsafe = 0o037 if st.st_gid == os.getegid() else 0o077
            if self.strict_permissions and mode & unsafe:
                raise KeyFileError(
                    f"private key file {path} is accessible by group or others "
                    f"(mode {oct(mode & 0o777)}); run: chmod 600 {path}"
                )
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read private key file {path}: {exc}") from exc
        key = HubKey.from_pkcs8_pem(
            pem,
            kid=entry["kid"],
            not_before=datetime.fromisoformat(entry["not_before"]),
            not_after=datetime.fromisoformat(entry["not_after"]),
        )
        if b64url(key.public_key) != entry["public_key"]:
            raise KeyFileError(f"{path} does not hold the key recorded for {key.kid}")
        return key

    def all_keys(self) -> list[HubKey]:
        """All keys, oldest ``not_before`` first."""
        return sorted(self._keys.values(), key=lambda k: (k.not_before, k.kid))

    def get(self, kid: str) -> HubKey | None:
        return self._keys.get(kid)

    def active_key(self, now: datetime | None = None) -> HubKey:
        """The key to sign with at ``now``: of the keys valid then, the newest ``not_before``.

        Raises :class:`NoActiveKeyError` if none is valid (run ``rotate``).
        """
        when = utc(now, "now") if now is not None else _now()
        valid = [k for k in self.all_keys() if k.is_valid_at(when)]
        if not valid:
            raise NoActiveKeyError(f"hub {self.hub_id} has no key valid at {format_time(when)}")
        return valid[-1]

    def public_keys(self, now: datetime | None = None) -> list[PublicKeyInfo]:
        """Public halves to publish: every key not yet expired at ``now`` (all keys if None),
        including keys announced ahead of their ``not_before``."""
        when = utc(now, "now") if now is not None else None
        return [k.public_info for k in self.all_keys() if when is None or when <= k.not_after]

    def revoked_kids(self) -> list[str]:
        """Ids of this hub's revoked keys (to publish until they would have expired)."""
        return sorted(self._revoked)

    def revoked_keys(self) -> list[PublicKeyInfo]:
        """Public halves of the revoked keys, each with ``revoked=True``."""
        return [self._revoked[kid][0] for kid in self.revoked_kids()]

    def resolve(self, kid: str) -> PublicKeyInfo | None:
        """Key resolver over this hub's own keys (for loopback checks and tests); a revoked
        key resolves with ``revoked=True``."""
        key = self._keys.get(kid)
        if key is not None:
            return key.public_info
        revoked = self._revoked.get(kid)
        return revoked[0] if revoked is not None else None

    # -- writing --------------------------------------------------------------------------

    def generate(
        self,
        now: datetime | None = None,
        *,
        not_before: datetime | None = None,
        lifetime: timedelta = DEFAULT_KEY_LIFETIME,
    ) -> HubKey:
        """Create and store a new key valid from ``not_before`` (default ``now``) for
        ``lifetime``. A future ``not_before`` pre-publishes the next key so peers learn it
        before it signs anything. Times are floored to whole seconds, as signatures are."""
        start = utc(not_before if not_before is not None else (now or _now()), "not_before")
        start = start.replace(microsecond=0)
        with self._locked():
            self.reload()
            kid = self._free_kid(start)
            key = HubKey.generate(kid=kid, not_before=start, not_after=start + lifetime)
            _write_private_file(self.directory / _file_name(kid), key.private_pkcs8_pem())
            self._keys[kid] = key
            self._write_metadata()
        return key

    def rotate(
        self, now: datetime | None = None, *, lifetime: timedelta = DEFAULT_KEY_LIFETIME
    ) -> HubKey:
        """Make a new key active from ``now``. Older keys are left as they are: they keep
        verifying until their own ``not_after`` (revocation is a separate, explicit act)."""
        return self.generate(now, lifetime=lifetime)

    def ensure_active(
        self, now: datetime | None = None, *, lifetime: timedelta = DEFAULT_KEY_LIFETIME
    ) -> HubKey:
        """The active key, generating one first if none is valid at ``now``."""
        try:
            return self.active_key(now)
        except NoActiveKeyError:
            return self.generate(now, lifetime=lifetime)

    def revoke(self, kid: str, now: datetime | None = None) -> HubKey:
        """Revoke one of this hub's keys at once: its private key file is deleted, it is never
        used or offered again, and its id is kept (public data and ``revoked_at``) so it
        can be published as revoked. Returns the key to sign with from now on, generating
        one if the revoked key was the only valid one. Idempotent; KeyError if unknown.

        Telling peers is the caller's job (a signed ``KeyRevoked`` event).
        """
        when = utc(now, "now") if now is not None else _now()
        with self._locked():
            self.reload()
            if kid not in self._revoked:
                key = self._keys.pop(kid, None)
                if key is None:
                    raise KeyError(f"hub {self.hub_id} has no key {kid!r}")
                self._revoked[kid] = (key.public_info.as_revoked(), when)
                self._write_metadata()
                (self.directory / _file_name(kid)).unlink(missing_ok=True)
        return self.ensure_active(when)

    def prune(
        self, now: datetime | None = None, *, keep_for: timedelta = timedelta(0)
    ) -> list[str]:
        """Delete keys that expired more than ``keep_for`` before ``now``; return their ids."""
        when = utc(now, "now") if now is not None else _now()
        with self._locked():
            self.reload()
            gone = [k.kid for k in self.all_keys() if k.not_after + keep_for < when]
            for kid in gone:
                del self._keys[kid]
            # A revoked id stays published until it would have expired anyway.
            for kid, (info, _) in list(self._revoked.items()):
                if info.not_after + keep_for < when:
                    del self._revoked[kid]
            self._write_metadata()
            for kid in gone:
                (self.directory / _file_name(kid)).unlink(missing_ok=True)
        return gone

    def _free_kid(self, start: datetime) -> str:
        base = f"{self.hub_id}#{start:%Y-%m}"
        kid, n = base, 1
        # A revoked id is never reused: peers hold it as revoked.
        while (
            kid in self._keys or kid in self._revoked or (self.directory / _file_name(kid)).exists()
        ):
            n += 1
            kid = f"{base}.{n}"
        return kid

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write_metadata(self) -> None:
        meta = {
            "format": _FORMAT,
            "hub_id": self.hub_id,
            "keys": [
                {"file": _file_name(k.kid), **k.public_info.to_dict()} for k in self.all_keys()
            ],
            "revoked": [
                {**info.to_dict(), "revoked_at": format_time(at)}
                for info, at in sorted(self._revoked.values(), key=lambda r: r[0].kid)
            ],
        }
        tmp = self.directory / (_METADATA_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / _METADATA_FILE)

    def __repr__(self) -> str:
        kids = list(self._keys)
        return f"KeyRing({str(self.directory)!r}, hub_id={self.hub_id!r}, kids={kids})"


def _file_name(kid: str) -> str:
    # Key ids have no "_" (see keys._KID_RE), so this mapping is one-to-one.
    return kid.replace("#", "_") + ".pem"


def _write_private_file(path: Path, data: bytes) -> None:
    # O_EXCL: never overwrite a key; 0o600 at creation so there is no window in which the
    # file is readable by others; fchmod in case a umask or ACL widened it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)

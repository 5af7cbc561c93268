"""This hub's own signing keys as the running gateway sees them.

``ehub keys rotate`` and ``ehub keys revoke`` run as separate processes and change the key
directory on disk. A gateway that kept its start-up copy of the key ring would go on
signing with a revoked key (its private half still in memory) and would never sign with
a rotated one, so :class:`LiveKeyRing` re-reads the ring whenever ``keyring.json`` changed
before it hands out the key to sign with. One ``stat`` per signature is cheap next to the
signature itself.
"""

from __future__ import annotations

import os
from datetime import datetime

from ehub_core.signing import HubKey, KeyRing

_METADATA = "keyring.json"
Stamp = tuple[int, int, int] | None


class LiveKeyRing(KeyRing):
    """A :class:`KeyRing` that follows changes other processes make on disk."""

    _stamp: Stamp = None

    def _disk_stamp(self) -> Stamp:
        try:
            st = os.stat(self.directory / _METADATA)
        except FileNotFoundError:
            return None
        # The file is replaced atomically (new inode), so the inode alone would do; the
        # mtime and size cover a file system that reuses inode numbers.
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def reload(self) -> None:
        stamp = self._disk_stamp()
        super().reload()
        self._stamp = stamp

    def active_key(self, now: datetime | None = None) -> HubKey:
        """The key to sign with, after re-reading the ring if another process changed it
        (a failure to re-read propagates: never sign with a key that may be revoked)."""
        if self._disk_stamp() != self._stamp:
            self.reload()
        return super().active_key(now)

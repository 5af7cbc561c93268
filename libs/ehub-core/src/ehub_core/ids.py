"""Identifiers: UUIDv7 (RFC 9562) and prefixed readable ids (``ord_…``, ``shp_…``)."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def uuid7() -> uuid.UUID:
    """Return a UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter, then random.

    Ids from one process are strictly increasing, even within one millisecond
    (RFC 9562 §6.2 method 1, fixed-length dedicated counter), so they sort by creation.
    """
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _seq = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        else:
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= seq << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def new_id(prefix: str) -> str:
    """A readable, time-ordered id such as ``ord_01934f...`` (prefix + UUIDv7 hex)."""
    return f"{prefix}_{uuid7().hex}"

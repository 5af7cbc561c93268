"""Identifiers: UUIDv7 (RFC 9562) and prefixed readable ids (``ord_…``, ``shp_…``)."""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_last_tail = 0
_TAIL_BITS = 74  # rand_a (12) + rand_b (62)


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then 74 bits that are random at
    each new millisecond and incremented by a random step within one (§6.2 method 2), so
    ids from this process sort strictly in creation order, even if the clock steps back,
    and stay unguessable."""
    global _last_ms, _last_tail
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            tail = secrets.randbits(_TAIL_BITS - 1)  # top bit clear: room to count up
        else:
            ms = _last_ms
            tail = _last_tail + 1 + secrets.randbits(32)
            if tail >> _TAIL_BITS:
                ms, tail = ms + 1, secrets.randbits(_TAIL_BITS - 1)
        _last_ms, _last_tail = ms, tail
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | (tail >> 62) << 64
        | 0b10 << 62
        | (tail & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


def new_id(prefix: str) -> str:
    """A readable, time-ordered id such as ``ord_01934f...`` (prefix + UUIDv7 hex)."""
    return f"{prefix}_{uuid7().hex}"

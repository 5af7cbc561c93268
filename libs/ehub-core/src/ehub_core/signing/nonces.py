"""Replay protection: each (key id, nonce) pair is accepted once while its signature could
still verify.

The verifier calls :meth:`NonceStore.check_and_store` only after a signature has verified,
so unauthenticated traffic cannot fill the store, and passes ``expires_at``: the last moment
the signature could pass the clock checks, after which the entry may be forgotten.
"""

from __future__ import annotations

import base64
import heapq
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


def new_nonce() -> str:
    """128 random bits, base64url without padding (22 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


@runtime_checkable
class NonceStore(Protocol):
    """Where seen nonces live. Implementations must make check-and-store atomic (a SQL
    store: ``INSERT`` on a unique ``(kid, nonce)`` key, treating a conflict as "seen")."""

    async def check_and_store(self, kid: str, nonce: str, expires_at: datetime) -> bool:
        """Record the nonce; True if it was new, False if it was already seen and unexpired."""
        ...


class NonceStoreFullError(RuntimeError):
    """The in-memory store hit its bound; refusing is safer than forgetting live nonces."""


class MemoryNonceStore:
    """A process-local :class:`NonceStore` for tests and single-process development.

    Forgets everything on restart and is not shared between workers: production uses the
    SQL-backed store. ``clock`` decides when entries expire (inject one in tests that sign
    at fixed times).
    """

    def __init__(
        self, *, max_entries: int = 1_000_000, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.max_entries = max_entries
        self._clock = clock or (lambda: datetime.now(UTC))
        self._expiry: dict[tuple[str, str], datetime] = {}
        self._heap: list[tuple[datetime, str, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def check_and_store(self, kid: str, nonce: str, expires_at: datetime) -> bool:
        # No await inside: atomic with respect to other coroutines on this event loop.
        now = self._clock()
        self._purge(now)
        key = (kid, nonce)
        seen = self._expiry.get(key)
        if seen is not None and seen >= now:
            return False
        if len(self._expiry) >= self.max_entries:
            raise NonceStoreFullError(f"nonce store holds {self.max_entries} live entries")
        self._expiry[key] = expires_at
        heapq.heappush(self._heap, (expires_at, kid, nonce))
        return True

    def _purge(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] < now:
            expires_at, kid, nonce = heapq.heappop(self._heap)
            if self._expiry.get((kid, nonce)) == expires_at:
                del self._expiry[(kid, nonce)]

"""Shared fixtures for the signing tests. Helpers are handed out as fixtures because the
suite runs with --import-mode=importlib (test modules cannot import conftest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ehub_core.signing import HubKey, MemoryNonceStore, PublicKeyInfo

NOW = datetime(2026, 11, 15, 12, 0, 0, tzinfo=UTC)

KeyFactory = Callable[..., HubKey]


def _make_key(
    kid: str = "CN#2026-11", *, start: datetime = NOW - timedelta(days=1), days: int = 30
) -> HubKey:
    return HubKey.generate(kid=kid, not_before=start, not_after=start + timedelta(days=days))


class Trust:
    """A peer's trust store: kid -> PublicKeyInfo, kept in memory as the gateway will."""

    def __init__(self, *keys: HubKey | PublicKeyInfo) -> None:
        self.keys: dict[str, PublicKeyInfo] = {}
        for key in keys:
            self.add(key)

    def add(self, key: HubKey | PublicKeyInfo) -> None:
        info = key.public_info if isinstance(key, HubKey) else key
        self.keys[info.kid] = info

    def revoke(self, kid: str) -> None:
        self.keys[kid] = self.keys[kid].as_revoked()

    def __call__(self, kid: str) -> PublicKeyInfo | None:
        return self.keys.get(kid)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_key() -> KeyFactory:
    return _make_key


@pytest.fixture
def trust_store() -> type[Trust]:
    return Trust


@pytest.fixture
def cn_key() -> HubKey:
    return _make_key("CN#2026-11")


@pytest.fixture
def trust(cn_key: HubKey) -> Trust:
    return Trust(cn_key)


@pytest.fixture
def nonces() -> MemoryNonceStore:
    return MemoryNonceStore(clock=lambda: NOW)

"""Content-Digest (RFC 9530) and the in-memory nonce store."""

from __future__ import annotations

import asyncio
import hashlib
from base64 import b64encode
from datetime import timedelta

import pytest

from ehub_core.signing import (
    MemoryNonceStore,
    NonceStore,
    NonceStoreFullError,
    SignatureError,
    content_digest,
    new_nonce,
    verify_content_digest,
)


def sha(name: str, body: bytes) -> str:
    return b64encode(hashlib.new(name, body).digest()).decode()


def test_empty_body_has_a_digest_too():
    verify_content_digest(content_digest(b""), b"")


@pytest.mark.parametrize(
    "field",
    [
        f"sha-512=:{sha('sha512', b'body')}:",
        f"sha-256=:{sha('sha256', b'body')}:, sha-512=:{sha('sha512', b'body')}:",
        f"md5=:AAAA:, sha-256=:{sha('sha256', b'body')}:",  # unknown algorithms are ignored
    ],
)
def test_accepted_digest_forms(field):
    verify_content_digest(field, b"body")


@pytest.mark.parametrize(
    "field",
    [
        None,
        "",
        "md5=:AAAA:",
        f"sha-256=:{sha('sha256', b'other')}:",
        f"sha-256=:{sha('sha256', b'body')}:, sha-512=:{sha('sha512', b'other')}:",
        "sha-256=not-bytes",
        "sha-256=:::",
    ],
)
def test_missing_wrong_or_malformed_digest_is_a_mismatch(field):
    with pytest.raises(SignatureError) as info:
        verify_content_digest(field, b"body")
    assert info.value.reason_code == "digest_mismatch"


def test_nonces_are_128_bit_base64url():
    nonces = {new_nonce() for _ in range(1000)}
    assert len(nonces) == 1000
    assert all(len(n) == 22 and "=" not in n and "+" not in n and "/" not in n for n in nonces)


async def test_memory_store_is_a_nonce_store(now):
    store = MemoryNonceStore(clock=lambda: now)
    assert isinstance(store, NonceStore)
    assert await store.check_and_store("CN#1", "n", now + timedelta(seconds=60))
    assert not await store.check_and_store("CN#1", "n", now + timedelta(seconds=60))
    assert await store.check_and_store("CA#1", "n", now + timedelta(seconds=60))  # per key


async def test_memory_store_forgets_nonces_after_they_expire(now):
    clock = [now]
    store = MemoryNonceStore(clock=lambda: clock[0])
    await store.check_and_store("CN#1", "n", now + timedelta(seconds=60))
    clock[0] = now + timedelta(seconds=61)
    assert await store.check_and_store("CN#1", "other", now + timedelta(seconds=120))
    assert len(store) == 1
    assert await store.check_and_store("CN#1", "n", now + timedelta(seconds=120))


async def test_concurrent_checks_admit_a_nonce_once(now):
    store = MemoryNonceStore(clock=lambda: now)
    results = await asyncio.gather(
        *(store.check_and_store("CN#1", "n", now + timedelta(seconds=60)) for _ in range(50))
    )
    assert results.count(True) == 1


async def test_full_store_refuses_rather_than_forgetting_live_nonces(now):
    store = MemoryNonceStore(max_entries=2, clock=lambda: now)
    for nonce in ("a", "b"):
        await store.check_and_store("CN#1", nonce, now + timedelta(seconds=60))
    with pytest.raises(NonceStoreFullError):
        await store.check_and_store("CN#1", "c", now + timedelta(seconds=60))

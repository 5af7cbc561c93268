"""A signature's own ``expires`` holds with only a few seconds of grace (``expires_skew``,
5 s by default), whatever the clock skew allowed for ``created`` (300 s): a captured request
is not good for minutes after it said it expires."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ehub_core.signing import SignatureError, sign_request, sign_response, verify_request
from ehub_core.signing.http import DEFAULT_EXPIRES_SKEW, verify_response

URL = "https://hub-ca.example/federation/v1/events"
BODY = b"batch"


def _signed(key: Any, now: datetime, ttl: int = 60) -> dict[str, str]:
    headers = {"Content-Type": "application/x-protobuf"}
    headers.update(sign_request("POST", URL, headers, BODY, key, key.hub_id, now=now, ttl=ttl))
    return headers


async def _verify(headers: Any, trust: Any, nonces: Any, at: datetime, **kw: Any) -> Any:
    return await verify_request(
        "POST", URL, headers, BODY, resolve_key=trust, nonce_store=nonces, now=at, **kw
    )


def test_the_default_grace_is_five_seconds():
    assert DEFAULT_EXPIRES_SKEW == 5


async def test_a_signature_is_good_until_expires_plus_the_small_skew(cn_key, trust, nonces, now):
    # expires = now + 60; verified 5 s after it (the default skew): still good.
    result = await _verify(_signed(cn_key, now), trust, nonces, now + timedelta(seconds=65))
    assert result.expires == now + timedelta(seconds=60)


@pytest.mark.parametrize("late", [6, 61, 299])
async def test_past_expires_plus_the_skew_is_expired_even_inside_the_clock_skew(
    cn_key, trust, nonces, now, late
):
    # Before this fix a signature was accepted up to 300 s (the clock skew) past expires.
    at = now + timedelta(seconds=60 + late)
    with pytest.raises(SignatureError) as info:
        await _verify(_signed(cn_key, now), trust, nonces, at)
    assert info.value.reason_code == "signature_expired"


async def test_expires_skew_is_a_parameter(cn_key, trust, nonces, now):
    at = now + timedelta(seconds=60 + 20)
    headers = _signed(cn_key, now)
    with pytest.raises(SignatureError):
        await _verify(headers, trust, nonces, at)
    result = await _verify(headers, trust, nonces, at, expires_skew=30)
    assert result.kid == cn_key.kid
    with pytest.raises(SignatureError) as info:
        await _verify(
            _signed(cn_key, now), trust, nonces, now + timedelta(seconds=61), expires_skew=0
        )
    assert info.value.reason_code == "signature_expired"


async def test_responses_hold_the_same_deadline(cn_key, trust, now):
    request = _signed(cn_key, now)
    headers = {"Content-Type": "application/octet-stream"}
    headers.update(
        sign_response(
            200,
            headers,
            b"receipt",
            cn_key,
            cn_key.hub_id,
            request_method="POST",
            request_url=URL,
            request_headers=request,
            now=now,
        )
    )

    async def check(at: datetime) -> Any:
        return await verify_response(
            200,
            headers,
            b"receipt",
            request_method="POST",
            request_url=URL,
            request_headers=request,
            resolve_key=trust,
            now=at,
        )

    assert (await check(now + timedelta(seconds=64))).hub_id == "CN"
    with pytest.raises(SignatureError) as info:
        await check(now + timedelta(seconds=66))
    assert info.value.reason_code == "signature_expired"

"""RFC 9421 request/response signing and every rejection reason, with real Ed25519 keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from ehub_core.signing import (
    REQUEST_COMPONENTS,
    HubKey,
    KeyRing,
    MemoryNonceStore,
    SignatureError,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)
from ehub_core.signing.structured_fields import InnerList, parse_dictionary

URL = "https://hub-ca.example/federation/v1/events?batch=1"
BODY = b'{"events": ["a", "b"]}'


def signed(key: HubKey, now: datetime, **kwargs: Any) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(sign_request("POST", URL, headers, BODY, key, key.hub_id, now=now, **kwargs))
    return headers


async def verify(headers: Any, trust: Any, nonces: Any, now: datetime, **kwargs: Any) -> Any:
    params: dict[str, Any] = {
        "method": "POST",
        "url": URL,
        "body": BODY,
        "resolve_key": trust,
        "nonce_store": nonces,
        "now": now,
    }
    params.update(kwargs)
    method, url, body = params.pop("method"), params.pop("url"), params.pop("body")
    return await verify_request(method, url, headers, body, **params)


async def rejected(reason: str, *args: Any, **kwargs: Any) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        await verify(*args, **kwargs)
    assert info.value.reason_code == reason, info.value
    return info.value


# -- the happy path -----------------------------------------------------------------------


async def test_signed_request_verifies_and_names_the_sender(cn_key, trust, nonces, now):
    result = await verify(signed(cn_key, now), trust, nonces, now)
    assert (result.hub_id, result.kid, result.created) == ("CN", "CN#2026-11", now)
    assert result.expires == now + timedelta(seconds=60)
    assert len(result.nonce) == 22  # 128 bits, base64url without padding


def test_signature_input_covers_the_profile_components_and_parameters(cn_key, now):
    headers = signed(cn_key, now, nonce="n0nce")
    assert headers["EHub-Hub"] == "CN"
    assert headers["Content-Digest"].startswith("sha-256=:")
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest" "ehub-hub");'
        f"created={int(now.timestamp())};expires={int(now.timestamp()) + 60};"
        'nonce="n0nce";keyid="CN#2026-11";alg="ed25519"'
    )
    signature = parse_dictionary(headers["Signature"])["sig1"]
    assert not isinstance(signature, InnerList) and len(signature.value) == 64  # type: ignore[arg-type]


async def test_headers_verify_from_dict_httpx_and_raw_asgi_forms(cn_key, trust, now):
    headers = signed(cn_key, now)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    for form in (headers, httpx.Headers(headers), raw):
        await verify(form, trust, MemoryNonceStore(clock=lambda: now), now)


async def test_target_uri_is_normalised_for_case_and_default_port(cn_key, trust, nonces, now):
    headers = {"Content-Type": "application/json"}
    loud = "HTTPS://Hub-CA.Example:443/federation/v1/events?batch=1"
    headers.update(sign_request("POST", loud, headers, BODY, cn_key, "CN", now=now))
    await verify(headers, trust, nonces, now)


async def test_extra_components_are_covered_and_can_be_required(cn_key, trust, nonces, now):
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k-1"}
    headers.update(
        sign_request(
            "POST", URL, headers, BODY, cn_key, "CN", now=now, extra_components=["idempotency-key"]
        )
    )
    required = (*REQUEST_COMPONENTS, "idempotency-key")
    await verify(headers, trust, nonces, now, required_components=required)
    headers["Idempotency-Key"] = "k-2"
    await rejected("bad_signature", headers, trust, nonces, now, required_components=required)


# -- each rejection reason ----------------------------------------------------------------


async def test_request_without_signature_is_rejected(trust, nonces, now):
    await rejected("missing_signature", {"Content-Type": "application/json"}, trust, nonces, now)


async def test_signature_under_another_label_is_missing(cn_key, trust, nonces, now):
    await rejected("missing_signature", signed(cn_key, now, label="other"), trust, nonces, now)


async def test_garbled_signature_input_is_malformed(cn_key, trust, nonces, now):
    headers = signed(cn_key, now)
    headers["Signature-Input"] = 'sig1=("@method" broken'
    await rejected("malformed_signature", headers, trust, nonces, now)


async def test_signature_without_nonce_is_malformed(cn_key, trust, nonces, now):
    headers = signed(cn_key, now, nonce="x")
    headers["Signature-Input"] = headers["Signature-Input"].replace(';nonce="x"', "")
    await rejected("malformed_signature", headers, trust, nonces, now)


async def test_oversized_nonce_is_malformed(cn_key, trust, nonces, now):
    await rejected("malformed_signature", signed(cn_key, now, nonce="n" * 129), trust, nonces, now)


async def test_uncovered_required_component_is_rejected(cn_key, trust, nonces, now):
    required = (*REQUEST_COMPONENTS, "content-type")
    error = await rejected(
        "missing_components",
        signed(cn_key, now),
        trust,
        nonces,
        now,
        required_components=required,
    )
    assert '"content-type"' in error.detail


async def test_unknown_key_is_rejected(make_key, trust, nonces, now):
    stranger = make_key("CN#2026-12")
    await rejected("unknown_key", signed(stranger, now), trust, nonces, now)


async def test_key_with_same_id_but_other_material_is_a_bad_signature(make_key, trust, nonces, now):
    impostor = make_key("CN#2026-11")
    await rejected("bad_signature", signed(impostor, now), trust, nonces, now)


async def test_revoked_key_is_rejected(cn_key, trust, nonces, now):
    trust.revoke(cn_key.kid)
    await rejected("key_revoked", signed(cn_key, now), trust, nonces, now)


async def test_resolver_can_refuse_with_its_own_reason(cn_key, nonces, now):
    def resolver(kid: str) -> None:
        raise SignatureError("key_revoked", f"{kid} revoked by push")

    await rejected("key_revoked", signed(cn_key, now), resolver, nonces, now)


async def test_key_not_yet_valid_at_created_is_rejected(make_key, trust_store, nonces, now):
    early = make_key("CN#2026-12", start=now - timedelta(days=1))
    published = early.public_info.__class__(
        kid=early.kid,
        public_key=early.public_key,
        not_before=now + timedelta(hours=1),
        not_after=now + timedelta(days=30),
    )
    await rejected("key_not_yet_valid", signed(early, now), trust_store(published), nonces, now)


async def test_altered_body_is_a_digest_mismatch(cn_key, trust, nonces, now):
    await rejected(
        "digest_mismatch", signed(cn_key, now), trust, nonces, now, body=b'{"events": []}'
    )


async def test_missing_content_digest_is_a_digest_mismatch(cn_key, trust, nonces, now):
    headers = signed(cn_key, now)
    del headers["Content-Digest"]
    await rejected("digest_mismatch", headers, trust, nonces, now)


@pytest.mark.parametrize(
    ("field", "value"),
    [("method", "PUT"), ("url", "https://hub-ca.example/federation/v1/events?batch=2")],
)
async def test_altered_method_or_target_is_a_bad_signature(
    cn_key, trust, nonces, now, field, value
):
    await rejected("bad_signature", signed(cn_key, now), trust, nonces, now, **{field: value})


async def test_altered_signature_bytes_are_a_bad_signature(cn_key, trust, nonces, now):
    headers = signed(cn_key, now)
    other = signed(cn_key, now)  # a valid signature, but over another nonce
    headers["Signature"] = other["Signature"]
    await rejected("bad_signature", headers, trust, nonces, now)


async def test_hub_header_must_name_the_keys_hub(cn_key, trust, nonces, now):
    headers = signed(cn_key, now)
    headers["EHub-Hub"] = "CA"
    await rejected("hub_mismatch", headers, trust, nonces, now)


async def test_created_in_the_future_beyond_skew_is_rejected(cn_key, trust, nonces, now):
    headers = signed(cn_key, now + timedelta(seconds=301))
    await rejected("clock_skew", headers, trust, nonces, now)


async def test_created_in_the_past_beyond_skew_is_rejected(cn_key, trust, nonces, now):
    headers = signed(cn_key, now, ttl=3600)
    await rejected("clock_skew", headers, trust, nonces, now + timedelta(seconds=301))


async def test_created_within_skew_is_accepted(cn_key, trust, nonces, now):
    await verify(signed(cn_key, now, ttl=3600), trust, nonces, now + timedelta(seconds=299))


async def test_signature_past_expires_is_rejected(cn_key, trust, nonces, now):
    headers = signed(cn_key, now, ttl=60)
    await rejected("signature_expired", headers, trust, nonces, now + timedelta(seconds=400))


async def test_replayed_nonce_is_rejected(cn_key, trust, nonces, now):
    headers = signed(cn_key, now)
    await verify(headers, trust, nonces, now)
    await rejected("replayed_nonce", headers, trust, nonces, now + timedelta(seconds=5))


async def test_rejected_request_does_not_burn_its_nonce(cn_key, trust, nonces, now):
    headers = signed(cn_key, now)
    await rejected("digest_mismatch", headers, trust, nonces, now, body=b"tampered")
    await verify(headers, trust, nonces, now)


async def test_each_signing_uses_a_fresh_nonce(cn_key, trust, nonces, now):
    await verify(signed(cn_key, now), trust, nonces, now)
    await verify(signed(cn_key, now), trust, nonces, now)


# -- rotation -----------------------------------------------------------------------------


async def test_rotated_out_key_verifies_until_not_after_then_expires(
    tmp_path, trust_store, nonces, now
):
    ring = KeyRing(tmp_path / "keys", "CN")
    old = ring.generate(now - timedelta(days=10), lifetime=timedelta(days=20))
    new = ring.rotate(now)
    assert ring.active_key(now) is new
    peer = trust_store(*ring.public_keys())

    # Signed by the old key before rotation propagated everywhere: still good.
    await verify(signed(old, now), peer, nonces, now)
    await verify(signed(new, now), peer, nonces, now)

    # A signer still using the old key after its not_after (a stale config, a stolen copy):
    # the same private key with a window it does not have.
    stale = HubKey.from_pkcs8_pem(
        old.private_pkcs8_pem(),
        kid=old.kid,
        not_before=old.not_before,
        not_after=old.not_after + timedelta(days=30),
    )
    late = old.not_after + timedelta(seconds=1)
    late_nonces = MemoryNonceStore(clock=lambda: late)
    await rejected("key_expired", signed(stale, late), peer, late_nonces, late)
    await verify(signed(new, late), peer, late_nonces, late)


def test_signing_with_a_key_outside_its_window_is_refused(cn_key):
    with pytest.raises(ValueError, match="not valid"):
        signed(cn_key, cn_key.not_after + timedelta(seconds=1))


def test_signing_for_another_hub_is_refused(cn_key, now):
    with pytest.raises(ValueError, match="does not belong"):
        sign_request("GET", URL, {}, b"", cn_key, "CA", now=now)


# -- responses ----------------------------------------------------------------------------


def response_for(
    ca_key: HubKey,
    request_headers: dict[str, str],
    now: datetime,
    status: int = 202,
    body: bytes = b'{"accepted": 2}',
) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(
        sign_response(
            status,
            headers,
            body,
            ca_key,
            ca_key.hub_id,
            request_method="POST",
            request_url=URL,
            request_headers=request_headers,
            now=now,
        )
    )
    return headers


async def verify_resp(
    headers: dict[str, str],
    request_headers: dict[str, str],
    trust: Any,
    now: datetime,
    status: int = 202,
    body: bytes = b'{"accepted": 2}',
    **kwargs: Any,
) -> Any:
    return await verify_response(
        status,
        headers,
        body,
        request_method="POST",
        request_url=URL,
        request_headers=request_headers,
        resolve_key=trust,
        now=now,
        **kwargs,
    )


async def test_signed_response_is_bound_to_its_request(cn_key, make_key, trust_store, now):
    ca_key = make_key("CA#2026-11")
    request_headers = signed(cn_key, now)
    headers = response_for(ca_key, request_headers, now)
    assert '"signature";key="sig1";req' in headers["Signature-Input"]
    assert '"@method";req "@target-uri";req' in headers["Signature-Input"]
    result = await verify_resp(
        headers,
        request_headers,
        trust_store(ca_key),
        now,
        expected_hub="CA",
        nonce_store=MemoryNonceStore(clock=lambda: now),
    )
    assert (result.hub_id, result.kid) == ("CA", "CA#2026-11")


async def test_response_replayed_to_another_request_is_rejected(cn_key, make_key, trust_store, now):
    ca_key = make_key("CA#2026-11")
    first, second = signed(cn_key, now), signed(cn_key, now)
    headers = response_for(ca_key, first, now)
    with pytest.raises(SignatureError) as info:
        await verify_resp(headers, second, trust_store(ca_key), now)
    assert info.value.reason_code == "bad_signature"


async def test_response_from_an_unexpected_hub_is_rejected(cn_key, make_key, trust_store, now):
    my_key = make_key("MY#2026-11")
    request_headers = signed(cn_key, now)
    headers = response_for(my_key, request_headers, now)
    with pytest.raises(SignatureError) as info:
        await verify_resp(headers, request_headers, trust_store(my_key), now, expected_hub="CA")
    assert info.value.reason_code == "hub_mismatch"


async def test_response_with_altered_status_or_body_is_rejected(cn_key, make_key, trust_store, now):
    ca_key = make_key("CA#2026-11")
    request_headers = signed(cn_key, now)
    headers = response_for(ca_key, request_headers, now)
    peer = trust_store(ca_key)
    with pytest.raises(SignatureError) as info:
        await verify_resp(headers, request_headers, peer, now, status=200)
    assert info.value.reason_code == "bad_signature"
    with pytest.raises(SignatureError) as info:
        await verify_resp(headers, request_headers, peer, now, body=b'{"accepted": 0}')
    assert info.value.reason_code == "digest_mismatch"


async def test_response_to_an_unsigned_request_covers_method_and_target(make_key, trust_store, now):
    ca_key = make_key("CA#2026-11")
    headers = response_for(ca_key, {"Accept": "application/json"}, now)
    assert '"signature";key="sig1";req' not in headers["Signature-Input"]
    await verify_resp(headers, {"Accept": "application/json"}, trust_store(ca_key), now)


async def test_response_nonce_replay_is_rejected_when_a_store_is_given(
    cn_key, make_key, trust_store, now
):
    ca_key = make_key("CA#2026-11")
    request_headers = signed(cn_key, now)
    headers = response_for(ca_key, request_headers, now)
    store = MemoryNonceStore(clock=lambda: now)
    await verify_resp(headers, request_headers, trust_store(ca_key), now, nonce_store=store)
    with pytest.raises(SignatureError) as info:
        await verify_resp(headers, request_headers, trust_store(ca_key), now, nonce_store=store)
    assert info.value.reason_code == "replayed_nonce"

"""Interoperability with an independent RFC 9421 implementation (http-message-signatures):
what it signs we verify, what we sign it verifies - requests and responses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from ehub_core.signing import (
    REQUEST_COMPONENTS,
    HubKey,
    MemoryNonceStore,
    SignatureError,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)

URL = "https://hub-ca.example/federation/v1/events"
BODY = b'{"events": ["e1"]}'
RESPONSE_BODY = b'{"receipt": "r1"}'
THEIR_RESPONSE_COMPONENTS = (
    "@status",
    "content-digest",
    "ehub-hub",
    '"@method";req',
    '"@target-uri";req',
    '"signature";key="sig1";req',
)


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Response:
    status_code: int
    request: Request
    headers: dict[str, str] = field(default_factory=dict)


def resolver_for(key: HubKey) -> MappingKeyResolver:
    return MappingKeyResolver(
        public_keys={key.kid: ed25519.Ed25519PublicKey.from_public_bytes(key.public_key)},
        private_keys={key.kid: key.private_pkcs8_pem()},
    )


def their_signer(key: HubKey) -> HTTPMessageSigner:
    return HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=resolver_for(key))


def their_verifier(key: HubKey) -> HTTPMessageVerifier:
    return HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519, key_resolver=resolver_for(key)
    )


def their_signed_request(key: HubKey, now: datetime, **options: Any) -> Request:
    request = Request("POST", URL, {"Content-Type": "application/json", "EHub-Hub": key.hub_id})
    sign_options: dict[str, Any] = {
        "key_id": key.kid,
        "created": now,
        "expires": now + timedelta(seconds=60),
        "nonce": "their-nonce-1",
        "label": "sig1",
        "covered_component_ids": REQUEST_COMPONENTS,
        "body": BODY,
    }
    sign_options.update(options)
    their_signer(key).sign(request, **sign_options)
    return request


@pytest.fixture
def real_now() -> datetime:
    # The independent verifier checks `created` against the wall clock.
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def key(make_key, real_now) -> HubKey:
    return make_key("CN#2026-11", start=real_now - timedelta(days=1))


async def test_request_signed_by_them_verifies_with_us(key, trust_store, real_now):
    request = their_signed_request(key, real_now)
    assert request.headers["Content-Digest"].startswith("sha-256=:")
    result = await verify_request(
        request.method,
        request.url,
        request.headers,
        BODY,
        resolve_key=trust_store(key),
        nonce_store=MemoryNonceStore(),
        now=real_now,
    )
    assert (result.hub_id, result.kid, result.nonce) == ("CN", key.kid, "their-nonce-1")
    assert result.created == real_now


async def test_request_signed_by_us_verifies_with_them(key, real_now):
    request = Request("POST", URL, {"Content-Type": "application/json"})
    request.headers.update(
        sign_request(request.method, URL, request.headers, BODY, key, "CN", now=real_now)
    )
    [result] = their_verifier(key).verify(request, require_components=REQUEST_COMPONENTS, body=BODY)
    assert result.label == "sig1"
    assert result.parameters["keyid"] == key.kid
    assert result.parameters["alg"] == "ed25519"
    assert result.body == BODY
    assert result.covered_components['"ehub-hub"'] == "CN"


async def test_response_signed_by_us_verifies_with_them(key, make_key, real_now):
    ca_key = make_key("CA#2026-11", start=real_now - timedelta(days=1))
    request = Request("POST", URL, {"Content-Type": "application/json"})
    request.headers.update(
        sign_request("POST", URL, request.headers, BODY, key, "CN", now=real_now)
    )
    response = Response(202, request, {"Content-Type": "application/json"})
    response.headers.update(
        sign_response(
            202,
            response.headers,
            RESPONSE_BODY,
            ca_key,
            "CA",
            request_method="POST",
            request_url=URL,
            request_headers=request.headers,
            now=real_now,
        )
    )
    [result] = their_verifier(ca_key).verify(
        response, require_components=THEIR_RESPONSE_COMPONENTS, body=RESPONSE_BODY
    )
    assert result.covered_components['"signature";key="sig1";req'] == request.headers[
        "Signature"
    ].removeprefix("sig1=")


async def test_response_signed_by_them_verifies_with_us(key, make_key, trust_store, real_now):
    ca_key = make_key("CA#2026-11", start=real_now - timedelta(days=1))
    request = their_signed_request(key, real_now)
    response = Response(202, request, {"Content-Type": "application/json", "EHub-Hub": "CA"})
    their_signer(ca_key).sign(
        response,
        key_id=ca_key.kid,
        created=real_now,
        expires=real_now + timedelta(seconds=60),
        nonce="their-response-nonce",
        label="sig1",
        covered_component_ids=THEIR_RESPONSE_COMPONENTS,
        body=RESPONSE_BODY,
    )
    result = await verify_response(
        202,
        response.headers,
        RESPONSE_BODY,
        request_method="POST",
        request_url=URL,
        request_headers=request.headers,
        resolve_key=trust_store(ca_key),
        expected_hub="CA",
        now=real_now,
    )
    assert result.kid == ca_key.kid


async def test_their_signature_without_our_coverage_is_rejected(key, trust_store, real_now):
    request = their_signed_request(key, real_now, covered_component_ids=("@method", "@authority"))
    with pytest.raises(SignatureError) as info:
        await verify_request(
            "POST",
            URL,
            request.headers,
            BODY,
            resolve_key=trust_store(key),
            nonce_store=MemoryNonceStore(),
            now=real_now,
        )
    assert info.value.reason_code == "missing_components"
    assert '"@target-uri"' in info.value.detail and '"ehub-hub"' in info.value.detail


async def test_their_signature_without_a_nonce_is_rejected(key, trust_store, real_now):
    request = their_signed_request(key, real_now, nonce=None)
    with pytest.raises(SignatureError) as info:
        await verify_request(
            "POST",
            URL,
            request.headers,
            BODY,
            resolve_key=trust_store(key),
            nonce_store=MemoryNonceStore(),
            now=real_now,
        )
    assert info.value.reason_code == "malformed_signature"


async def test_tampered_body_is_rejected_by_both_implementations(key, trust_store, real_now):
    tampered = b'{"events": ["e2"]}'
    theirs = their_signed_request(key, real_now)
    with pytest.raises(SignatureError) as info:
        await verify_request(
            "POST",
            URL,
            theirs.headers,
            tampered,
            resolve_key=trust_store(key),
            nonce_store=MemoryNonceStore(),
            now=real_now,
        )
    assert info.value.reason_code == "digest_mismatch"

    ours = Request("POST", URL, {})
    ours.headers.update(sign_request("POST", URL, {}, BODY, key, "CN", now=real_now))
    with pytest.raises(InvalidSignature):
        their_verifier(key).verify(ours, require_components=REQUEST_COMPONENTS, body=tampered)


async def test_their_signature_by_an_untrusted_key_is_rejected(
    key, make_key, trust_store, real_now
):
    other = make_key("CN#2026-12", start=real_now - timedelta(days=1))
    request = their_signed_request(other, real_now)
    with pytest.raises(SignatureError) as info:
        await verify_request(
            "POST",
            URL,
            request.headers,
            BODY,
            resolve_key=trust_store(key),
            nonce_store=MemoryNonceStore(),
            now=real_now,
        )
    assert info.value.reason_code == "unknown_key"

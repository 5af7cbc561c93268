"""The signer and verifier on real frameworks: an httpx client with HubSigningAuth talking
to a FastAPI app that verifies requests and signs responses (in process, over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from ehub_core.signing import (
    HubKey,
    HubSigningAuth,
    KeyRing,
    MemoryNonceStore,
    SignatureError,
    sign_response,
    target_uri_from_asgi,
    verify_request,
    verify_response,
)

BASE = "http://hub-ca.test"


def ca_app(ca_key: HubKey, trust) -> FastAPI:
    app = FastAPI()
    nonces = MemoryNonceStore()

    @app.post("/federation/v1/{rest:path}")
    async def receive(request: Request, rest: str) -> Response:
        body = await request.body()
        try:
            verified = await verify_request(
                request.method,
                target_uri_from_asgi(request.scope),
                request.headers,
                body,
                resolve_key=trust,
                nonce_store=nonces,
            )
        except SignatureError as exc:
            return Response(
                status_code=401,
                media_type="application/problem+json",
                content=f'{{"reason_code": "{exc.reason_code}"}}',
            )
        content = f'{{"from": "{verified.hub_id}"}}'.encode()
        headers = {"Content-Type": "application/json"}
        headers.update(
            sign_response(
                202,
                headers,
                content,
                ca_key,
                "CA",
                request_method=request.method,
                request_url=target_uri_from_asgi(request.scope),
                request_headers=request.headers,
            )
        )
        return Response(status_code=202, content=content, headers=headers)

    return app


@pytest.fixture
def keys(make_key, trust_store):
    start = datetime.now(UTC) - timedelta(days=1)
    cn, ca = make_key("CN#2026-11", start=start), make_key("CA#2026-11", start=start)
    return cn, ca, trust_store(cn), trust_store(ca)


async def test_signed_client_request_is_verified_by_the_app_and_its_response_by_the_client(
    keys,
):
    cn_key, ca_key, ca_trusts, cn_trusts = keys
    transport = httpx.ASGITransport(app=ca_app(ca_key, ca_trusts))
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, auth=HubSigningAuth(lambda: cn_key, "CN")
    ) as client:
        # Percent-encoded path: the server must rebuild the URI from raw_path, not the
        # decoded path Starlette's request.url is built from.
        response = await client.post("/federation/v1/events/a%20b?x=%2F", json={"events": []})
    assert response.status_code == 202, response.text
    assert response.json() == {"from": "CN"}
    verified = await verify_response(
        response.status_code,
        response.headers,
        response.content,
        request_method=response.request.method,
        request_url=str(response.request.url),
        request_headers=response.request.headers,
        resolve_key=cn_trusts,
        expected_hub="CA",
    )
    assert verified.hub_id == "CA"


async def test_app_rejects_an_unsigned_request_with_a_reason_code(keys):
    _, ca_key, ca_trusts, _ = keys
    transport = httpx.ASGITransport(app=ca_app(ca_key, ca_trusts))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        response = await client.post("/federation/v1/events", json={})
    assert response.status_code == 401
    assert response.json() == {"reason_code": "missing_signature"}


async def test_streamed_request_body_is_read_and_signed(keys):
    cn_key, ca_key, ca_trusts, _ = keys

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"events": '
        yield b"[]}"

    transport = httpx.ASGITransport(app=ca_app(ca_key, ca_trusts))
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, auth=HubSigningAuth(lambda: cn_key, "CN")
    ) as client:
        response = await client.post("/federation/v1/events", content=chunks())
    assert response.status_code == 202, response.text


async def test_auth_signs_with_the_key_ring_active_key_after_rotation(tmp_path, keys):
    _, ca_key, ca_trusts, _ = keys
    ring = KeyRing(tmp_path / "keys", "CN")
    ring.generate(datetime.now(UTC) - timedelta(days=1))
    for key in ring.all_keys():
        ca_trusts.add(key)
    transport = httpx.ASGITransport(app=ca_app(ca_key, ca_trusts))
    auth = HubSigningAuth(ring.active_key, "CN")
    async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
        first = await client.post("/federation/v1/events", content=b"{}")
        new = ring.rotate()
        ca_trusts.add(new)
        second = await client.post("/federation/v1/events", content=b"{}")
    assert (first.status_code, second.status_code) == (202, 202)
    assert new.kid in second.request.headers["Signature-Input"]


def test_sync_client_requests_are_signed_too(keys):
    cn_key, *_ = keys
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with httpx.Client(
        transport=httpx.MockTransport(handler), auth=HubSigningAuth(lambda: cn_key, "CN")
    ) as client:
        client.get(f"{BASE}/.well-known/ehub")
    assert seen[0].headers["EHub-Hub"] == "CN"
    assert seen[0].headers["Signature-Input"].startswith('sig1=("@method" "@target-uri"')

"""The services' HTTP client: a broken connection is always an ``httpx.HTTPError``."""

from __future__ import annotations

import socket

import httpx
import pytest

from ehub_core import http_client


class _StackBug(httpx.AsyncBaseTransport):
    """What httpcore raised when a peer died right after accepting the connection."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AttributeError("'NoneType' object has no attribute 'getpeername'")


async def test_a_connection_stack_bug_is_a_network_error_naming_the_host() -> None:
    transport = http_client.Transport()
    transport._inner = _StackBug()  # type: ignore[assignment]
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.NetworkError, match=r"127\.0\.0\.1:9 broke: AttributeError"):
            await client.get("http://127.0.0.1:9/x")


async def test_refused_connections_and_answers_pass_through_unchanged() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    async with http_client.client(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
    app_transport = httpx.MockTransport(lambda r: httpx.Response(204))
    transport = http_client.Transport()
    transport._inner = app_transport  # type: ignore[assignment]
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("http://example.test/")).status_code == 204

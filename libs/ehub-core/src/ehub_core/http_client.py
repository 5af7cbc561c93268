"""The HTTP client every service uses to call another process (its own hub's services,
peer hubs, partners' webhook endpoints).

:func:`client` is ``httpx.AsyncClient`` on :class:`Transport`: a connection that breaks
in a way the HTTP stack does not translate is still an ``httpx`` error. Seen under the
crash test: a peer killed right after accepting a connection left anyio's socket stream
without its socket, and httpcore raised ``AttributeError`` (``'NoneType' object has no
attribute 'getpeername'``) instead of a network error, so a caller that handles
``httpx.HTTPError`` ("the other side is unavailable, try again") answered 500 instead.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["Transport", "client"]


class Transport(httpx.AsyncBaseTransport):
    """``httpx.AsyncHTTPTransport`` whose every failure is an ``httpx.HTTPError``: any
    other exception the connection stack raises becomes ``httpx.NetworkError``."""

    def __init__(self, **kwargs: Any) -> None:
        self._inner = httpx.AsyncHTTPTransport(**kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx.HTTPError:
            raise
        except Exception as exc:  # a library's bug on a broken connection
            raise httpx.NetworkError(
                f"connection to {request.url.host}:{request.url.port} broke: {exc!r}",
                request=request,
            ) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


def client(*, limits: httpx.Limits | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on :class:`Transport` (other arguments as httpx's)."""
    transport = Transport(limits=limits) if limits is not None else Transport()
    return httpx.AsyncClient(transport=transport, **kwargs)

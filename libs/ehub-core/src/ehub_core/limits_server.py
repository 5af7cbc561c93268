"""The connection limits of ``ehub serve``: :func:`server_options` for ``uvicorn.run`` and
:func:`protocol_class`, the HTTP protocol it runs with. A connection must deliver a
complete request head within ``EHUB_HEADER_TIMEOUT`` (10 s) of opening or of its first
byte, and the head may not exceed ``EHUB_MAX_HEADER_BYTES``; otherwise the connection is
closed (uvicorn itself has no such deadline). Importable from :mod:`ehub_core.limits`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ehub_core.limits_body import problem

if TYPE_CHECKING:
    from ehub_core.settings import CoreSettings

log = logging.getLogger("ehub.limits")

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_HEADER_BYTES = 16 * 1024


def _headers_too_large() -> bytes:
    body = problem(
        431,
        "headers-too-large",
        "Request header fields too large",
        "The request line and headers are too large.",
    )
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/problem+json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class _HeaderDeadline:
    """Mixed into a uvicorn HTTP protocol: close connections that do not deliver a
    complete request head in time, or whose head is too large.

    The deadline runs from the connection's opening (idle or not) and, on a kept-alive
    connection, from the first byte of the next request (the idle time between requests
    is uvicorn's keep-alive timeout). It stops once the head is complete: the body has its
    own deadline in :class:`BodyLimit`. No timer per request (a timer armed and cancelled
    per request cost ~10% of a keep-alive ``/healthz``): each connection notes when it
    started waiting, and one sweep per server closes the late ones a few times a second.
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    _ehub_sweeper: asyncio.TimerHandle | None = None  # per protocol class (per server)
    # Set by the uvicorn protocol this is mixed into.
    cycle: Any
    transport: Any
    client: Any
    loop: asyncio.AbstractEventLoop
    connections: set[Any]

    def _ehub_wait(self) -> None:
        """Waiting for a request head from now on."""
        self._ehub_since: float | None = self.loop.time()
        self._ehub_head_bytes = 0

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._ehub_wait()
        cls = type(self)
        if cls._ehub_sweeper is None:
            cls._ehub_sweeper = self.loop.call_later(cls._ehub_period(), cls._ehub_sweep, self)

    @classmethod
    def _ehub_period(cls) -> float:
        return min(1.0, cls.header_timeout / 4)

    @classmethod
    def _ehub_sweep(cls, any_protocol: _HeaderDeadline) -> None:
        connections, loop = any_protocol.connections, any_protocol.loop
        now = loop.time()
        for conn in list(connections):
            since = getattr(conn, "_ehub_since", None)
            if since is not None and now - since > cls.header_timeout:
                conn._ehub_expired()
        if connections:
            cls._ehub_sweeper = loop.call_later(cls._ehub_period(), cls._ehub_sweep, any_protocol)
        else:
            cls._ehub_sweeper = None  # the next connection starts it again

    def _ehub_expired(self) -> None:
        self._ehub_since = None
        if self.transport.is_closing():
            return
        if self._ehub_head_bytes:
            log.info(
                "closed a connection from %s: no complete request head within %gs (%d bytes)",
                _peer(self.client),
                self.header_timeout,
                self._ehub_head_bytes,
            )
        else:
            log.debug("closed an idle connection from %s", _peer(self.client))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        if self._ehub_since is not None and self._ehub_head_bytes == 0:
            self._ehub_since = self.loop.time()  # a kept-alive connection's next request
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:  # a request head was completed
            self._ehub_since = None
        elif self._ehub_since is not None:
            self._ehub_head_bytes += len(data)
            if self._ehub_head_bytes > self.max_header_bytes and not self.transport.is_closing():
                log.info(
                    "closed a connection from %s: request head over %d bytes",
                    _peer(self.client),
                    self.max_header_bytes,
                )
                self.transport.write(_headers_too_large())
                self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.transport.is_closing():
            self._ehub_wait()  # idle until the next request (uvicorn's keep-alive timer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._ehub_since = None
        super().connection_lost(exc)  # type: ignore[misc]


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


def protocol_class(
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, else h11) with the request-head
    deadline and size limit of :class:`_HeaderDeadline`."""
    base: type[asyncio.Protocol]
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    return type(
        f"Guarded{base.__name__}",
        (_HeaderDeadline, base),
        {
            "header_timeout": header_timeout,
            "max_header_bytes": max_header_bytes,
            "_ehub_sweeper": None,
        },
    )


def server_options(settings: CoreSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` that bound slow and greedy clients."""
    return {
        "http": protocol_class(
            header_timeout=settings.header_timeout, max_header_bytes=settings.max_header_bytes
        ),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "limit_concurrency": settings.max_connections or None,
    }

"""Input limits every ehub service applies: request bodies, slow clients, headers, free text.

Three layers, each cheap on the normal path:

- :class:`BodyLimit`, a pure ASGI layer that :func:`~ehub_core.app.create_service_app`
  installs on every service. A body over the limit (``EHUB_MAX_BODY_BYTES``, 1 MiB, with
  per-path overrides) is answered 413 problem+json: from ``Content-Length`` before any byte
  is read, or as soon as a streamed (chunked) body passes the limit. A body that does not
  arrive within ``EHUB_BODY_TIMEOUT`` (10 s) of the application first asking for it is
  answered 408. A client that goes away mid-body is one INFO line, never a traceback. An
  answer given before the body was read whole (a refusal, an authentication failure)
  closes the connection, so the server never drains the rest of an unwanted body. A NUL
  character in the URL or a header is answered 400 (Postgres refuses NUL in text).
- :func:`protocol_class`, the HTTP protocol ``ehub serve`` runs uvicorn with: a connection
  must deliver a complete request head within ``EHUB_HEADER_TIMEOUT`` (10 s) of opening or
  of its first byte, and the head may not exceed ``EHUB_MAX_HEADER_BYTES``; otherwise the
  connection is closed (uvicorn itself has no such deadline).
- :data:`PlainText`, :data:`MultilineText` and the integer bounds: request-schema types
  that refuse control characters (NUL, ANSI escapes, bidirectional overrides, unpaired
  surrogates) with a 422 naming the field, and integers a database column cannot hold.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ehub_core.settings import CoreSettings

log = logging.getLogger("ehub.limits")

PROBLEM_BASE = "https://ehub.dev/problems/"  # as ehub_core.errors (no import: kept light)
MiB = 1 << 20
DEFAULT_MAX_BODY = MiB
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_HEADER_BYTES = 16 * 1024

# The largest values the columns behind request fields hold on every supported database
# (Postgres INTEGER is 32-bit, BIGINT 64-bit; SQLite stores 64-bit integers).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


# --------------------------------------------------------------------------------------
# Free text

# C0 and C1 control characters, DEL, bidirectional embeddings/overrides/isolates (text
# that prints differently from what it says: "Trojan source" on a label) and unpaired
# surrogates (they cannot be encoded as UTF-8, so they could not be stored or answered).
_OTHER_CONTROLS = "\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_LINE_BAD = re.compile(f"[\x00-\x1f{_OTHER_CONTROLS}]")
# Multi-line text keeps TAB, LF and CR (\x09, \x0a, \x0d).
_MULTILINE_BAD = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_OTHER_CONTROLS}]")


def _refuse(match: re.Match[str]) -> None:
    code = ord(match.group())
    raise ValueError(
        f"must not contain control characters (U+{code:04X} at position {match.start()})"
    )


def no_control_characters(value: str) -> str:
    """Refuse control characters, TAB and line breaks included (one-line text)."""
    found = _LINE_BAD.search(value)
    if found is not None:
        _refuse(found)
    return value


def no_control_characters_multiline(value: str) -> str:
    """Refuse control characters except TAB, LF and CR (descriptions, notes)."""
    found = _MULTILINE_BAD.search(value)
    if found is not None:
        _refuse(found)
    return value


PlainText = Annotated[str, AfterValidator(no_control_characters)]
"""One line of text: names, addresses, references. Combine with ``Field(max_length=...)``."""
MultilineText = Annotated[str, AfterValidator(no_control_characters_multiline)]
"""Text that may span lines (TAB, LF, CR allowed), e.g. a product description."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date_only(value: Any) -> Any:
    """Refuse what pydantic would otherwise read as a date: Unix timestamps (``0`` is
    1970-01-01) and other spellings. The API documents dates as ``YYYY-MM-DD``."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(iso_date_only)]
"""A calendar date, accepted only as ``YYYY-MM-DD`` (or a ``date`` from Python)."""


# --------------------------------------------------------------------------------------
# Request bodies


def _problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> bytes:
    body = {"type": f"{PROBLEM_BASE}{slug}", "title": title, "status": status, "detail": detail}
    body.update(extra)
    return json.dumps(body).encode()


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_DISCONNECT: Message = {"type": "http.disconnect"}


class BodyLimit:
    """ASGI layer bounding the size of request bodies and the time they take to arrive.

    ``paths`` maps exact request paths to their own limit (e.g. a federation batch).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = DEFAULT_MAX_BODY,
        timeout: float = DEFAULT_BODY_TIMEOUT,
        paths: Mapping[str, int] | None = None,
    ) -> None:
        if max_bytes < 0 or timeout <= 0:
            raise ValueError("max_bytes must be >= 0 and timeout > 0")
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.paths = dict(paths or {})

    def limit_for(self, path: str) -> int:
        return self.paths.get(path, self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # No parameter of any route takes a NUL, and Postgres refuses one in text (asyncpg:
        # "invalid byte sequence"), which would be a 500.
        nul = "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        declared: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if b"\x00" in value:
                nul = True
            elif name == b"content-length":
                if not value.isdigit():
                    await _answer(
                        send,
                        400,
                        _problem(400, "bad-request", "Bad request", "invalid Content-Length"),
                    )
                    return
                declared = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if nul:
            detail = "The URL or a header contains a NUL character."
            await _answer(send, 400, _problem(400, "bad-request", "Bad request", detail))
            return
        if not declared and not chunked:  # no body: nothing to bound
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if declared is not None and declared > limit:
            log.info(
                "refused %s %s: Content-Length %d is over the limit of %d bytes",
                scope["method"],
                scope["path"],
                declared,
                limit,
            )
            await _answer(send, 413, _too_large(limit, declared))
            return
        await _Exchange(self.app, scope, receive, send, limit, declared, self.timeout).run()


def _too_large(limit: int, declared: int | None = None) -> bytes:
    said = f"; this request declares {declared}" if declared is not None else ""
    return _problem(
        413,
        "body-too-large",
        "Request body too large",
        f"This operation takes a body of at most {limit} bytes{said}.",
        max_bytes=limit,
    )


class _Exchange:
    """One request with a body: counts and times what the application reads."""

    __slots__ = (
        "_receive",
        "_send",
        "app",
        "complete",
        "deadline",
        "declared",
        "gone",
        "limit",
        "received",
        "refused",
        "scope",
        "started",
        "timeout",
    )

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        declared: int | None,
        timeout: float,
    ) -> None:
        self.app = app
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit = limit
        self.declared = declared
        self.timeout = timeout
        self.deadline: float | None = None
        self.received = 0
        self.complete = False  # the whole body was handed to the application
        self.started = False  # a response has started
        self.refused = False  # we answered (413/408) in the application's stead
        self.gone = False  # the client went away before the body was complete

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            # A refused or abandoned body surfaces in the application as a disconnect
            # (Starlette's ClientDisconnect); that is expected, not an error to report.
            if not (self.refused or self.gone):
                raise

    def _what(self) -> str:
        of = f" of {self.declared}" if self.declared is not None else ""
        return f"{self.scope['method']} {self.scope['path']} ({self.received}{of} bytes)"

    async def receive(self) -> Message:
        if self.refused or self.gone:
            return _DISCONNECT
        if self.complete:  # only a disconnect can follow; no deadline for that
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self.deadline is None:
            self.deadline = loop.time() + self.timeout
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            log.info(
                "request body not complete within %gs: %s; answered 408",
                self.timeout,
                self._what(),
            )
            await self._refuse(
                408,
                _problem(
                    408,
                    "body-timeout",
                    "Request body too slow",
                    f"The request body did not arrive within {self.timeout:g} s.",
                ),
            )
            return _DISCONNECT
        kind = message["type"]
        if kind == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                log.info("refused %s: over the limit of %d bytes", self._what(), self.limit)
                await self._refuse(413, _too_large(self.limit))
                return _DISCONNECT
            if not message.get("more_body", False):
                self.complete = True
        elif kind == "http.disconnect":
            self.gone = True
            log.info("client went away before sending its whole body: %s", self._what())
        return message

    async def _refuse(self, status: int, body: bytes) -> None:
        self.refused = True
        if not self.started:
            self.started = True
            await _answer(self._send, status, body)

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # our answer went out; the application's is dropped
        if message["type"] == "http.response.start":
            self.started = True
            if not self.complete:
                # The body was not read whole: close rather than drain what is left of it.
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"connection" for k, _ in headers):
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
        await self._send(message)


# --------------------------------------------------------------------------------------
# Connections (uvicorn)


def _headers_too_large() -> bytes:
    body = _problem(
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

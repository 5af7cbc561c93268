"""The request-body layer every ehub service installs: :class:`BodyLimit`.

A pure ASGI layer that :func:`~ehub_core.app.create_service_app` installs on every
service. A body over the limit (``EHUB_MAX_BODY_BYTES``, 1 MiB, with per-path overrides)
is answered 413 problem+json: from ``Content-Length`` before any byte is read, or as soon
as a streamed (chunked) body passes the limit. A body that does not arrive within
``EHUB_BODY_TIMEOUT`` (10 s) of the application first asking for it is answered 408. A
client that goes away mid-body is one INFO line, never a traceback. An answer given before
the body was read whole (a refusal, an authentication failure) closes the connection, so
the server never drains the rest of an unwanted body. A NUL character in the URL or a
header is answered 400 (Postgres refuses NUL in text). Importable from
:mod:`ehub_core.limits`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("ehub.limits")

PROBLEM_BASE = "https://ehub.dev/problems/"  # as ehub_core.errors (no import: kept light)
MiB = 1 << 20
DEFAULT_MAX_BODY = MiB
DEFAULT_BODY_TIMEOUT = 10.0


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> bytes:
    """A problem+json body (RFC 9457), as bytes."""
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
                        problem(400, "bad-request", "Bad request", "invalid Content-Length"),
                    )
                    return
                declared = int(value)
            elif name == b"transfer-encoding":
                chunked = True
        if nul:
            detail = "The URL or a header contains a NUL character."
            await _answer(send, 400, problem(400, "bad-request", "Bad request", detail))
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
    return problem(
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
                problem(
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

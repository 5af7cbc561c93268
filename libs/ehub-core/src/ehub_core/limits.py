"""Input limits every ehub service applies: request bodies, slow clients, headers, free text.

Three layers, each cheap on the normal path, each in its own module; every name is
importable from here:

- :class:`BodyLimit` (:mod:`ehub_core.limits_body`), a pure ASGI layer that
  :func:`~ehub_core.app.create_service_app` installs on every service. A body over the
  limit (``EHUB_MAX_BODY_BYTES``, 1 MiB, with per-path overrides) is answered 413
  problem+json: from ``Content-Length`` before any byte is read, or as soon as a streamed
  (chunked) body passes the limit. A body that does not arrive within
  ``EHUB_BODY_TIMEOUT`` (10 s) of the application first asking for it is answered 408. A
  client that goes away mid-body is one INFO line, never a traceback. An answer given
  before the body was read whole (a refusal, an authentication failure) closes the
  connection, so the server never drains the rest of an unwanted body. A NUL character in
  the URL or a header is answered 400 (Postgres refuses NUL in text).
- :func:`protocol_class` and :func:`server_options` (:mod:`ehub_core.limits_server`), the
  HTTP protocol ``ehub serve`` runs uvicorn with: a connection must deliver a complete
  request head within ``EHUB_HEADER_TIMEOUT`` (10 s) of opening or of its first byte, and
  the head may not exceed ``EHUB_MAX_HEADER_BYTES``; otherwise the connection is closed
  (uvicorn itself has no such deadline).
- :data:`PlainText`, :data:`MultilineText`, :data:`IsoDate` and the integer bounds
  (:mod:`ehub_core.limits_text`): request-schema types that refuse control characters
  (NUL, ANSI escapes, bidirectional overrides, unpaired surrogates) with a 422 naming the
  field, dates not written ``YYYY-MM-DD``, and integers a database column cannot hold.
"""

from __future__ import annotations

from ehub_core.limits_body import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY,
    PROBLEM_BASE,
    BodyLimit,
    MiB,
)
from ehub_core.limits_server import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_HEADER_BYTES,
    protocol_class,
    server_options,
)
from ehub_core.limits_text import (
    INT32_MAX,
    INT64_MAX,
    IsoDate,
    MultilineText,
    PlainText,
    iso_date_only,
    no_control_characters,
    no_control_characters_multiline,
)

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_HEADER_BYTES",
    "INT32_MAX",
    "INT64_MAX",
    "PROBLEM_BASE",
    "BodyLimit",
    "IsoDate",
    "MiB",
    "MultilineText",
    "PlainText",
    "iso_date_only",
    "no_control_characters",
    "no_control_characters_multiline",
    "protocol_class",
    "server_options",
]

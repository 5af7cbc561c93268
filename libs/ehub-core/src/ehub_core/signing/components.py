"""RFC 9421 message components and the signature base (§2, §2.5), on plain data.

Messages are described by :class:`MessageView` (method, target URI, status, header fields,
and for a response the request it answers), so the same code serves httpx on the client and
ASGI/FastAPI on the server.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ehub_core.signing.structured_fields import (
    InnerList,
    Item,
    Params,
    SFError,
    parse_dictionary,
    parse_item,
    serialize_dictionary,
    serialize_inner_list,
    serialize_item,
)

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]

# Fields whose structured type we know, for the "sf" and "key" component parameters.
_DICTIONARY_FIELDS = frozenset({"signature", "signature-input", "content-digest"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_OBS_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")
_URL_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:[^/?#@]*@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^/?#:\[\]]+)(?::(?P<port>[0-9]*))?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?"
)


class ComponentError(ValueError):
    """A covered component cannot be resolved against the message."""


@dataclass(frozen=True)
class TargetURI:
    """An absolute http(s) URI, normalised as RFC 3986 §6.2.2-6.2.3 allow: scheme and host
    lower-cased, a default port dropped, an empty path made ``/``. Percent-encoding and the
    query are kept exactly as sent."""

    scheme: str
    host: str
    port: str | None
    path: str
    query: str | None

    @classmethod
    def parse(cls, url: str) -> TargetURI:
        if not _VISIBLE_ASCII.fullmatch(url):
            raise ComponentError(f"target URI must be encoded ASCII without spaces: {url!r}")
        match = _URL_RE.fullmatch(url)
        if match is None:
            raise ComponentError(f"not an absolute URI: {url!r}")
        scheme = match["scheme"].lower()
        if scheme not in _DEFAULT_PORTS:
            raise ComponentError(f"unsupported scheme {scheme!r}")
        port = match["port"] or None
        if port is not None and port.lstrip("0") == _DEFAULT_PORTS[scheme]:
            port = None
        return cls(scheme, match["host"].lower(), port, match["path"] or "/", match["query"])

    @property
    def authority(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def request_target(self) -> str:
        return self.path + ("" if self.query is None else "?" + self.query)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.request_target}"


def target_uri_from_asgi(scope: Mapping[str, Any], *, public_origin: str | None = None) -> str:
    """The target URI a client signed, rebuilt from an ASGI scope.

    Uses ``raw_path`` (Starlette's ``request.url`` percent-decodes the path, which would change
    the signed bytes) and the ``Host`` header. Behind a TLS-terminating proxy pass the public
    ``public_origin`` (``https://hub-cn.example``) instead of trusting forwarded headers.
    """
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    target = raw_path.decode("latin-1")
    query = scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    if public_origin is not None:
        return public_origin.rstrip("/") + target
    host = next(
        (v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"host"), None
    )
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{target}"


def header_fields(headers: HeadersLike) -> dict[str, str]:
    """Lower-cased field name -> value as RFC 9421 §2.1 defines it: each field line trimmed,
    obsolete folding replaced by a space, repeated lines joined with ``", "`` in order.

    Accepts a ``dict``, ``httpx.Headers`` (via ``multi_items``), Starlette ``Headers`` (its
    ``items()`` keeps repeated lines) or raw ``(bytes, bytes)`` pairs from an ASGI scope.
    """
    pairs: Iterable[Any]
    multi_items = getattr(headers, "multi_items", None)
    if callable(multi_items):
        pairs = multi_items()
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    lines: dict[str, list[str]] = {}
    for name, value in pairs:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if "\n" in value:
            value = _OBS_FOLD.sub(" ", value)
        value = value.strip(" \t")
        lines.setdefault(name.lower(), []).append(value)
    return {name: ", ".join(values) for name, values in lines.items()}


@dataclass(frozen=True)
class MessageView:
    """What component resolution needs from one HTTP message."""

    fields: Mapping[str, str]
    method: str | None = None
    target_uri: TargetURI | None = None
    status: int | None = None
    request: MessageView | None = None

    @classmethod
    def for_request(cls, method: str, url: str, headers: HeadersLike) -> MessageView:
        if not method or method != method.upper():
            raise ComponentError("HTTP method must be upper-case")
        return cls(header_fields(headers), method=method, target_uri=TargetURI.parse(url))

    @classmethod
    def for_response(
        cls, status: int, headers: HeadersLike, request: MessageView | None
    ) -> MessageView:
        if not 100 <= status <= 999:
            raise ComponentError(f"invalid status code {status}")
        return cls(header_fields(headers), status=status, request=request)


def component_ids(ids: Iterable[str]) -> list[Item]:
    """Parse component identifiers written as names (``@method``) or as serialized
    structured-field strings with parameters (``"signature";key="sig1";req``)."""
    return list(_parse_component_ids(tuple(ids)))


@functools.lru_cache(maxsize=256)
def _parse_component_ids(ids: tuple[str, ...]) -> tuple[Item, ...]:
    # Cached: the same few coverage lists are parsed on every request. Items are never
    # mutated after parsing.
    items = []
    for text in ids:
        try:
            item = parse_item(text if text.startswith('"') else '"' + text + '"')
        except SFError as exc:
            raise ComponentError(f"bad component identifier {text!r}: {exc}") from exc
        if not isinstance(item.value, str) or item.value != item.value.lower():
            raise ComponentError(f"component names are lower-case strings: {text!r}")
        items.append(item)
    return tuple(items)


def component_identity(item: Item) -> tuple[Any, frozenset[tuple[str, Any]]]:
    """Identity of a component regardless of parameter order (RFC 9421 §2)."""
    return item.value, frozenset(item.params.items())


def resolve(component: Item, message: MessageView) -> str:
    """The value of one covered component in ``message`` (RFC 9421 §2.1-2.4)."""
    name = component.value
    if not isinstance(name, str):
        raise ComponentError("component identifiers are strings")
    params = dict(component.params)
    if params.pop("req", False) is True:
        if message.request is None:
            raise ComponentError(f"{serialize_item(component)} needs the related request")
        return resolve(Item(name, params), message.request)
    if name.startswith("@"):
        if params:
            raise ComponentError(f"unsupported parameters on {name}")
        return _derived(name, message)
    value = message.fields.get(name)
    if value is None:
        raise ComponentError(f"covered field {name!r} is not present in the message")
    if not params:
        return value
    if name not in _DICTIONARY_FIELDS or not set(params) <= {"key", "sf"}:
        raise ComponentError(f"unsupported parameters on covered field {name!r}")
    try:
        dictionary = parse_dictionary(value)
    except SFError as exc:
        raise ComponentError(f"covered field {name!r} is not a dictionary: {exc}") from exc
    if "key" in params:
        member = dictionary.get(str(params["key"]))
        if member is None:
            raise ComponentError(f"covered field {name!r} has no member {params['key']!r}")
        return (
            serialize_inner_list(member)
            if isinstance(member, InnerList)
            else serialize_item(member)
        )
    return serialize_dictionary(dictionary)


def _derived(name: str, message: MessageView) -> str:
    if name == "@status":
        if message.status is None:
            raise ComponentError("@status is only defined for responses")
        return str(message.status)
    uri = message.target_uri
    if message.method is None or uri is None:
        raise ComponentError(f"{name} in a response must carry the ;req parameter")
    values = {
        "@method": message.method,
        "@target-uri": str(uri),
        "@authority": uri.authority,
        "@scheme": uri.scheme,
        "@request-target": uri.request_target,
        "@path": uri.path,
        "@query": "?" + (uri.query or ""),
    }
    if name not in values:
        raise ComponentError(f"unsupported derived component {name}")
    return values[name]


def signature_base(components: Sequence[Item], params: Params, message: MessageView) -> bytes:
    """The signature base of RFC 9421 §2.5: one ``<id>: <value>`` line per covered component,
    then the ``"@signature-params"`` line, joined by LF with no trailing newline."""
    lines = []
    seen = set()
    for component in components:
        identity = component_identity(component)
        if identity in seen:
            raise ComponentError(f"component {serialize_item(component)} is covered twice")
        seen.add(identity)
        if component.value == "@signature-params":
            raise ComponentError("@signature-params cannot be a covered component")
        value = resolve(component, message)
        if not value.isascii() or "\n" in value or "\r" in value:
            raise ComponentError(f"value of {serialize_item(component)} is not single-line ASCII")
        lines.append(f"{serialize_item(component)}: {value}")
    params_value = serialize_inner_list(InnerList(list(components), dict(params)))
    lines.append(f'"@signature-params": {params_value}')
    return "\n".join(lines).encode("ascii")

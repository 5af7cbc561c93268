"""Which URLs may receive webhooks: https only (http only to loopback, when allowed),
no credentials, never link-local or cloud metadata addresses. The worker applies the
same address rules again to what a host name resolves to."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ehub_core.errors import UnprocessableError, field_error

MAX_URL = 2000

# Cloud metadata services: never a webhook destination (SSRF).
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


def _url_error(msg: str) -> UnprocessableError:
    return UnprocessableError(
        f"url: {msg}",
        errors=[field_error("url", msg)],
    )


def literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host name denotes by itself (``10.0.0.1``, ``[::1]``, and the legacy
    IPv4 forms ``2852039166`` or ``0xa9.254.169.254`` that resolvers accept), else None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is never a webhook destination, else None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_IPS:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast:
        return "not a unicast address"
    return None


def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = literal_ip(host)
    return ip is not None and ip.is_loopback


def validate_url(url: str, *, allow_http: bool) -> str:
    """The URL if it may receive webhooks, else 422 naming ``url``.

    https only; http only to a loopback address and only when ``EHUB_WEBHOOK_ALLOW_HTTP``
    is on (local networks); never credentials in the URL, link-local or metadata hosts.
    """
    if len(url) > MAX_URL:
        raise _url_error(f"at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _url_error("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _url_error(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _url_error("must be an https:// URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _url_error("must not contain credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _url_error("has no host")
    if port == 0:
        raise _url_error("port 0 is not a destination")
    if host in METADATA_HOSTS:
        raise _url_error(f"{host} is a cloud metadata service")
    ip = literal_ip(host)
    if ip is not None and (why := forbidden_ip(ip)) is not None:
        raise _url_error(f"{host} is {why}")
    if scheme == "http":
        if not allow_http:
            raise _url_error("must be an https:// URL")
        if not is_loopback_host(host):
            raise _url_error("http:// is allowed only to a loopback address; use https://")
    return url

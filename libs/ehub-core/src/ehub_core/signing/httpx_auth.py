"""Sign every outgoing hub-to-hub request made through an ``httpx`` client."""

from __future__ import annotations

from collections.abc import Callable, Generator

import httpx

from ehub_core.signing.http import DEFAULT_TTL, sign_request
from ehub_core.signing.keys import HubKey


class HubSigningAuth(httpx.Auth):
    """``httpx.Auth`` that adds ``Content-Digest``, ``EHub-Hub``, ``Signature-Input`` and
    ``Signature`` to each request (sync and async clients alike).

    ``key_provider`` is called per request, so a rotation is picked up without rebuilding the
    client: pass e.g. ``keyring.active_key``.
    """

    # httpx reads a streamed body into memory before calling auth_flow: the digest needs it.
    requires_request_body = True

    def __init__(
        self, key_provider: Callable[[], HubKey], hub_id: str, *, ttl: int = DEFAULT_TTL
    ) -> None:
        self.key_provider = key_provider
        self.hub_id = hub_id
        self.ttl = ttl

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        added = sign_request(
            request.method,
            str(request.url),
            request.headers,
            request.content,
            self.key_provider(),
            self.hub_id,
            ttl=self.ttl,
        )
        request.headers.update(added)
        yield request

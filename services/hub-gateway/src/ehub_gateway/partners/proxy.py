"""Forwarding admitted partner requests to the service that owns the operation.

The gateway is the hub's one public base URL: ``/v1/sellers`` goes to the catalog,
``/v1/landed-cost`` to customs, ``/v1/shipments`` to logistics, each with the internal
credential and the partner's identity (docs/partners.md), so a service believes only
the gateway about who is calling.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request, Response

from ehub_core.errors import DomainError, NotFoundError, ServiceUnavailableError
from ehub_gateway.partners.door import Principal, owning_service

router = APIRouter()

MAX_BODY = 1 << 20  # 1 MiB: more than any partner operation needs
HOP_BY_HOP = {
    b"host",
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"te",
    b"trailer",
    b"upgrade",
    b"content-length",
    b"authorization",
    b"proxy-authorization",
}
PASS_BACK = (
    "content-type",
    "location",
    "idempotent-replayed",
    "retry-after",
    "content-disposition",
    "www-authenticate",
)


class PayloadTooLarge(DomainError):
    status = 413
    title = "Request body too large"
    type_slug = "body-too-large"


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"at most {MAX_BODY} bytes; this request declares {declared}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.api_route(
    "/v1/{path:path}", methods=["GET", "POST", "PATCH", "DELETE"], include_in_schema=False
)
async def forward(path: str, request: Request) -> Response:
    method, full = request.method, request.url.path
    service = owning_service(method, full)
    if service is None:
        raise NotFoundError(f"no operation {method} {full} at this hub")
    fed = request.app.state.fed
    settings = fed.settings
    base = str(getattr(settings, f"{service}_url")).rstrip("/")
    headers: dict[str, str] = {
        k.decode("latin-1"): v.decode("latin-1")
        for k, v in request.headers.raw
        if k.lower() not in HOP_BY_HOP and not k.lower().startswith(b"x-ehub-")
    }
    if settings.internal_token is not None:
        headers["X-Ehub-Gateway"] = settings.internal_token.get_secret_value()
    principal: Principal | None = getattr(request.state, "partner", None)
    if principal is not None:
        headers["X-Ehub-Partner"] = principal.partner_id
        headers["X-Ehub-Partner-Role"] = principal.role
        headers["X-Ehub-Scopes"] = " ".join(sorted(principal.scopes))
    client: httpx.AsyncClient = request.app.state.orders.services
    try:
        upstream = await client.request(
            method,
            f"{base}{full}",
            params=list(request.query_params.multi_items()),
            content=await _body(request),
            headers=headers,
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(
            f"the hub's {service} service did not answer ({type(exc).__name__})",
            headers={"Retry-After": "2"},
        ) from None
    out: dict[str, Any] = {k: upstream.headers[k] for k in PASS_BACK if k in upstream.headers}
    return Response(upstream.content, status_code=upstream.status_code, headers=out)

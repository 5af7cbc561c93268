"""One OpenAPI document per hub, at the gateway: its own operations plus the services'
partner operations (fetched from each service once it answers), with the partner key as
the security scheme and the door's refusals (401, 403, 429, 413) on every operation."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ehub_gateway.partners.door import CARRIER_WEBHOOK

log = logging.getLogger("ehub.gateway.openapi")

SERVICES = ("catalog", "customs", "logistics")
PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["title", "status"],
}
REFUSALS = {
    "401": "No API key, or an unknown, revoked or expired one",
    "403": "The key lacks the operation's scope (named in `scope`)",
    "413": "Request body too large",
    "429": "Rate limit exceeded (`Retry-After`, `RateLimit-*` headers)",
}


def _namespaced(doc: dict[str, Any], service: str) -> dict[str, Any]:
    text = json.dumps(doc).replace('"#/components/schemas/', f'"#/components/schemas/{service}.')
    out: dict[str, Any] = json.loads(text)
    return out


def merge(own: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    doc = json.loads(json.dumps(own))
    comps = doc.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM
    comps["securitySchemes"] = {
        "partnerKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "A partner API key, `ek_live_<id>_<secret>` (see docs/partners.md)",
        }
    }
    for service, sdoc in sorted(services.items()):
        sdoc = _namespaced(sdoc, service)
        for name, schema in sdoc.get("components", {}).get("schemas", {}).items():
            schemas[f"{service}.{name}"] = schema
        for path, item in sdoc.get("paths", {}).items():
            if path.startswith("/v1/"):
                doc["paths"][path] = item
    for path, item in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            if not isinstance(op, dict) or method not in ("get", "post", "delete", "put", "patch"):
                continue
            if method == "post" and CARRIER_WEBHOOK.match(path.replace("{carrier}", "x")):
                op["security"] = []  # carriers sign their webhooks instead
                continue
            op["security"] = [{"partnerKey": []}]
            responses = op.setdefault("responses", {})
            for status, text in REFUSALS.items():
                responses.setdefault(
                    status,
                    {
                        "description": text,
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        },
                    },
                )
    return doc


def install(app: FastAPI) -> None:
    """Serve the merged document; the services' parts are fetched in the background."""
    fetched: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            own = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = merge(own, fetched)
        return app.openapi_schema

    async def fetch_all() -> None:
        settings = app.state.fed.settings
        async with httpx.AsyncClient(timeout=5.0) as client:
            for attempt in range(60):
                for service in SERVICES:
                    if service in fetched:
                        continue
                    url = str(getattr(settings, f"{service}_url")).rstrip("/")
                    try:
                        resp = await client.get(f"{url}/openapi.json")
                        if resp.status_code == 200:
                            fetched[service] = resp.json()
                            app.openapi_schema = None  # rebuilt with it on next request
                    except httpx.HTTPError:
                        pass
                if len(fetched) == len(SERVICES):
                    return
                await asyncio.sleep(min(1.0 * (attempt + 1), 10.0))
        log.warning("could not fetch the OpenAPI of %s", sorted(set(SERVICES) - set(fetched)))

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.openapi_fetch = fetch_all

"""One OpenAPI document per hub, at the gateway: its own operations plus the services'
partner operations (fetched from each service once it answers), with the partner key as
the security scheme and the door's refusals (401, 403, 429, 413) on every operation.

Both halves are made by :mod:`ehub_core.openapi` (problem answers, examples), so the
merged document describes problems exactly as each service's own does."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from fastapi import FastAPI

from ehub_core import http_client
from ehub_core import openapi as core_openapi
from ehub_core.errors import PROBLEM_JSON, PROBLEM_SCHEMA
from ehub_gateway.partners.door import CARRIER_WEBHOOK

log = logging.getLogger("ehub.gateway.openapi")

SERVICES = ("catalog", "customs", "logistics")
PROBLEM = PROBLEM_SCHEMA
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
    schemas["Problem"] = json.loads(json.dumps(PROBLEM))
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
    for method, path, op in core_openapi.operations(doc):
        if not path.startswith("/v1/"):
            continue
        if method == "POST" and CARRIER_WEBHOOK.match(path.replace("{carrier}", "x")):
            op["security"] = []  # carriers sign their webhooks instead
            continue
        op["security"] = [{"partnerKey": []}]
        responses = op.setdefault("responses", {})
        for status, text in REFUSALS.items():
            content = core_openapi.problem_content(int(status))
            content[PROBLEM_JSON]["schema"] = {"$ref": "#/components/schemas/Problem"}
            responses.setdefault(status, {"description": text, "content": content})
    return doc


def install(app: FastAPI) -> None:
    """Serve the merged document; the services' parts are fetched in the background."""
    fetched: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = merge(core_openapi.build(app), fetched)
        return app.openapi_schema

    async def fetch_all() -> None:
        settings = app.state.fed.settings
        async with http_client.client(timeout=5.0) as client:
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

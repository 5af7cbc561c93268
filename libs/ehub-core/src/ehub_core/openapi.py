"""The OpenAPI document every service publishes, made honest in one place.

FastAPI documents what a route declares; what the platform answers around it (malformed
JSON, body limits, identity, validation) it does not know, and its default 422 is a
``{detail: [...]}`` schema no ehub service ever sends. Two steps fix that for every
service:

- :func:`document_problems` (at app creation) declares on each operation, from the
  route's own metadata (body, parameters, guard), the problem+json answers the platform
  gives it; what an operation answers of its own (a 409, a 503) it declares itself with
  :func:`ehub_core.errors.problem_responses`.
- :func:`finish` (when the document is built) replaces any remaining
  ``HTTPValidationError`` answer by the problem schema, gives every problem answer an
  example, and every success answer an example: the route's own when it has one, else
  one made from the answer's schema (:mod:`ehub_core.examples`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ehub_core.errors import PROBLEM_BASE, PROBLEM_JSON, PROBLEM_SCHEMA
from ehub_core.examples import example_for
from ehub_core.partners import is_guarded

PROBLEMS = {
    400: "Malformed request: a body that is not JSON (`malformed-json`), a NUL in the URL",
    401: "Caller not identified (gateway credential, partner identity or operator token)",
    403: "Missing scope, or the operator API is disabled",
    404: "No such resource, or not the caller's",
    408: "The request body did not arrive in time (`EHUB_BODY_TIMEOUT`)",
    409: "Conflict with the resource's current state",
    413: "The request body is too large (`EHUB_MAX_BODY_BYTES`)",
    422: "Invalid request: `errors` names each field",
    429: "Rate limit exceeded (`Retry-After`, `RateLimit-*` headers)",
    502: "An upstream party (a carrier, a peer hub) failed",
    503: "A dependency is unavailable; retry later",
}
# What a client sees for each status: the example of every problem answer.
_EXAMPLES: dict[int, tuple[str, str, str]] = {
    400: ("malformed-json", "Malformed JSON", "The request body is not valid JSON"),
    401: ("unauthorized", "Unauthorized", "No credential, or an unknown one"),
    403: ("missing-scope", "Missing scope", "This operation needs the scope orders:write"),
    404: ("not-found", "Not found", "No such resource"),
    408: ("body-timeout", "Request timeout", "The request body did not arrive in time"),
    409: ("conflict", "Conflict", "The resource's state does not allow this"),
    413: ("body-too-large", "Payload too large", "The request body is over 1048576 bytes"),
    429: ("rate-limited", "Too many requests", "Rate limit exceeded; retry after 1 s"),
    502: ("upstream", "Bad gateway", "The carrier did not answer"),
    503: ("unavailable", "Service unavailable", "The broker is unreachable"),
}
_VALIDATION_REFS = ("#/components/schemas/HTTPValidationError",)
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def problem_example(status: int) -> dict[str, Any]:
    """A problem body as the services render it, for documentation."""
    if status == 422:
        return {
            "type": f"{PROBLEM_BASE}validation",
            "title": "Invalid request",
            "status": 422,
            "detail": "Invalid value for: country",
            "instance": "/v1/sellers",
            "errors": [
                {
                    "loc": ["body", "country"],
                    "field": "country",
                    "msg": "String should match pattern '^[A-Z]{2}$'",
                    "type": "string_pattern_mismatch",
                }
            ],
        }
    slug, title, detail = _EXAMPLES.get(status, ("", "Error", "The request failed"))
    return {
        "type": f"{PROBLEM_BASE}{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }


def problem_content(status: int) -> dict[str, Any]:
    """The ``content`` of a problem answer in an OpenAPI document."""
    return {
        PROBLEM_JSON: {"schema": copy.deepcopy(PROBLEM_SCHEMA), "example": problem_example(status)}
    }


def _params(dependant: Dependant) -> dict[str, bool]:
    """Which kinds of parameters the route reads, its dependencies' included."""
    found = {
        "path": bool(dependant.path_params),
        "query": bool(dependant.query_params),
        "other": bool(dependant.header_params or dependant.cookie_params),
    }
    for sub in dependant.dependencies:
        for kind, present in _params(sub).items():
            found[kind] = found[kind] or present
    return found


def _problem_statuses(route: APIRoute) -> list[int]:
    params = _params(route.dependant)
    statuses = []
    if route.body_field is not None:
        statuses += [400, 408, 413]
    elif params["path"] or params["query"]:
        statuses.append(400)
    if is_guarded(route):
        statuses += [401, 403]
    if params["path"]:
        statuses.append(404)
    if route.body_field is not None or any(params.values()):
        statuses.append(422)
    return statuses


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # an included APIRouter
        if included is not None:
            yield from api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def document_problems(app: FastAPI) -> None:
    """Declare, on every operation of ``app``, the problem+json answers the platform gives
    whatever the operation (malformed JSON, body limits, identity, validation)."""
    for route in api_routes(app.routes):
        if not route.include_in_schema:
            continue
        for status in _problem_statuses(route):
            response = route.responses.setdefault(status, {})
            response.setdefault("description", PROBLEMS[status])
            content = response.setdefault("content", {})
            content.setdefault(PROBLEM_JSON, {"schema": copy.deepcopy(PROBLEM_SCHEMA)})
    app.openapi_schema = None


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(METHOD, path, operation)`` for every operation of an OpenAPI document."""
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in _METHODS and isinstance(op, dict):
                yield method.upper(), path, op


def _finish_problem(status: int, response: dict[str, Any]) -> None:
    content = response.get("content") or {}
    if not content or any(
        c.get("schema", {}).get("$ref") in _VALIDATION_REFS for c in content.values()
    ):
        response["content"] = problem_content(status)
        if status == 422:
            response["description"] = PROBLEMS[422]
        return
    problem = content.get(PROBLEM_JSON)
    if problem is not None and "example" not in problem and "examples" not in problem:
        problem["example"] = problem_example(status)


def _finish_success(response: dict[str, Any], components: dict[str, Any]) -> None:
    for media in (response.get("content") or {}).values():
        if "example" in media or "examples" in media or "schema" not in media:
            continue
        value = example_for(media["schema"], components)
        if value is not None:
            media["example"] = value


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """Make ``doc`` (as FastAPI generated it) say what the service answers; in place."""
    components = doc.get("components", {}).get("schemas", {})
    for _method, _path, op in operations(doc):
        for code, response in op.get("responses", {}).items():
            status = int(code) if str(code).isdigit() else 0
            if status >= 400:
                _finish_problem(status, response)
            elif 200 <= status < 300:
                _finish_success(response, components)
    for name, where in (("HTTPValidationError", "paths"), ("ValidationError", "components")):
        if f"#/components/schemas/{name}'" not in repr(doc.get(where)):
            components.pop(name, None)
    return doc


def build(app: FastAPI) -> dict[str, Any]:
    """``app``'s document as FastAPI makes it, then :func:`finish`-ed."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        openapi_version=app.openapi_version,
    )
    return finish(doc)


def install(app: FastAPI) -> None:
    """Serve :func:`build`'s document at ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

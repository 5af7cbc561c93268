"""RFC 9457 problem details for every error a service returns.

Business errors subclass :class:`DomainError`, which carries its HTTP status. The
handlers installed by :func:`install_problem_handlers` turn those, Starlette's HTTP
errors (404, 405, ...) and request validation errors into ``application/problem+json``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://ehub.dev/problems/"
log = logging.getLogger("ehub.errors")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


# RFC 9457 problem details as :func:`problem` renders them, for OpenAPI documents (inline
# in each response: the gateway merges the services' documents).
PROBLEM_SCHEMA: dict[str, Any] = {
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
    "required": ["type", "title", "status"],
}


def problem_responses(described: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for problem+json answers, e.g.
    ``responses=problem_responses({409: "Too late: the carrier has it"})``."""
    return {
        status: {
            "description": text,
            "content": {PROBLEM_JSON: {"schema": copy.deepcopy(PROBLEM_SCHEMA)}},
        }
        for status, text in described.items()
    }


def problem(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    type_: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    """Build a problem+json response (RFC 9457 §3)."""
    body: dict[str, Any] = {
        "type": type_ or "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(jsonable_encoder(extra))
    return ProblemResponse(body, status_code=status, headers=headers)


class DomainError(Exception):
    """A business error with its HTTP status; rendered as problem+json."""

    status: int = 400
    title: str = "Bad request"
    type_slug: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if title is not None:
            self.title = title
        if status is not None:
            self.status = status
        self.headers = headers
        self.extra = extra

    def to_response(self, instance: str | None = None) -> ProblemResponse:
        type_ = f"{PROBLEM_BASE}{self.type_slug}" if self.type_slug else None
        return problem(
            self.status,
            self.title,
            self.detail,
            type_=type_,
            instance=instance,
            headers=self.headers,
            **self.extra,
        )


class NotFoundError(DomainError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class ConflictError(DomainError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class UnprocessableError(DomainError):
    """422: the request is well-formed but semantically wrong; ``errors`` names fields."""

    status = 422
    title = "Unprocessable request"
    type_slug = "unprocessable"


class UnauthorizedError(DomainError):
    status = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class ForbiddenError(DomainError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class ServiceUnavailableError(DomainError):
    status = 503
    title = "Service unavailable"
    type_slug = "unavailable"


Location = Literal["body", "query", "path", "header"]


def field_error(
    field: str | Sequence[str | int],
    msg: str,
    type_: str = "value_error",
    *,
    where: Location = "body",
) -> dict[str, Any]:
    """One entry of a problem's ``errors``, shaped as the validation errors FastAPI
    reports, so a client reads a business refusal and a schema refusal alike::

        field_error("lines.0.quantity", "more than in stock", "out_of_stock")
        == {"loc": ["body", "lines", 0, "quantity"], "field": "lines.0.quantity",
            "msg": "more than in stock", "type": "out_of_stock"}

    ``field`` is a dotted path (list indexes become integers) or the path's parts;
    ``where`` is the part of the request it is in (a header name is never split).
    """
    if isinstance(field, str):
        parts: list[str | int] = (
            [field]
            if where == "header"
            else [int(p) if p.isdigit() else p for p in field.split(".")]
        )
    else:
        parts = list(field)
    return {
        "loc": [where, *parts],
        "field": ".".join(str(p) for p in parts),
        "msg": msg,
        "type": type_,
    }


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        # Drop the leading "body"/"query"/"path" so the field reads like the payload's.
        field = ".".join(str(p) for p in (loc[1:] or loc))
        out.append(
            {"loc": loc, "field": field, "msg": err.get("msg", ""), "type": err.get("type", "")}
        )
    return out


async def _on_domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    return exc.to_response(instance=request.url.path)


# FastAPI's answer when decoding the JSON body fails with anything but a JSONDecodeError:
# invalid UTF-8, nesting deeper than the parser's recursion limit, an integer literal of
# more digits than Python converts.
_BODY_PARSE_DETAIL = "There was an error parsing the body"


def _unparsable_body(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "The request body is not valid JSON: it is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "The request body is not valid JSON: it is nested too deeply"
    if isinstance(cause, ValueError):
        return f"The request body is not valid JSON: {str(cause)[:200]}"
    return "The request body is not valid JSON"


async def _on_http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _BODY_PARSE_DETAIL:
        return problem(
            400,
            "Malformed JSON",
            _unparsable_body(exc.__cause__),
            type_=f"{PROBLEM_BASE}malformed-json",
            instance=request.url.path,
        )
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route or resource at {request.url.path}"
    elif exc.status_code == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}"
    return problem(
        exc.status_code,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    if any(e["type"] == "json_invalid" for e in errors):
        # Syntax, not semantics: the body is not JSON at all.
        ctx = next(e for e in errors if e["type"] == "json_invalid")
        return problem(
            400,
            "Malformed JSON",
            f"The request body is not valid JSON: {ctx['msg']}",
            type_=f"{PROBLEM_BASE}malformed-json",
            instance=request.url.path,
            errors=errors,
        )
    fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
    return problem(
        422,
        "Invalid request",
        f"Invalid value for: {fields}",
        type_=f"{PROBLEM_BASE}validation",
        instance=request.url.path,
        errors=errors,
    )


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, detail="An unexpected error occurred; it has been logged.")


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as RFC 9457 problem+json."""
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)

"""Who is calling a hub service: a partner (through the gateway) or the hub's operator.

Partners never reach catalog, customs or logistics directly: they call the hub's gateway,
which authenticates their API key and forwards ``/v1/...`` calls with

- ``X-Ehub-Gateway: <EHUB_INTERNAL_TOKEN>`` — the hub's internal credential;
- ``X-Ehub-Partner: prt_...`` — the partner's id;
- ``X-Ehub-Partner-Role: marketplace|seller|carrier|broker|officer``;
- ``X-Ehub-Scopes: <space separated scopes>`` — what the partner's key may do.

The hub's operator (CLI, seeding, the gateway acting for the hub itself) calls
``/operator/v1/...`` routes with ``Authorization: Bearer <EHUB_INTERNAL_TOKEN>``.

:data:`CallerDep`, :func:`require_scope` and :data:`OperatorDep` check these. Routers
that use them are declared with ``route_class=GuardedRoute``, which runs the same checks
*before* the request body is read: FastAPI decodes the JSON body before it solves any
dependency, so without it an unauthenticated request with a malformed body would be
told about its JSON (400) instead of being refused (401).

DEVELOPMENT MODE — when ``EHUB_INTERNAL_TOKEN`` is unset (a service run alone, or its own
unit tests), partner routes accept *anyone* as an anonymous caller who sees every row
and holds every scope, and the operator API is disabled (403). Never run a hub reachable
by anyone but its gateway without the token: the service logs a warning at start-up
(:func:`warn_if_open`).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.responses import Response

from ehub_core.errors import ForbiddenError, ServiceUnavailableError, UnauthorizedError

if TYPE_CHECKING:
    from ehub_core.app import ServiceContext
    from ehub_core.settings import CoreSettings

log = logging.getLogger("ehub.partners")

GATEWAY_HEADER = "X-Ehub-Gateway"
PARTNER_HEADER = "X-Ehub-Partner"
ROLE_HEADER = "X-Ehub-Partner-Role"
SCOPES_HEADER = "X-Ehub-Scopes"

ROLES = frozenset({"marketplace", "seller", "carrier", "broker", "officer"})
PARTNER_ID = re.compile(r"^prt_[A-Za-z0-9_-]{1,60}$")
PARTNER_ID_PATTERN = PARTNER_ID.pattern

CallerKind = Literal["partner", "operator", "development"]


class GatewayCredentialRequired(UnauthorizedError):
    title = "Gateway credential required"
    type_slug = "gateway-credential-required"


class PartnerIdentityRequired(UnauthorizedError):
    title = "Partner identity required"
    type_slug = "partner-identity-required"


class OperatorCredentialRequired(UnauthorizedError):
    title = "Operator credential required"
    type_slug = "operator-credential-required"


class MissingScope(ForbiddenError):
    title = "Missing scope"
    type_slug = "missing-scope"


class OperatorApiDisabled(ForbiddenError):
    title = "Operator API disabled"
    type_slug = "operator-api-disabled"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request acts for.

    ``kind`` is ``partner`` (forwarded by the gateway: ``partner_id`` is set),
    ``operator`` (the hub itself, on ``/operator/v1``) or ``development`` (a service
    without ``EHUB_INTERNAL_TOKEN``: anonymous). Only a partner is confined to its own
    rows and to its scopes.
    """

    partner_id: str | None
    role: str | None = None
    scopes: frozenset[str] = frozenset()
    kind: CallerKind = "partner"

    def __post_init__(self) -> None:
        # A partner without an id would be confined to nothing, i.e. see every row.
        if (self.kind == "partner") != (self.partner_id is not None):
            raise ValueError("a partner caller has a partner_id; no other caller does")

    @property
    def anonymous(self) -> bool:
        return self.partner_id is None

    @property
    def visible_to(self) -> str | None:
        """The owner a query must be confined to; None = every row (operator, development)."""
        return self.partner_id if self.kind == "partner" else None

    def has_scope(self, scope: str) -> bool:
        return self.kind != "partner" or scope in self.scopes

    def idempotency_scope(self, operation: str) -> str:
        """``Idempotency-Key`` scope: one partner's keys never meet another's stored
        answers (which would hand out the other's resource)."""
        return operation if self.partner_id is None else f"{operation}:{self.partner_id}"


DEVELOPMENT = Caller(partner_id=None, kind="development")
OPERATOR = Caller(partner_id=None, kind="operator")


def internal_token(settings: CoreSettings) -> str | None:
    """The hub's internal credential, or None when unset (development mode); an empty
    value counts as unset."""
    secret = getattr(settings, "internal_token", None)
    if secret is None:
        return None
    value: str = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
    return value or None


def _settings(request: Request) -> CoreSettings:
    settings: CoreSettings | None = getattr(request.app.state, "settings", None)
    if settings is None:  # the lifespan has not run: refuse rather than guess
        raise ServiceUnavailableError("The service has not finished starting")
    return settings


def _same(given: str, expected: str) -> bool:
    # Bytes: compare_digest refuses non-ASCII str, and header values are arbitrary.
    return hmac.compare_digest(given.encode(), expected.encode())


async def authenticate_partner(request: Request) -> Caller:
    """The partner the gateway forwarded this request for (``CallerDep``)."""
    token = internal_token(_settings(request))
    if token is None:
        return DEVELOPMENT
    given = request.headers.get(GATEWAY_HEADER)
    if given is None or not _same(given, token):
        raise GatewayCredentialRequired(
            "This service takes partner calls only through the hub's gateway: partners "
            "call the gateway with their API key, and the gateway forwards the call with "
            f"its {GATEWAY_HEADER} credential, which this request "
            + ("lacks." if given is None else "does not carry correctly.")
        )
    partner_id = request.headers.get(PARTNER_HEADER)
    if not partner_id or not PARTNER_ID.match(partner_id):
        raise PartnerIdentityRequired(
            f"The gateway must forward the partner's id (prt_...) in {PARTNER_HEADER}."
        )
    role = request.headers.get(ROLE_HEADER) or None
    if role is not None and role not in ROLES:
        raise PartnerIdentityRequired(
            f"{ROLE_HEADER} must be one of {', '.join(sorted(ROLES))}; got {role[:40]!r}."
        )
    scopes = frozenset(request.headers.get(SCOPES_HEADER, "").split())
    caller = Caller(partner_id=partner_id, role=role, scopes=scopes)
    request.state.partner = caller  # the access log names the partner
    return caller


async def authenticate_operator(request: Request) -> Caller:
    """The hub's operator: ``Authorization: Bearer <EHUB_INTERNAL_TOKEN>`` (``OperatorDep``)."""
    token = internal_token(_settings(request))
    if token is None:
        raise OperatorApiDisabled(
            "The operator API is disabled: EHUB_INTERNAL_TOKEN is unset (development mode)."
        )
    given = request.headers.get("Authorization")
    if given is None or not _same(given, f"Bearer {token}"):
        raise OperatorCredentialRequired(
            "Operator routes need 'Authorization: Bearer <EHUB_INTERNAL_TOKEN>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return OPERATOR


class _ScopeRequirement:
    """The dependency :func:`require_scope` builds; :class:`GuardedRoute` finds it."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> Caller:
        caller = await authenticate_partner(request)
        if not caller.has_scope(self.scope):
            held = " ".join(sorted(caller.scopes)) or "none"
            raise MissingScope(
                f"This operation needs the scope {self.scope!r}, which the partner's key "
                f"does not grant (it grants: {held}).",
                required_scope=self.scope,
            )
        return caller

    def __repr__(self) -> str:
        return f"require_scope({self.scope!r})"


def require_scope(scope: str) -> Any:
    """A dependency (``Annotated[Caller, require_scope("catalog:write")]``) that answers
    403 naming ``scope`` when a partner's key lacks it, and returns the caller.
    Operators and development callers hold every scope."""
    return Depends(_ScopeRequirement(scope))


CallerDep = Annotated[Caller, Depends(authenticate_partner)]
OperatorDep = Annotated[Caller, Depends(authenticate_operator)]

Check = Callable[[Request], Awaitable[Caller]]


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def early_checks(dependant: Dependant) -> list[Check]:
    """The identity checks among a route's dependencies, credentials before scopes."""
    found = list(_calls(dependant))
    checks: list[Check] = []
    for auth in (authenticate_operator, authenticate_partner):
        if auth in found:
            checks.append(auth)
    scopes = [c for c in found if isinstance(c, _ScopeRequirement)]
    if scopes and authenticate_partner not in checks:
        checks.append(authenticate_partner)
    checks.extend(scopes)
    return checks


class GuardedRoute(APIRoute):
    """A route that checks who calls (credential, partner, scopes) before it reads the
    body, so a refused request is refused whatever its body; the same dependencies run
    again as usual when the endpoint's parameters are solved.

    It finds the checks among the route's own dependencies and those of the APIRouter
    that declares it (not among dependencies added by ``include_router``).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = early_checks(self.dependant)
        if not checks:
            return handler

        async def guarded(request: Request) -> Response:
            for check in checks:
                await check(request)
            return await handler(request)

        return guarded


def is_guarded(route: Any) -> bool:
    """Whether a route refuses unidentified callers before reading the body."""
    return isinstance(route, GuardedRoute) and bool(early_checks(route.dependant))


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        if included is not None:
            yield from _api_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def unguarded_routes(app: FastAPI, *, exempt: Iterable[str] = ()) -> list[str]:
    """``METHOD path`` of every ``/v1`` or ``/operator`` route of ``app`` that does not
    check its caller before reading the body, except the ``exempt`` path prefixes (e.g.
    carriers' signed webhooks). A service's tests assert this is empty."""
    skip = tuple(exempt)
    out: list[str] = []
    for route in _api_routes(app.routes):
        if not route.path.startswith(("/v1/", "/operator/")) or (
            skip and route.path.startswith(skip)
        ):
            continue
        if not is_guarded(route):
            out.extend(f"{m} {route.path}" for m in sorted(route.methods or ()))
    return out


async def warn_if_open(app: FastAPI, ctx: ServiceContext) -> None:
    """Start-up hook: say loudly when a service runs without the internal credential."""
    if internal_token(ctx.settings) is None:
        log.warning(
            "EHUB_INTERNAL_TOKEN is unset: DEVELOPMENT MODE - %s accepts anonymous callers "
            "on every partner route (they see every row) and the operator API is off. "
            "Never expose this service; set EHUB_INTERNAL_TOKEN (docs/partners.md).",
            ctx.settings.service,
        )

"""Hub-to-hub endpoints: every request and response is signed (RFC 9421)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from google.protobuf.message import DecodeError
from pydantic import BaseModel, Field

from ehub_core import metrics
from ehub_core.deps import SessionDep
from ehub_core.errors import (
    PROBLEM_JSON,
    DomainError,
    ForbiddenError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from ehub_core.nonce_store import SqlNonceStore
from ehub_core.proto.ehub.v1.envelope_pb2 import EnvelopeBatch
from ehub_core.signing import (
    NonceStore,
    Reason,
    SignatureError,
    VerifiedRequest,
    hub_of,
    sign_response,
    target_uri_from_asgi,
    verify_request,
)
from ehub_gateway.federation.delivery_http import RECEIPT_CONTENT_TYPE
from ehub_gateway.federation.ingest import verify_batch
from ehub_gateway.federation.ingest_record import DeferredNonces, IngestJob
from ehub_gateway.federation.parties import NotOrderParty
from ehub_gateway.federation.peer_store import mark_revoked
from ehub_gateway.federation.runtime import Federation, get_federation

router = APIRouter(tags=["federation"])
FedDep = Annotated[Federation, Depends(get_federation)]
MAX_BATCH = 1000


class PayloadTooLarge(DomainError):
    status = 413
    title = "Batch too large"


def _rejected(exc: SignatureError, fed: Federation) -> UnauthorizedError:
    metrics.FED_INGESTED.labels(fed.hub, "http", exc.reason_code).inc()
    return UnauthorizedError(
        exc.detail or exc.reason_code,
        title="Signature rejected",
        reason=exc.reason_code,
        headers={"WWW-Authenticate": 'Signature realm="ehub"'},
    )


def refuse_unsigned(request: Request, fed: Federation) -> None:
    """Refuse a request without signature headers before reading its body (the signature
    covers the body's digest, so a signed request is verified only once it is read)."""
    if "signature" not in request.headers or "signature-input" not in request.headers:
        raise _rejected(
            SignatureError(Reason.MISSING_SIGNATURE, "Signature and Signature-Input required"),
            fed,
        )


async def authenticate(
    request: Request, nonce_store: NonceStore, fed: Federation, body: bytes
) -> VerifiedRequest:
    try:
        return await verify_request(
            request.method,
            target_uri_from_asgi(request.scope, public_origin=fed.public_origin),
            request.headers,
            body,
            resolve_key=fed.trust.resolve,
            nonce_store=nonce_store,
            clock_skew=fed.settings.clock_skew,
        )
    except SignatureError as exc:
        raise _rejected(exc, fed) from None


def signed(
    request: Request, fed: Federation, status: int, body: bytes, media_type: str
) -> Response:
    headers = {"Content-Type": media_type}
    headers.update(
        sign_response(
            status,
            headers,
            body,
            fed.keyring.active_key(),
            fed.hub,
            request_method=request.method,
            request_url=target_uri_from_asgi(request.scope, public_origin=fed.public_origin),
            request_headers=request.headers,
        )
    )
    return Response(body, status_code=status, headers=headers)


def signed_problem(request: Request, fed: Federation, exc: DomainError) -> Response:
    """``exc`` as problem+json, signed as :func:`signed` signs an answer: a peer that acts
    on a refusal's content (an offer's field errors) can tell it is ours."""
    problem = exc.to_response(instance=request.url.path)
    response = signed(request, fed, exc.status, bytes(problem.body), PROBLEM_JSON)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


@router.post(
    "/federation/v1/events",
    summary="Deliver signed event envelopes (batch); answered with a signed receipt",
    responses={
        200: {
            "description": "A signed receipt naming each event recorded or rejected",
            "content": {RECEIPT_CONTENT_TYPE: {"example": "<binary ehub.v1.SignedReceipt>"}},
        }
    },
    response_class=Response,
)
async def receive_events(request: Request, fed: FedDep) -> Response:
    """A peer hub delivers a batch of signed event envelopes (protobuf
    ``ehub.v1.EnvelopeBatch``, RFC 9421-signed request). Each event is verified, recorded
    once and answered in one signed receipt; an event of an order the peer takes no part
    in refuses the whole request (403, nothing written). docs/federation-wire.md."""
    refuse_unsigned(request, fed)
    body = await request.body()
    nonces = DeferredNonces()
    verified = await authenticate(request, nonces, fed, body)
    try:
        batch = EnvelopeBatch.FromString(body)
    except DecodeError:
        raise DomainError(
            "The body is not an ehub.v1.EnvelopeBatch", title="Malformed batch"
        ) from None
    if len(batch.envelopes) > MAX_BATCH:
        raise PayloadTooLarge(f"At most {MAX_BATCH} envelopes per batch")
    good, rejected, claims = verify_batch(
        list(batch.envelopes),
        sender_hub=verified.hub_id,
        own_hub=fed.hub,
        trust=fed.trust,
        clock_skew=fed.settings.clock_skew,
        now=datetime.now(UTC),
        max_event_bytes=fed.settings.max_event_bytes,
    )
    assert nonces.seen is not None
    job = IngestJob(verified.hub_id, "http", good, rejected, claims, nonce=nonces.seen)
    try:
        recorded, receipt = await fed.writer.submit(job)
    except NotOrderParty:
        # 403 naming the event: its sender dead-letters that one and re-sends the rest.
        metrics.FED_INGESTED.labels(fed.hub, "http", "not_order_party").inc()
        raise
    except Exception as exc:
        raise ServiceUnavailableError(
            "The events could not be recorded; nothing was accepted, send them again.",
            headers={"Retry-After": "1"},
        ) from exc
    if not recorded.fresh_nonce:
        raise UnauthorizedError(
            f"nonce {nonces.seen.nonce} was already used",
            title="Signature rejected",
            reason="replayed_nonce",
            headers={"WWW-Authenticate": 'Signature realm="ehub"'},
        )
    return signed(request, fed, 200, receipt, RECEIPT_CONTENT_TYPE)


class Revocation(BaseModel):
    kid: str = Field(min_length=4, max_length=100)
    revoked_at: datetime | None = None


@router.post(
    "/federation/v1/revocations",
    summary="A peer revokes one of its own keys",
    responses={
        200: {
            "description": "The revocation, recorded (signed answer)",
            "content": {
                "application/json": {
                    "example": {"kid": "CA_2026-11", "revoked": True, "known": True}
                }
            },
        }
    },
)
async def receive_revocation(request: Request, session: SessionDep, fed: FedDep) -> Response:
    """A peer hub tells this hub, in a request signed with one of its keys, that one of
    its own keys is revoked: from then on nothing signed with it verifies here. A hub may
    revoke only its own keys (403 otherwise)."""
    refuse_unsigned(request, fed)
    body = await request.body()
    verified = await authenticate(request, SqlNonceStore(session), fed, body)
    try:
        revocation = Revocation.model_validate_json(body)
        owner = hub_of(revocation.kid)
    except ValueError as exc:
        raise DomainError(f"Bad revocation: {exc}", title="Malformed revocation") from None
    if owner != verified.hub_id:
        raise ForbiddenError(f"hub {verified.hub_id} may not revoke {owner}'s key {revocation.kid}")
    known = await mark_revoked(session, revocation.kid, revocation.revoked_at or datetime.now(UTC))
    fed.trust.revoke_now(revocation.kid)
    out = json.dumps({"kid": revocation.kid, "revoked": True, "known": known}).encode()
    return signed(request, fed, 200, out, "application/json")


@router.get("/.well-known/ehub", summary="This hub's identity, endpoints and public keys (signed)")
async def well_known(request: Request, fed: FedDep) -> dict[str, Any]:
    """The hub's self-description that peers fetch and pin: hub id, federation endpoints,
    the backbone topic, and its public keys with their validity, signed with the hub's
    key (docs/federation.md)."""
    return fed.document(str(request.base_url))

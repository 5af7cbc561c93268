"""RFC 9421 HTTP Message Signatures between hubs: Ed25519, one profile, plain data in and out.

Requests cover ``"@method" "@target-uri" "content-digest" "ehub-hub"``; responses cover
``"@status" "content-digest" "ehub-hub" "@method";req "@target-uri";req`` and, when the
request was signed, ``"signature";key="sig1";req`` - the request's own signature, which holds
its nonce, so a response cannot be replayed as the answer to any other request (§2.4).
Parameters: ``created``, ``expires``, ``nonce`` (128 random bits), ``keyid``, ``alg``.

Verification order is fixed so each failure has one stable reason code: syntax
(``missing_signature``, ``malformed_signature``), coverage (``missing_components``), time
(``signature_expired``, ``clock_skew``), key (``unknown_key``, ``key_revoked``,
``key_expired``, ``key_not_yet_valid``), hub (``hub_mismatch``), cryptography
(``bad_signature``), body (``digest_mismatch``), and last, once everything else has passed,
replay (``replayed_nonce``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from ehub_core.signing.components import (
    ComponentError,
    HeadersLike,
    MessageView,
    component_identity,
    component_ids,
    signature_base,
)
from ehub_core.signing.digest import CONTENT_DIGEST, content_digest, verify_content_digest
from ehub_core.signing.errors import Reason, SignatureError
from ehub_core.signing.keys import ALG_ED25519, HubKey, PublicKeyInfo, hub_of, utc, validate_hub_id
from ehub_core.signing.nonces import NonceStore, new_nonce
from ehub_core.signing.structured_fields import (
    InnerList,
    Item,
    Params,
    SFError,
    parse_dictionary,
    serialize_dictionary,
    serialize_item,
)

HUB_HEADER = "EHub-Hub"
DEFAULT_LABEL = "sig1"
DEFAULT_TTL = 60
DEFAULT_CLOCK_SKEW = 300
DEFAULT_EXPIRES_SKEW = 5
REQUEST_COMPONENTS: tuple[str, ...] = ("@method", "@target-uri", "content-digest", "ehub-hub")
RESPONSE_COMPONENTS: tuple[str, ...] = (
    "@status",
    "content-digest",
    "ehub-hub",
    '"@method";req',
    '"@target-uri";req',
)
_KNOWN_PARAMS = frozenset({"created", "expires", "nonce", "keyid", "alg", "tag"})
_MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
_MAX_NONCE = 128  # bounded: nonces are stored; ours are 22 characters

KeyResolver = Callable[[str], PublicKeyInfo | None]
"""Maps a key id to the trusted public key, or None if unknown. Return the key with
``revoked=True`` for a revoked key (reported as ``key_revoked``), or raise
:class:`SignatureError` for a reason of your own; any other exception propagates (an
infrastructure failure is not an authentication failure). Resolvers should answer from
memory: they run on every verification."""


@dataclass(frozen=True)
class VerifiedRequest:
    """The authenticated facts of a verified message."""

    hub_id: str
    kid: str
    created: datetime
    expires: datetime | None
    nonce: str
    label: str = DEFAULT_LABEL


class VerifiedResponse(VerifiedRequest):
    pass


# ------------------------------------------------------------------------------------------
# Signing


def sign_request(
    method: str,
    url: str,
    headers: HeadersLike,
    body: bytes,
    key: HubKey,
    hub_id: str,
    now: datetime | None = None,
    ttl: int = DEFAULT_TTL,
    *,
    label: str = DEFAULT_LABEL,
    extra_components: Sequence[str] = (),
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign a request; return the headers to add (``Content-Digest``, ``EHub-Hub``,
    ``Signature-Input``, ``Signature``), replacing any of the same name.

    ``url`` must be exactly what goes on the wire; ``body`` exactly the bytes sent.
    ``extra_components`` adds header fields (present in ``headers``) to the coverage.
    """
    view = MessageView.for_request(method, url, headers)
    components = component_ids((*REQUEST_COMPONENTS, *extra_components))
    return _sign(view, components, body, key, hub_id, now, ttl, label, nonce)


def sign_response(
    status: int,
    headers: HeadersLike,
    body: bytes,
    key: HubKey,
    hub_id: str,
    *,
    request_method: str,
    request_url: str,
    request_headers: HeadersLike,
    now: datetime | None = None,
    ttl: int = DEFAULT_TTL,
    label: str = DEFAULT_LABEL,
    request_label: str = DEFAULT_LABEL,
    extra_components: Sequence[str] = (),
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign a response to the given request; return the headers to add, as for
    :func:`sign_request`. ``request_headers`` are the request's headers as received
    (including its ``Signature``, which the response then covers)."""
    request = MessageView.for_request(request_method, request_url, request_headers)
    view = MessageView.for_response(status, headers, request)
    components = component_ids((*_response_components(request, request_label), *extra_components))
    return _sign(view, components, body, key, hub_id, now, ttl, label, nonce)


def _response_components(request: MessageView, request_label: str) -> tuple[str, ...]:
    try:
        signed = request_label in parse_dictionary(request.fields.get("signature", ""))
    except SFError:
        signed = False
    if not signed:
        return RESPONSE_COMPONENTS
    return (*RESPONSE_COMPONENTS, f'"signature";key="{request_label}";req')


def _sign(
    view: MessageView,
    components: list[Item],
    body: bytes,
    key: HubKey,
    hub_id: str,
    now: datetime | None,
    ttl: int,
    label: str,
    nonce: str | None,
) -> dict[str, str]:
    validate_hub_id(hub_id)
    if key.hub_id != hub_id:
        raise ValueError(f"key {key.kid} does not belong to hub {hub_id}")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    created = int(utc(now, "now").timestamp()) if now is not None else int(_now().timestamp())
    created_at = datetime.fromtimestamp(created, UTC)
    if not key.is_valid_at(created_at):
        raise ValueError(f"key {key.kid} is not valid at {created_at.isoformat()}")
    added = {CONTENT_DIGEST: content_digest(body), HUB_HEADER: hub_id}
    fields = dict(view.fields)
    fields.update({name.lower(): value for name, value in added.items()})
    view = replace(view, fields=fields)
    params: Params = {
        "created": created,
        "expires": created + ttl,
        "nonce": nonce or new_nonce(),
        "keyid": key.kid,
        "alg": ALG_ED25519,
    }
    base = signature_base(components, params, view)
    signature = key.sign(base)
    added["Signature-Input"] = serialize_dictionary({label: InnerList(components, params)})
    added["Signature"] = serialize_dictionary({label: Item(signature)})
    return added


# ------------------------------------------------------------------------------------------
# Verifying


async def verify_request(
    method: str,
    url: str,
    headers: HeadersLike,
    body: bytes,
    *,
    resolve_key: KeyResolver,
    nonce_store: NonceStore,
    now: datetime | None = None,
    clock_skew: int = DEFAULT_CLOCK_SKEW,
    required_components: Iterable[str] = REQUEST_COMPONENTS,
    label: str = DEFAULT_LABEL,
    expires_skew: int = DEFAULT_EXPIRES_SKEW,
) -> VerifiedRequest:
    """Verify a hub-to-hub request or raise :class:`SignatureError` (see the module doc for
    the reason codes). ``url`` is the target URI the client used (on the server, see
    :func:`~ehub_core.signing.components.target_uri_from_asgi`).

    ``clock_skew`` bounds how far ``created`` may be from now; ``expires_skew`` (a few
    seconds) is all the grace a signature gets past its own ``expires``."""
    try:
        view = MessageView.for_request(method, url, headers)
    except ComponentError as exc:
        raise SignatureError(Reason.MALFORMED_SIGNATURE, str(exc)) from exc
    return await _verify(
        view,
        body,
        resolve_key,
        nonce_store,
        now,
        clock_skew,
        required_components,
        label,
        None,
        expires_skew,
    )


async def verify_response(
    status: int,
    headers: HeadersLike,
    body: bytes,
    *,
    request_method: str,
    request_url: str,
    request_headers: HeadersLike,
    resolve_key: KeyResolver,
    expected_hub: str | None = None,
    nonce_store: NonceStore | None = None,
    now: datetime | None = None,
    clock_skew: int = DEFAULT_CLOCK_SKEW,
    required_components: Iterable[str] | None = None,
    label: str = DEFAULT_LABEL,
    request_label: str = DEFAULT_LABEL,
    expires_skew: int = DEFAULT_EXPIRES_SKEW,
) -> VerifiedResponse:
    """Verify a response to the request the caller sent, or raise :class:`SignatureError`.

    ``expected_hub`` is the peer the caller meant to talk to (``hub_mismatch`` otherwise).
    By default the signature must cover the components :func:`sign_response` covers,
    including the request's signature when the request was signed; that binding already
    stops cross-request replay, so ``nonce_store`` is optional here.
    """
    try:
        request = MessageView.for_request(request_method, request_url, request_headers)
        view = MessageView.for_response(status, headers, request)
    except ComponentError as exc:
        raise SignatureError(Reason.MALFORMED_SIGNATURE, str(exc)) from exc
    if required_components is None:
        required_components = _response_components(request, request_label)
    facts = await _verify(
        view,
        body,
        resolve_key,
        nonce_store,
        now,
        clock_skew,
        required_components,
        label,
        expected_hub,
        expires_skew,
    )
    return VerifiedResponse(**dataclasses.asdict(facts))


def _now() -> datetime:
    return datetime.now(UTC)


async def _verify(
    view: MessageView,
    body: bytes,
    resolve_key: KeyResolver,
    nonce_store: NonceStore | None,
    now: datetime | None,
    clock_skew: int,
    required_components: Iterable[str],
    label: str,
    expected_hub: str | None,
    expires_skew: int = DEFAULT_EXPIRES_SKEW,
) -> VerifiedRequest:
    now = utc(now, "now") if now is not None else _now()
    sig = _parse_signature(view, label)

    covered = {component_identity(c) for c in sig.components}
    missing = [
        c for c in component_ids(required_components) if component_identity(c) not in covered
    ]
    if missing:
        names = " ".join(serialize_item(c) for c in missing)
        raise SignatureError(Reason.MISSING_COMPONENTS, f"signature does not cover {names}")

    kid, created, expires = sig.kid, sig.created, sig.expires
    skew = timedelta(seconds=clock_skew)
    # `created` may be off by the clock skew either way (clocks differ); `expires` is the
    # signer's own deadline and gets only a few seconds of grace (transit, rounding to the
    # second): a signature is not good for minutes after it said it expires.
    if expires is not None and now > expires + timedelta(seconds=expires_skew):
        raise SignatureError(Reason.SIGNATURE_EXPIRED, f"signature expired at {expires:%FT%TZ}")
    if abs(now - created) > skew:
        raise SignatureError(
            Reason.CLOCK_SKEW, f"created {created:%FT%TZ} is more than {clock_skew}s from now"
        )

    info = resolve_key(kid)
    if info is None or info.kid != kid:
        raise SignatureError(Reason.UNKNOWN_KEY, f"no trusted key {kid!r}")
    problem = info.validity_at(created)
    if problem is not None:
        raise SignatureError(problem, f"key {kid} cannot sign at {created:%FT%TZ}")

    hub_id = hub_of(kid)
    claimed = view.fields.get(HUB_HEADER.lower())
    if claimed != hub_id:
        raise SignatureError(
            Reason.HUB_MISMATCH, f"{HUB_HEADER} {claimed!r} but the key belongs to {hub_id}"
        )
    if expected_hub is not None and hub_id != expected_hub:
        raise SignatureError(Reason.HUB_MISMATCH, f"expected hub {expected_hub}, got {hub_id}")

    digest_covered = ("content-digest", frozenset()) in covered
    if digest_covered and "content-digest" not in view.fields:
        raise SignatureError(Reason.DIGEST_MISMATCH, "Content-Digest header is missing")
    try:
        base = signature_base(sig.components, sig.params, view)
    except ComponentError as exc:
        raise SignatureError(Reason.MALFORMED_SIGNATURE, str(exc)) from exc
    if not info.verify(base, sig.signature):
        raise SignatureError(Reason.BAD_SIGNATURE, f"signature {label} does not verify")

    if digest_covered:
        verify_content_digest(view.fields.get("content-digest"), body)
    elif body:
        raise SignatureError(Reason.DIGEST_MISMATCH, "the signature does not cover the body")

    # Past created + skew the clock check rejects the signature anyway: forget it then.
    if nonce_store is not None and not await nonce_store.check_and_store(
        kid, sig.nonce, created + skew
    ):
        raise SignatureError(Reason.REPLAYED_NONCE, f"nonce {sig.nonce} was already used")
    return VerifiedRequest(hub_id, kid, created, expires, sig.nonce, label)


@dataclass(frozen=True)
class _SignatureInput:
    components: list[Item]
    params: Params
    signature: bytes
    kid: str
    nonce: str
    created: datetime
    expires: datetime | None


def _parse_signature(view: MessageView, label: str) -> _SignatureInput:
    raw_input = view.fields.get("signature-input")
    raw_signature = view.fields.get("signature")
    if raw_input is None or raw_signature is None:
        raise SignatureError(Reason.MISSING_SIGNATURE, "Signature and Signature-Input required")
    try:
        inputs = parse_dictionary(raw_input)
        signatures = parse_dictionary(raw_signature)
    except SFError as exc:
        raise SignatureError(Reason.MALFORMED_SIGNATURE, str(exc)) from exc
    if label not in inputs or label not in signatures:
        raise SignatureError(Reason.MISSING_SIGNATURE, f"no signature labelled {label!r}")
    sig_input, sig_member = inputs[label], signatures[label]
    if not isinstance(sig_input, InnerList):
        raise SignatureError(Reason.MALFORMED_SIGNATURE, "Signature-Input member is not a list")
    if not isinstance(sig_member, Item) or not isinstance(sig_member.value, bytes):
        raise SignatureError(Reason.MALFORMED_SIGNATURE, "Signature member is not bytes")
    if any(not isinstance(c.value, str) for c in sig_input.items):
        raise SignatureError(Reason.MALFORMED_SIGNATURE, "component ids must be strings")
    params = sig_input.params
    problems = [f"unknown parameter {p!r}" for p in params if p not in _KNOWN_PARAMS]
    keyid, nonce = params.get("keyid"), params.get("nonce")
    created, expires = params.get("created"), params.get("expires")
    if not isinstance(keyid, str) or not isinstance(nonce, str):
        problems.append("parameters 'keyid' and 'nonce' must be strings")
    elif not 0 < len(nonce) <= _MAX_NONCE:
        problems.append(f"nonce must be 1 to {_MAX_NONCE} characters")
    if type(created) is not int or not 0 <= created <= _MAX_TIMESTAMP:
        problems.append("parameter 'created' must be an integer timestamp")
    if expires is not None and (type(expires) is not int or not 0 <= expires <= _MAX_TIMESTAMP):
        problems.append("parameter 'expires' must be an integer timestamp")
    elif isinstance(expires, int) and isinstance(created, int) and expires < created:
        problems.append("'expires' is before 'created'")
    if params.get("alg", ALG_ED25519) != ALG_ED25519:
        problems.append(f"unsupported alg {params['alg']!r}")
    if isinstance(keyid, str):
        try:
            hub_of(keyid)
        except ValueError:
            problems.append(f"keyid {keyid!r} is not of the form 'CN#2026-11'")
    if problems:
        raise SignatureError(Reason.MALFORMED_SIGNATURE, "; ".join(problems))
    assert isinstance(keyid, str) and isinstance(nonce, str) and isinstance(created, int)
    return _SignatureInput(
        components=list(sig_input.items),
        params=dict(params),
        signature=sig_member.value,
        kid=keyid,
        nonce=nonce,
        created=datetime.fromtimestamp(created, UTC),
        expires=datetime.fromtimestamp(expires, UTC) if isinstance(expires, int) else None,
    )

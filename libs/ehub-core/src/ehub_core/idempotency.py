"""``Idempotency-Key`` for POSTs that create something (ARCHITECTURE §7).

The first request with a key stores its response in the same transaction as the
resource it created; a retry with the same key and the same body gets that response
back; the same key with a different body is a 422. Two concurrent first requests race
on the primary key: the loser gets 409 and may retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.errors import ConflictError, UnprocessableError, field_error
from ehub_core.models import IdempotencyRecord

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Makes retries safe: same key + same body returns the first result",
    ),
]


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: Any
    replayed: bool


def request_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run_once(
    session: AsyncSession,
    *,
    scope: str,
    key: str | None,
    body: Any,
    create: Callable[[], Awaitable[tuple[int, Any]]],
) -> Outcome:
    """Run ``create`` once per ``(scope, key)``; replay its stored response afterwards.

    ``scope`` should name the operation and the caller (e.g. ``"POST /v1/orders:partner_1"``)
    so two partners' keys never collide. Without a key, ``create`` simply runs.
    """
    if key is None:
        status, response = await create()
        return Outcome(status, response, replayed=False)
    digest = request_hash(body)
    existing = await session.get(IdempotencyRecord, (scope, key))
    if existing is not None:
        return replay(existing, digest, key)
    record = IdempotencyRecord(
        scope=scope, key=key, request_hash=digest, created_at=datetime.now(UTC)
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:
        raise ConflictError(
            f"A request with Idempotency-Key {key!r} is in progress; retry shortly.",
            headers={"Retry-After": "1"},
        ) from None
    status, response = await create()
    record.status_code = status
    record.response = response
    return Outcome(status, response, replayed=False)


def replay(existing: IdempotencyRecord, digest: str, key: str) -> Outcome:
    """The answer a request under an existing key gets: the first answer again, 422 for
    another body, 409 while the first is still in progress."""
    if existing.request_hash != digest:
        raise UnprocessableError(
            f"Idempotency-Key {key!r} was already used with a different request body.",
            errors=[
                field_error(
                    "Idempotency-Key",
                    "reused with a different body",
                    "idempotency_mismatch",
                    where="header",
                )
            ],
        )
    if existing.status_code is None:
        raise ConflictError(
            f"A request with Idempotency-Key {key!r} is in progress; retry shortly.",
            headers={"Retry-After": "1"},
        )
    return Outcome(existing.status_code, existing.response, replayed=True)


async def respond_once(
    session: AsyncSession,
    *,
    scope: str,
    key: str | None,
    request: BaseModel,
    create: Callable[[], Awaitable[BaseModel]],
    status_code: int = 201,
) -> JSONResponse:
    """:func:`run_once` for the common case: a validated request model in, a response
    model out, answered as JSON (the stored answer on a replay)."""

    async def run() -> tuple[int, Any]:
        return status_code, (await create()).model_dump(mode="json")

    outcome = await run_once(
        session, scope=scope, key=key, body=request.model_dump(mode="json"), create=run
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)

"""FastAPI dependencies shared by the services.

``SessionDep`` opens one session per request; the request scope commits once when the
path operation returns (before the response is sent) or rolls back on error. Services
never commit themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.outbox import OUTBOX_DIRTY

if TYPE_CHECKING:
    from ehub_core.app import ServiceContext


def context_of(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


# Dependencies are ``async def``: FastAPI runs a plain ``def`` in a worker thread, which
# costs more than the dependency itself.
async def get_context(request: Request) -> ServiceContext:
    return context_of(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A write session for the request, committed once when the endpoint returns."""
    ctx = context_of(request)
    async with ctx.db.write_slot(), ctx.db.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    if session.info.pop(OUTBOX_DIRTY, False) and ctx.relay is not None:
        ctx.relay.notify()


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read-only session: no write lock, never committed (for GET endpoints)."""
    async with context_of(request).db.reader() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
ContextDep = Annotated["ServiceContext", Depends(get_context)]

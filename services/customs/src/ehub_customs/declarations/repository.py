"""All SQL of customs declarations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_customs.declarations.models import Declaration


class DeclarationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, *, order_id: str, phase: str) -> Declaration | None:
        stmt = select(Declaration).where(
            Declaration.order_id == order_id, Declaration.phase == phase
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def for_order(self, order_id: str) -> Sequence[Declaration]:
        stmt = (
            select(Declaration)
            .where(Declaration.order_id == order_id)
            .order_by(Declaration.filed_at, Declaration.id)
        )
        return (await self.session.scalars(stmt)).all()

    def add(self, declaration: Declaration) -> None:
        self.session.add(declaration)

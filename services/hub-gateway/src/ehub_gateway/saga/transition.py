"""Applying one input to an order, inside the caller's transaction: the machine's
transition, the timeline step, the ``order.state_changed`` webhook and the actions'
outbox rows. :class:`SagaBase` holds what every part of the saga shares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.db import Database
from ehub_gateway.orders.models import Order, OrderStep
from ehub_gateway.saga import actions
from ehub_gateway.saga.machine import Action, Role, State, step
from ehub_gateway.webhooks.service import order_state_changed

LOCKED = "ehub_saga_locked_orders"  # session.info: orders read for update by the batch


class SagaBase:
    """The saga's settings and state, and :meth:`apply` (one input, one transition)."""

    def __init__(
        self,
        db: Database,
        hub_id: str,
        key: Callable[[], Any],
        *,
        notify: Callable[[], None] = lambda: None,
        resend_after: float = 10.0,
        resend_max: float = 300.0,
        accept_window: float = 86400.0,
    ) -> None:
        self.db = db
        self.hub = hub_id
        self.key = key  # the hub's active signing key, looked up when used
        self.notify = notify
        self.resend_after = resend_after
        self.resend_max = max(resend_max, resend_after)
        self.accept_window = accept_window
        self._stop = asyncio.Event()

    async def _load(self, session: AsyncSession, order_id: str) -> Order | None:
        locked = session.info.get(LOCKED, {}).get(order_id)
        if locked is not None:
            return locked  # read (and locked) for the batch
        stmt = select(Order).where(Order.id == order_id)
        if self.db.is_postgres:
            stmt = stmt.with_for_update()
        return (await session.execute(stmt)).scalar_one_or_none()

    async def _lock_orders(self, session: AsyncSession, order_ids: set[str]) -> None:
        """Read (and on Postgres lock, in id order) the orders a batch speaks of, in one
        statement; :meth:`_load` then finds them in the session."""
        if not order_ids:
            return
        stmt = select(Order).where(Order.id.in_(sorted(order_ids))).order_by(Order.id)
        if self.db.is_postgres:
            stmt = stmt.with_for_update()
        # Held here: the session's identity map keeps unchanged objects only weakly.
        session.info[LOCKED] = {o.id: o for o in (await session.scalars(stmt)).all()}

    async def apply(
        self,
        session: AsyncSession,
        order: Order,
        event: str,
        *,
        what: str,
        hub: str,
        detail: dict[str, Any],
        event_id: str | None = None,
    ) -> bool:
        """Feed ``event`` to the machine; record the step; run its actions. True if the
        table had an entry (the state may stay the same)."""
        found = step(Role(order.role), State(order.state), event)
        now = datetime.now(UTC)
        if found is not None:
            await order_state_changed(session, order, found.to, what=what, hub=hub, at=now)
            order.state = found.to
            order.updated_at = now
        session.add(
            OrderStep(
                order_id=order.id,
                at=now,
                hub=hub,
                what=what,
                state=order.state,
                detail={**detail, **({} if found else {"effect": "none"})},
                event_id=event_id,
            )
        )
        if found is not None:
            for action in found.actions:
                await self.act(session, order, action)
        return found is not None

    async def act(self, session: AsyncSession, order: Order, action: Action) -> None:
        if action in actions.COMMANDS:
            await actions.send(session, order, action, hub_id=self.hub)
        else:
            await actions.tell_peer(session, order, action, hub_id=self.hub, key=self.key())

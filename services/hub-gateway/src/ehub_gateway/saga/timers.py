"""The saga's timers: re-sending commands whose reply is late (their handlers are
idempotent) and rejecting orders the seller left unanswered past their deadline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from ehub_core.telemetry import resumed_trace
from ehub_gateway.orders.models import Order, SagaCommand
from ehub_gateway.saga import actions
from ehub_gateway.saga.machine import State
from ehub_gateway.saga.transition import SagaBase

log = logging.getLogger("ehub.gateway.saga")


class SagaTimers(SagaBase):
    def resend_delay(self, attempt: int) -> float:
        """Seconds attempt ``attempt`` (1 = the first send) waits for its answer before
        the next: ``EHUB_SAGA_RESEND_AFTER``, doubling per attempt, at most
        ``EHUB_SAGA_RESEND_MAX``."""
        return float(min(self.resend_max, self.resend_after * 2 ** min(max(attempt - 1, 0), 30)))

    async def tick(self, now: datetime | None = None) -> int:
        """Re-send late commands; reject orders past their acceptance deadline."""
        now = now or datetime.now(UTC)
        done = 0
        late = now - timedelta(seconds=self.resend_after)
        async with self.db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        select(SagaCommand)
                        .where(SagaCommand.done_at.is_(None), SagaCommand.sent_at < late)
                        .order_by(SagaCommand.sent_at)
                        .limit(200)
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                # Each attempt waits twice as long as the one before (to resend_max): a
                # service slow to answer is not sent more work the slower it gets.
                if row.sent_at > now - timedelta(seconds=self.resend_delay(row.attempt)):
                    continue
                await actions.resend(session, row, hub_id=self.hub)
                done += 1
            expired = (
                (
                    await session.execute(
                        select(Order)
                        .where(
                            Order.state == State.AWAITING_ACCEPTANCE,
                            Order.accept_by.is_not(None),
                            Order.accept_by < now,
                        )
                        .limit(200)
                    )
                )
                .scalars()
                .all()
            )
            for order in expired:
                order.reason = "seller_timeout: the seller did not answer in time"
                with resumed_trace(order.traceparent, "order deadline"):
                    await self.apply(
                        session, order, "deadline", what="deadline", hub=self.hub, detail={}
                    )
                done += 1
        if done:
            self.notify()
        return done

    async def run(self, interval: float = 1.0) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)
            if self._stop.is_set():
                return
            try:
                await self.tick()
            except Exception:
                log.exception("saga timer failed")

    def stop(self) -> None:
        self._stop.set()

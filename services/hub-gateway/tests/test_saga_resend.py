"""The saga re-sends an unanswered command with doubling waits, so a service that is slow
to answer (a loaded machine, a long queue) is not sent ever more copies of the same work.

Real database (SQLite and Postgres), the real timer (`Saga.tick`) and the real outbox:
what is asserted is which commands a tick puts in the outbox, at a given clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ehub_core.db import Database
from ehub_core.migrations import upgrade
from ehub_core.models import OutboxRecord
from ehub_gateway.orders.models import SagaCommand
from ehub_gateway.saga.runner import Saga


def test_each_attempt_waits_twice_as_long_up_to_the_cap() -> None:
    saga = Saga(Database("sqlite+aiosqlite://"), "CN", lambda: None, resend_after=3, resend_max=20)
    assert [saga.resend_delay(a) for a in (1, 2, 3, 4, 5, 1000)] == [3, 6, 12, 20, 20, 20]
    # A cap below the first wait is the first wait (never re-send faster than asked).
    assert (
        Saga(
            Database("sqlite+aiosqlite://"), "CN", lambda: None, resend_after=10, resend_max=1
        ).resend_delay(1)
        == 10
    )


@pytest.mark.parametrize(
    ("attempt", "sent_ago", "resent"),
    [(1, 4, True), (1, 2, False), (3, 11, False), (3, 13, True), (9, 19, False), (9, 21, True)],
)
async def test_a_tick_resends_only_what_has_waited_its_attempts_delay(
    database_url: str, attempt: int, sent_ago: float, resent: bool
) -> None:
    db = Database(database_url)
    await upgrade(db, "ehub_gateway.migrations")
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            session.add(
                SagaCommand(
                    order_id="ord_0193a2c0ab567319ab907e94eea320fd",
                    step="import",
                    stream="customs-commands",
                    command="FileImportDeclaration",
                    body={"country": "CN"},
                    attempt=attempt,
                    sent_at=now - timedelta(seconds=sent_ago),
                )
            )
        saga = Saga(db, "CN", lambda: None, resend_after=3, resend_max=20)
        assert await saga.tick(now) == (1 if resent else 0)
        async with db.transaction() as session:
            sent = await session.scalar(select(func.count()).select_from(OutboxRecord))
            row = (await session.execute(select(SagaCommand))).scalar_one()
        assert sent == (1 if resent else 0)
        assert row.attempt == attempt + (1 if resent else 0)
    finally:
        await db.dispose()

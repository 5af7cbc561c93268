"""Outbox, relay and inbox against the real embedded broker and real databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.bus import BusUnavailable, KafkaBus, Message
from ehub_core.db import Database
from ehub_core.inbox import idempotent
from ehub_core.migrations import upgrade
from ehub_core.models import InboxRecord, OutboxRecord
from ehub_core.outbox import OutboxRelay, enqueue
from tests.helpers.events import read_topic, wait_for

HELPERS = Path(__file__).parent / "helpers"


async def migrated(url: str) -> Database:
    db = Database(url)
    await upgrade(db, "ehub_catalog.migrations")
    return db


async def make_state_table(db: Database) -> None:
    async with db.transaction() as s:
        await s.execute(text("CREATE TABLE applied (event_id VARCHAR(64), note VARCHAR(50))"))


async def applied_count(db: Database) -> int:
    async with db.sessionmaker() as s:
        return int(await s.scalar(text("SELECT COUNT(*) FROM applied")) or 0)


async def record_effect(session: AsyncSession, message: Message) -> None:
    await session.execute(
        text("INSERT INTO applied (event_id, note) VALUES (:e, :n)"),
        {"e": message.header("event_id"), "n": message.value.decode()[:50]},
    )


async def consume(
    bus: KafkaBus, topic: str, handle: Callable[[Message], Awaitable[None]], *, deliveries: int
) -> int:
    """Consume ``topic`` through ``handle`` in a fresh group until ``deliveries`` messages
    were handled; return how many were."""
    seen = 0

    async def counting(message: Message) -> None:
        nonlocal seen
        await handle(message)
        seen += 1

    sub = bus.subscribe([topic], f"g-{uuid.uuid4().hex[:6]}", counting)
    task = asyncio.create_task(sub.run())

    async def enough() -> bool:
        return seen >= deliveries

    try:
        await wait_for(enough, 30)
    finally:
        await sub.stop()
        await task
    return seen


def topic_name() -> str:
    return f"ehub.test.{uuid.uuid4().hex[:10]}"


async def test_committed_event_is_published(database_url, broker):
    db = await migrated(database_url)
    bus = KafkaBus(broker.bootstrap)
    topic = topic_name()
    try:
        async with db.transaction() as s:
            event_id = await enqueue(
                s, topic=topic, event_type="Test", payload={"n": 1}, key="ord_1"
            )
        relay = OutboxRelay(db, bus)
        assert await relay.publish_pending() == 1
        assert await relay.pending_count() == 0
        records = await read_topic(broker.bootstrap, topic, expect=1)
        assert [dict(r.headers)["event_id"].decode() for r in records] == [event_id]
        assert records[0].key == b"ord_1"
        assert records[0].value == b'{"n": 1}'
    finally:
        await bus.stop()
        await db.dispose()


async def test_rolled_back_transaction_publishes_nothing(database_url, broker):
    db = await migrated(database_url)
    bus = KafkaBus(broker.bootstrap)
    topic = topic_name()
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as s:
                await enqueue(s, topic=topic, event_type="Test", payload={"n": 1})
                raise RuntimeError("business rule failed after the event was written")
        relay = OutboxRelay(db, bus)
        assert await relay.publish_pending() == 0
        async with db.sessionmaker() as s:
            assert await s.scalar(select(func.count()).select_from(OutboxRecord)) == 0
        assert await read_topic(broker.bootstrap, topic, expect=0, timeout=1) == []
    finally:
        await bus.stop()
        await db.dispose()


async def test_relay_killed_between_publish_and_mark_applies_once(database_url, broker, tmp_path):
    producer_db = await migrated(database_url)
    consumer_db = await migrated(f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}")
    await make_state_table(consumer_db)
    bus = KafkaBus(broker.bootstrap)
    topic = topic_name()
    try:
        async with producer_db.transaction() as s:
            event_id = await enqueue(s, topic=topic, event_type="Test", payload={"n": 7})

        # 1. A relay process publishes, then is SIGKILLed before it marks the row sent.
        proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "relay_crash.py"), database_url, broker.bootstrap],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.startswith("PUBLISHED"), line
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        # The row is still pending: the crash lost the mark, not the event.
        relay = OutboxRelay(producer_db, bus)
        await wait_for(lambda: _pending_is(relay, 1))

        # 2. The restarted relay publishes it again: the topic now holds it twice.
        assert await relay.publish_pending() == 1
        records = await read_topic(broker.bootstrap, topic, expect=2)
        assert [dict(r.headers)["event_id"].decode() for r in records] == [event_id] * 2

        # 3. The consumer sees both deliveries and applies the event once.
        handle = idempotent(consumer_db, "test.consumer", record_effect)
        assert await consume(bus, topic, handle, deliveries=2) == 2
        assert await applied_count(consumer_db) == 1
        async with consumer_db.sessionmaker() as s:
            inbox = (await s.scalars(select(InboxRecord.event_id))).all()
        assert inbox == [event_id]
    finally:
        await bus.stop()
        await producer_db.dispose()
        await consumer_db.dispose()


async def _pending_is(relay: OutboxRelay, n: int) -> bool:
    return await relay.pending_count() == n


async def test_same_event_delivered_three_times_changes_state_once(database_url, broker):
    db = await migrated(database_url)
    await make_state_table(db)
    bus = KafkaBus(broker.bootstrap)
    topic = topic_name()
    event_id = str(uuid.uuid4())
    try:
        message = Message(
            topic=topic, value=b"effect", key=b"k", headers=(("event_id", event_id.encode()),)
        )
        for _ in range(3):
            await bus.publish([message])
        handle = idempotent(db, "test.inbox", record_effect)
        assert await consume(bus, topic, handle, deliveries=3) == 3
        assert await applied_count(db) == 1
    finally:
        await bus.stop()
        await db.dispose()


async def test_relay_keeps_events_while_broker_is_unreachable(database_url):
    """No broker at all: the relay fails, counts the attempt, and loses nothing."""
    db = await migrated(database_url)
    bus = KafkaBus("127.0.0.1:1", request_timeout_ms=1000)
    try:
        async with db.transaction() as s:
            await enqueue(s, topic="ehub.test.down", event_type="Test", payload={"n": 1})
        relay = OutboxRelay(db, bus)
        from ehub_core.bus import BusUnavailable

        with pytest.raises(BusUnavailable):
            await relay.publish_pending()
        assert await relay.pending_count() == 1
        async with db.sessionmaker() as s:
            row = (await s.scalars(select(OutboxRecord))).one()
        assert row.attempts == 1 and row.sent_at is None and row.last_error
    finally:
        await bus.stop()
        await db.dispose()


@pytest.mark.parametrize("after_restart", ["idle", "writes"])
async def test_relay_publishes_again_what_a_restarted_broker_lost(
    database_url, tmp_path, after_restart
):
    """The embedded broker forgets its log when it restarts, after acknowledging it. The
    relay's audit finds out, either by asking (nothing written since) or from offsets
    handed out twice (the next write), and publishes the recent rows again; a consumer
    that had not read them gets every event, the inbox applies each once."""
    from tests.federation_harness import Broker

    broker = Broker(tmp_path).start()
    db = await migrated(database_url)
    await make_state_table(db)
    bus = KafkaBus(broker.bootstrap, request_timeout_ms=5000)
    topic = topic_name()
    relay = OutboxRelay(db, bus, audit_interval=0.0, replay_window=600)
    try:
        async with db.transaction() as s:
            ids = [
                await enqueue(s, topic=topic, event_type="Test", payload={"n": n}, key="k")
                for n in range(3)
            ]
        assert await relay.publish_pending() == 3
        assert await relay.replay_lost() == 0  # the broker holds what it acknowledged
        assert await relay.pending_count() == 0

        broker.restart()  # acknowledged, never consumed, and gone
        if after_restart == "writes":
            async with db.transaction() as s:
                ids.append(
                    await enqueue(s, topic=topic, event_type="Test", payload={"n": 3}, key="k")
                )

        async def replayed() -> bool:
            with contextlib.suppress(BusUnavailable):
                await relay.publish_pending()
                return await relay.replay_lost() > 0
            return False

        await wait_for(replayed, 60)
        assert await relay.publish_pending() >= 3
        assert await relay.pending_count() == 0

        handle = idempotent(db, "test.audit", record_effect)
        seen = await consume(bus, topic, handle, deliveries=len(ids))
        assert seen >= len(ids)
        async with db.sessionmaker() as s:
            applied = set((await s.scalars(text("SELECT event_id FROM applied"))).all())
        assert applied == set(ids)
        assert await applied_count(db) == len(ids)
    finally:
        await bus.stop()
        await db.dispose()
        broker.stop()


async def test_a_relay_that_starts_after_the_broker_lost_its_log_publishes_again(
    database_url, tmp_path
):
    """Found by the Postgres crash run: CN's gateway was killed right after its relay
    published, then the broker restarted (losing its log) before the gateway was back.
    The new process's audit knows nothing it had not sent itself, so those events were
    lost to the saga. A relay publishes its last replay window once at start; older rows
    are not touched; the inbox applies each event once."""
    from tests.federation_harness import Broker

    broker = Broker(tmp_path).start()
    db = await migrated(database_url)
    await make_state_table(db)
    bus = KafkaBus(broker.bootstrap, request_timeout_ms=5000)
    topic = topic_name()
    try:
        async with db.transaction() as s:
            old = await enqueue(s, topic=topic, event_type="Test", payload={"n": -1}, key="k")
            ids = [
                await enqueue(s, topic=topic, event_type="Test", payload={"n": n}, key="k")
                for n in range(3)
            ]
        first = OutboxRelay(db, bus, audit_interval=3600, replay_window=600)
        assert await first.publish_pending() == 4
        async with db.transaction() as s:  # sent long before the window
            await s.execute(
                text("UPDATE ehub_outbox SET sent_at = :t WHERE event_id = :e"),
                {"t": datetime.now(UTC) - timedelta(hours=1), "e": old},
            )
        await bus.stop()  # the process is gone
        broker.restart()  # and the broker forgets what it acknowledged

        bus = KafkaBus(broker.bootstrap, request_timeout_ms=5000)
        second = OutboxRelay(db, bus, audit_interval=3600, replay_window=600)
        assert await second.replay_window_once() == 3

        async def published() -> bool:
            with contextlib.suppress(BusUnavailable):
                return await second.publish_pending() >= 0 and await second.pending_count() == 0
            return False

        await wait_for(published, 60)
        handle = idempotent(db, "test.restart", record_effect)
        assert await consume(bus, topic, handle, deliveries=3) >= 3
        async with db.sessionmaker() as s:
            applied = set((await s.scalars(text("SELECT event_id FROM applied"))).all())
        assert applied == set(ids)  # the old row was not sent again
    finally:
        await bus.stop()
        await db.dispose()
        broker.stop()


async def test_a_row_the_broker_refuses_for_good_is_set_aside_and_the_rest_flows(
    database_url, broker
):
    """One event too large for the broker (2 MB; its limit is 1 MB) used to stop the
    relay in id order for good. It is dead-lettered with its reason, and the 1,000
    events behind it go out in the same pass."""
    db = await migrated(database_url)
    bus = KafkaBus(broker.bootstrap)
    topic = topic_name()
    try:
        async with db.transaction() as s:
            bad = await enqueue(s, topic=topic, event_type="Huge", payload=b"x" * 2_000_000)
            good = [
                await enqueue(s, topic=topic, event_type="Test", payload={"n": n}, key="k")
                for n in range(1000)
            ]
        relay = OutboxRelay(db, bus)
        assert await relay.publish_pending() == 1000
        assert await relay.pending_count() == 0
        async with db.sessionmaker() as s:
            row = (await s.scalars(select(OutboxRecord).where(OutboxRecord.event_id == bad))).one()
        assert row.dead_at is not None and row.sent_at is not None
        assert "MessageSizeTooLarge" in (row.last_error or ""), row.last_error
        records = await read_topic(broker.bootstrap, topic, expect=1000)
        assert [dict(r.headers)["event_id"].decode() for r in records] == good
        assert await relay.publish_pending() == 0  # set aside: never tried again
    finally:
        await bus.stop()
        await db.dispose()


async def test_a_batch_subscription_takes_each_fetch_whole_and_commits_after_it(broker):
    """``subscribe(..., batch=)``: what one fetch returned comes in one call (at most
    ``batch_size``), in the partition's order, each message's work inside the trace it
    carries; a batch handler that fails has its messages fetched again (offsets are
    committed only after it returned)."""
    from opentelemetry import trace

    from ehub_core.bus import KafkaSubscription

    bus = KafkaBus(broker.bootstrap)
    topic = topic_name()
    trace_ids = [uuid.uuid4().hex for _ in range(30)]
    sent = [
        Message(
            topic=topic,
            value=str(i).encode(),
            key=b"one-partition",
            headers=(
                ("event_id", str(uuid.uuid4()).encode()),
                ("traceparent", f"00-{trace_ids[i]}-{'1' * 16}-01".encode()),
            ),
        )
        for i in range(30)
    ]
    calls: list[list[str]] = []
    got: list[tuple[str, str]] = []
    failed = False

    async def batch(messages, span) -> None:
        nonlocal failed
        calls.append([m.value.decode() for m in messages])
        if not failed:
            failed = True
            raise RuntimeError("the database went away")  # nothing committed: read again
        for m in messages:
            with span(m):
                current = trace.get_current_span().get_span_context()
                got.append((m.value.decode(), f"{current.trace_id:032x}"))

    async def per_message(message: Message) -> None:
        raise AssertionError("a batch subscription must not call the per-message handler")

    try:
        await bus.publish(sent)
        sub = KafkaSubscription(
            broker.bootstrap,
            [topic],
            f"g-{uuid.uuid4().hex[:6]}",
            per_message,
            batch=batch,
            batch_size=8,
            retry_delay=0.1,
        )
        task = asyncio.create_task(sub.run())

        async def all_in() -> bool:
            return len(got) >= 30

        try:
            await wait_for(all_in, 30)
        finally:
            await sub.stop()
            await task
        assert [v for v, _ in got] == [str(i) for i in range(30)]  # once each, in order
        assert [t for _, t in got] == trace_ids  # each in its own message's trace
        assert all(1 <= len(c) <= 8 for c in calls)
        assert calls[1][0] == calls[0][0] == "0"  # the failed batch came again
    finally:
        await bus.stop()

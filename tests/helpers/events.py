"""Test helpers around real topics: read everything a topic holds, wait for conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer


async def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 15.0) -> list:
    """All records of ``topic`` from the beginning, waiting until ``expect`` arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                records.extend(recs)
        # Give stragglers (e.g. an unexpected duplicate) a moment to show up.
        batch = await consumer.getmany(timeout_ms=300)
        for recs in batch.values():
            records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met within timeout")

"""The bus's checks for a broker that lost its log: what :class:`~ehub_core.bus.KafkaBus`
asks after its writes (:func:`lost_acknowledged`) and what
:class:`~ehub_core.bus.KafkaSubscription` asks while it reads (:func:`rewind_if_replaced`,
:func:`rewind_if_truncated`).

Kafka with replication and ``acks=all`` keeps what it acknowledged; the embedded broker
keeps its log in memory and forgets it when it restarts (and a real cluster can lose a
tail in an unclean leader election). The state each check keeps belongs to the bus or
subscription calling it and is passed in.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError

log = logging.getLogger("ehub.bus")


async def lost_acknowledged(
    *,
    bootstrap: str,
    client_id: str,
    request_timeout_ms: int,
    last_low: dict[tuple[str, int], int],
    suspect: set[tuple[str, int]],
    lost: set[str],
) -> set[str]:
    """Add to ``lost`` the topics whose partitions no longer hold the first record of our
    last write there (``last_low``), and return it.

    That end is the high watermark of a fetch at that record (the embedded broker's
    ListOffsets under-reports, its fetch does not); OFFSET_OUT_OF_RANGE says the same. An
    empty fetch must repeat on the next call before it counts (``suspect``). A broker that
    cannot be reached reports nothing new (the next audit asks again). The marks of lost
    topics are dropped from ``last_low``.
    """
    marks = dict(last_low)
    partitions = [TopicPartition(t, p) for t, p in marks]
    # A fresh consumer each time: a high watermark it reports comes from this fetch.
    auditor = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=f"{client_id}-audit",
        enable_auto_commit=False,
        auto_offset_reset="none",
        max_partition_fetch_bytes=4096,
        request_timeout_ms=request_timeout_ms,
    )
    try:
        await auditor.start()
        auditor.assign(partitions)
        for tp in partitions:
            mark = marks[(tp.topic, tp.partition)]
            auditor.seek(tp, mark)
            try:
                got = await auditor.getmany(tp, timeout_ms=1000, max_records=1)
            except OffsetOutOfRangeError:
                lost.add(tp.topic)
                continue
            if got.get(tp):
                suspect.discard((tp.topic, tp.partition))
                continue  # a record at or after our mark: the log is there
            high = auditor.highwater(tp)
            if high is not None and high <= mark:
                # Twice in a row before it counts: one empty fetch is not proof.
                key = (tp.topic, tp.partition)
                if key in suspect:
                    suspect.discard(key)
                    lost.add(tp.topic)
                else:
                    suspect.add(key)
    except (KafkaError, OSError, TimeoutError) as exc:
        log.debug("broker audit skipped: %r", exc)
        return lost
    finally:
        await auditor.stop()
    for key, mark in marks.items():
        if key[0] in lost:
            log.warning(
                "%s[%d] no longer holds offset %d, acknowledged to us: the broker lost its log",
                key[0],
                key[1],
                mark,
            )
            if last_low.get(key) == mark:
                del last_low[key]
    return lost


async def rewind_if_replaced(
    consumer: AIOKafkaConsumer,
    *,
    bootstrap: str,
    client_id: str,
    group_id: str,
    last: dict[Any, tuple[int, str | None]],
) -> set[tuple[str, int]]:
    """A broker that lost its log (the embedded one, restarted) numbers new records
    from 0 again; once they pass our position, :func:`rewind_if_truncated` sees
    nothing wrong and everything before our position in the new log would be
    skipped. So every few seconds, look again at the last record handled on each
    partition (``last``: offset and event id): another event there, or none (the log
    ends before it), means the log was replaced, and the partition is read again from
    the beginning (the inbox skips what was handled). Returns the partitions rewound."""
    assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
    marks = {k: v for k, v in last.items() if k in assigned}
    rewound: set[tuple[str, int]] = set()
    if not marks:
        return rewound
    # A fresh consumer each time: a high watermark it reports comes from this fetch.
    auditor = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=f"{client_id}-audit",
        enable_auto_commit=False,
        auto_offset_reset="none",
        max_partition_fetch_bytes=64 * 1024,
    )
    try:
        await auditor.start()
        auditor.assign([assigned[k] for k in marks])
        for key, (offset, event_id) in marks.items():
            tp = assigned[key]
            auditor.seek(tp, offset)
            try:
                got = await auditor.getmany(tp, timeout_ms=1000, max_records=1)
            except OffsetOutOfRangeError:
                got, gone = {}, True
            else:
                high = auditor.highwater(tp)
                gone = not got.get(tp) and high is not None and high <= offset
            records = got.get(tp) or []
            there = next((r for r in records if r.offset == offset), None)
            other = there is not None and dict(there.headers or ()).get(
                "event_id", b""
            ).decode() != (event_id or "")
            if gone or other:
                log.warning(
                    "%s: %s[%d] no longer holds the record %d we handled (broker "
                    "lost its log?); reading it again from the beginning",
                    group_id,
                    tp.topic,
                    tp.partition,
                    offset,
                )
                del last[key]
                await consumer.seek_to_beginning(tp)
                rewound.add(key)
    except (KafkaError, OSError, TimeoutError) as exc:
        log.debug("%s: replaced-log check skipped: %r", group_id, exc)
    finally:
        await auditor.stop()
    return rewound


async def rewind_if_truncated(
    consumer: AIOKafkaConsumer, *, group_id: str, rewound: dict[Any, int]
) -> None:
    """A broker that lost its log (the embedded one after a restart) starts the
    partition again at offset 0 while we sit further on; it never answers
    OFFSET_OUT_OF_RANGE, so without this check new messages would be skipped
    forever. Rewinding re-delivers at most what the inbox then skips.

    The embedded broker (Tansu 0.6.0) also under-reports a partition's end after a
    multi-record produce (the last batch's base offset + 1), which looks the same;
    the last fetch's high watermark is right, so it decides, and a partition is
    rewound at most once per end offset it reports (``rewound``)."""
    partitions = list(consumer.assignment())
    if not partitions:
        return
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        position = await consumer.position(tp)
        end = ends.get(tp, position)
        # The high watermark of the last fetch is right where end_offsets is not.
        high = consumer.highwater(tp)
        if high is not None and position <= high:
            continue
        if position > end and rewound.get(tp) != end:
            log.warning(
                "%s: log of %s ends at %d, before our position %d (broker lost data?); "
                "rewinding to the beginning",
                group_id,
                tp,
                end,
                position,
            )
            rewound[tp] = end
            await consumer.seek_to_beginning(tp)

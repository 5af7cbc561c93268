"""The saga runner: turns what reaches the gateway into order transitions.

Several sources, one consumer group, one inbox (``orders-saga``), one transaction per
fetch from the broker (:meth:`Saga.handle_batch`: inbox rows, order updates, timeline
steps, the actions' outbox rows):

- replies of this hub's services on ``ehub.<hub>.saga-replies`` (JSON);
- peers' events, republished by federation ingest on ``ehub.<hub>.orders|customs|
  shipments`` (signed envelopes, verified at ingest);
- this hub's carrier tracking on ``ehub.<hub>.tracking`` (JSON from logistics), which
  the seller's hub also relays to the buyer's hub;
- this hub's customs officers' decisions on held declarations on ``ehub.<hub>.clearance``
  (JSON ``ClearanceDecided`` from customs; the peers' signed ones come on ``customs``).

A timer re-sends commands whose reply is late (their handlers are idempotent) and rejects
orders the seller left unanswered past their deadline.

The runner is the consumer wiring (topics, one transaction per message, dispatch by
source); the rest lives beside it: ``transition.py`` (applying an input: the machine's
transition, timeline step, actions), ``inputs.py`` (reading each source into inputs),
``timers.py`` (re-sends and deadlines), ``present.py`` (payloads as order data and
partner webhooks).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.protobuf.json_format import ParseError
from google.protobuf.message import DecodeError
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import commands, streams
from ehub_core.bus import Message, SpanFactory
from ehub_core.inbox import consume_many, consume_once
from ehub_core.signing import SignatureError
from ehub_gateway.saga.inputs import NOT_MOVING, SagaInputs
from ehub_gateway.saga.present import decision_dict, is_terminal, shipment_webhooks
from ehub_gateway.saga.timers import SagaTimers
from ehub_gateway.saga.transition import SagaBase

__all__ = [
    "INBOX",
    "NOT_MOVING",
    "PEER_STREAMS",
    "PROTOBUF",
    "Saga",
    "SagaBase",
    "decision_dict",
    "is_terminal",
    "shipment_webhooks",
]

log = logging.getLogger("ehub.gateway.saga")

INBOX = "orders-saga"
PEER_STREAMS = ("orders", "customs", "shipments")  # peers' signed events (ingest)
LOCAL_STREAMS = (streams.TRACKING, streams.CLEARANCE)  # this hub's logistics and customs
PROTOBUF = "application/x-protobuf"
# What a message that cannot be read raises: it is skipped (logged), not retried forever.
UNREADABLE = (ValueError, KeyError, TypeError, DecodeError, ParseError, SignatureError)


class Saga(SagaInputs, SagaTimers):
    """The saga: consumes its topics (:meth:`handle`), applies inputs (``transition.py``),
    runs its timers (``timers.py``)."""

    @property
    def topics(self) -> list[str]:
        own = [commands.topic(self.hub, s) for s in (*PEER_STREAMS, *LOCAL_STREAMS)]
        return [*own, commands.topic(self.hub, commands.SAGA_REPLIES)]

    # -- one message ------------------------------------------------------------------

    async def handle(self, message: Message) -> None:
        """One message in its own transaction (inbox row, order update, step, actions)."""
        event_id = message.header("event_id")
        if not event_id:
            return
        try:
            async with self.db.transaction() as session:
                if not await consume_once(session, event_id=event_id, consumer=INBOX):
                    return
                await self._dispatch(session, message, event_id)
        except UNREADABLE as exc:
            # A message we cannot read is skipped (logged), not retried forever.
            log.warning("saga skipped %s on %s: %r", event_id, message.topic, exc)
            return
        self.notify()

    async def handle_batch(self, messages: Sequence[Message], span: SpanFactory) -> None:
        """What one fetch from the broker returned, in one transaction (group commit).

        One inbox statement for all event ids, one locking read of the orders the
        messages are keyed by, each message applied in turn in its own trace span, one
        flush and commit. A message that cannot be read undoes the whole batch, which is
        then handled a message at a transaction (:meth:`handle`), skipping that one. A
        database error propagates: the consumer reads the batch again and the inbox
        makes each message take effect once.
        """
        todo = [(m, e) for m in messages if (e := m.header("event_id"))]
        if not todo:
            return
        try:
            async with self.db.transaction() as session:
                fresh = await consume_many(
                    session, event_ids=list(dict.fromkeys(e for _, e in todo)), consumer=INBOX
                )
                await self._lock_orders(
                    session, {m.key.decode() for m, e in todo if e in fresh and m.key}
                )
                for message, event_id in todo:
                    if event_id not in fresh:
                        continue
                    fresh.discard(event_id)  # a copy later in the same batch is a duplicate
                    with span(message):
                        await self._dispatch(session, message, event_id)
        except UNREADABLE as exc:
            log.info("saga batch of %d undone (%r); one message at a time", len(todo), exc)
            for message, _ in todo:
                with span(message):
                    await self.handle(message)
            return
        self.notify()

    async def _dispatch(self, session: AsyncSession, message: Message, event_id: str) -> None:
        if message.topic.endswith("." + commands.SAGA_REPLIES):
            await self._reply(session, message)
        elif (message.header("content-type") or "").startswith(PROTOBUF):
            await self._peer_event(session, message, event_id)
        # JSON on shipments/customs: written there before tracking and clearance
        # had topics of their own (each topic now has one encoding).
        elif message.topic.endswith((".tracking", ".shipments")):
            await self._local_tracking(session, message, event_id)
        elif message.topic.endswith((".clearance", ".customs")):
            await self._officer_decision(session, message, event_id)

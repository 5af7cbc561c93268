"""Hub-local commands of the order saga and their replies (docs/orders.md).

The gateway's saga asks a service of its own hub to do one step (reserve stock, file a
declaration, book a shipment) by writing a *command* to the outbox, on the service's
command topic. The service's ``consumers.py`` applies it and writes one *reply* to the
outbox, on the hub's ``saga-replies`` topic. Both are JSON objects; the Kafka key is the
order id, so one order's commands and replies stay in order.

Delivery is at-least-once, and a command may also be re-sent on purpose: the saga re-sends
a command whose reply has not arrived in time (the embedded broker forgets what it held
when it restarts). So a handler is idempotent *by its domain key* (the order id and the
step), never by the command's event id alone: a repeated command changes nothing and
answers the same reply again, under the same event id (:func:`reply_id`), which the
saga's inbox then skips.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core.bus import BatchHandler, Handler, Message, SpanFactory
from ehub_core.db import Database
from ehub_core.outbox import enqueue, enqueue_again
from ehub_core.streams import (
    CATALOG_COMMANDS,
    CUSTOMS_COMMANDS,
    LOGISTICS_COMMANDS,
    SAGA_REPLIES,
    hub_topic,
)

log = logging.getLogger("ehub.commands")

__all__ = [
    "CATALOG_COMMANDS",
    "COMMAND_FAILED",
    "CUSTOMS_COMMANDS",
    "LOGISTICS_COMMANDS",
    "SAGA_REPLIES",
    "CommandConsumer",
    "command_consumer",
    "command_id",
    "decode",
    "reply_id",
    "send_command",
    "send_reply",
    "topic",
]

COMMAND_FAILED = "CommandFailed"
_NAMESPACE = uuid.UUID("6f1c2a52-3d8e-4c55-9a0e-5e1b0c9d7a11")

Reply = tuple[str, dict[str, Any]]
CommandHandler = Callable[[AsyncSession, dict[str, Any]], Awaitable[Reply]]


topic = hub_topic  # the stream names and topics live in ehub_core.streams


def command_id(order_id: str, step: str, attempt: int = 0) -> str:
    """The event id of a saga step's command: the same for every re-send of one attempt."""
    return str(uuid.uuid5(_NAMESPACE, f"cmd:{order_id}:{step}:{attempt}"))


def reply_id(cmd_id: str, reply_type: str) -> str:
    """The event id of a reply: the same however often the command is applied."""
    return str(uuid.uuid5(_NAMESPACE, f"reply:{cmd_id}:{reply_type}"))


def decode(message: Message) -> dict[str, Any]:
    body = json.loads(message.value)
    if not isinstance(body, dict):
        raise ValueError("a command or reply is a JSON object")
    return body


async def send_command(
    session: AsyncSession,
    *,
    hub_id: str,
    stream: str,
    command: str,
    order_id: str,
    step: str,
    body: Mapping[str, Any],
    attempt: int = 0,
) -> str:
    """Queue ``command`` for a service of this hub in the caller's transaction."""
    cmd_id = command_id(order_id, step, attempt)
    payload = {"order_id": order_id, "step": step, **body}
    await enqueue(
        session,
        topic=topic(hub_id, stream),
        event_type=command,
        payload=payload,
        key=order_id,
        event_id=cmd_id,
        headers={"subject": order_id},
    )
    return cmd_id


async def send_reply(
    session: AsyncSession,
    *,
    hub_id: str,
    cmd_id: str,
    order_id: str,
    step: str,
    reply_type: str,
    body: Mapping[str, Any],
) -> str:
    payload = {"order_id": order_id, "step": step, "command_id": cmd_id, **body}
    event_id = reply_id(cmd_id, reply_type)
    # A command delivered twice answers once, under one event id: the reply of the first
    # delivery is in the outbox already. The saga re-sends a command only when its reply
    # has not arrived (the broker may have lost it), so the stored reply goes out again:
    # marked pending, the relay publishes it once more and the saga's inbox skips a copy.
    if await enqueue_again(session, event_id):
        return event_id
    return await enqueue(
        session,
        topic=topic(hub_id, SAGA_REPLIES),
        event_type=reply_type,
        payload=payload,
        key=order_id,
        event_id=event_id,
        headers={"subject": order_id},
    )


def command_consumer(
    db: Database,
    hub_id: str,
    handlers: Mapping[str, CommandHandler],
    *,
    attempts: int = 3,
    retry_delay: float = 0.5,
    notify: Callable[[], None] | None = None,
) -> CommandConsumer:
    """A bus handler applying each command in one transaction with its reply.

    A handler returns ``(reply_type, body)``; refusals are ordinary replies (e.g.
    ``StockRefused``). An unexpected error is retried ``attempts`` times; then the
    saga gets ``CommandFailed`` with the error, so it can compensate instead of
    waiting forever. ``notify`` (the relay's) is called after each commit so the reply
    goes out at once instead of at the relay's next poll.

    The returned handler's ``batch`` (for ``subscribe(..., batch=)``) applies what one
    fetch returned in one transaction, every command with its reply; if any command
    fails, the batch is undone and its commands are applied one at a time as above. Only
    for handlers whose every effect is in the database: an undone batch runs again.
    """

    def parse(message: Message) -> tuple[CommandHandler, dict[str, Any], str, str, str] | None:
        command = message.header("event_type") or ""
        cmd_id = message.header("event_id") or ""
        handler = handlers.get(command)
        if handler is None or not cmd_id:
            log.warning("ignoring %r on %s (no handler or no event id)", command, message.topic)
            return None
        try:
            body = decode(message)
            order_id = str(body["order_id"])
            step = str(body.get("step", command))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring malformed %s %s: %s", command, cmd_id, exc)
            return None
        return handler, body, cmd_id, order_id, step

    async def apply(
        session: AsyncSession, parsed: tuple[CommandHandler, dict[str, Any], str, str, str]
    ) -> None:
        """Run the command's handler and write its reply, in the caller's transaction."""
        handler, body, cmd_id, order_id, step = parsed
        reply_type, reply_body = await handler(session, body)
        await send_reply(
            session,
            hub_id=hub_id,
            cmd_id=cmd_id,
            order_id=order_id,
            step=step,
            reply_type=reply_type,
            body=reply_body,
        )

    async def handle(message: Message) -> None:
        parsed = parse(message)
        if parsed is None:
            return
        _, _, cmd_id, order_id, step = parsed
        command = message.header("event_type") or ""
        error: Exception | None = None
        for attempt in range(attempts):
            try:
                async with db.transaction() as session:
                    await apply(session, parsed)
                if notify is not None:
                    notify()
                return
            except Exception as exc:
                error = exc
                log.warning(
                    "%s %s for order %s failed (attempt %d): %r",
                    command,
                    cmd_id,
                    order_id,
                    attempt + 1,
                    exc,
                )
                await asyncio.sleep(retry_delay * (attempt + 1))
        log.error("%s %s for order %s failed for good: %r", command, cmd_id, order_id, error)
        async with db.transaction() as session:
            await send_reply(
                session,
                hub_id=hub_id,
                cmd_id=cmd_id,
                order_id=order_id,
                step=step,
                reply_type=COMMAND_FAILED,
                body={"command": command, "reason": type(error).__name__},
            )
        if notify is not None:
            notify()

    async def batch(messages: Sequence[Message], span: SpanFactory) -> None:
        try:
            async with db.transaction() as session:
                for message in messages:
                    with span(message):
                        parsed = parse(message)
                        if parsed is not None:
                            await apply(session, parsed)
        except Exception as exc:
            log.info("batch of %d commands undone (%r); one at a time", len(messages), exc)
            for message in messages:
                with span(message):
                    await handle(message)
            return
        if notify is not None:
            notify()

    return CommandConsumer(handle, batch)


@dataclass(frozen=True)
class CommandConsumer:
    """What :func:`command_consumer` returns: call it per message, or give ``batch`` to
    ``subscribe(..., batch=)``."""

    handle: Handler
    batch: BatchHandler

    async def __call__(self, message: Message) -> None:
        await self.handle(message)

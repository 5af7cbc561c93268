"""The customs side of the order saga: command handlers (docs/orders.md, "Customs").

Each handler runs in the transaction ``ehub_core.commands.command_consumer`` opens and
returns ``(reply_type, reply_body)``; the reply is written to the outbox in the same
transaction. The domain logic is in ``declarations.service`` and ``allowances.service``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_core import commands, streams
from ehub_core.app import ServiceContext
from ehub_core.commands import CommandHandler, Reply
from ehub_customs.allowances.service import confirm_allowance, release_allowance
from ehub_customs.declarations.service import (
    Decision,
    file_export,
    file_import,
    file_refund_claim,
)
from ehub_customs.screening.service import Screener, bundled_screening
from ehub_customs.tariffs.rulebook import RuleBook

FILE_IMPORT = "FileImportDeclaration"
FILE_EXPORT = "FileExportDeclaration"
CONFIRM_ALLOWANCE = "ConfirmAllowance"
RELEASE_ALLOWANCE = "ReleaseAllowance"
FILE_REFUND_CLAIM = "FileRefundClaim"

IMPORT_DECIDED = "ImportDecided"
EXPORT_DECIDED = "ExportDecided"
ALLOWANCE_CONFIRMED = "AllowanceConfirmed"
ALLOWANCE_RELEASED = "AllowanceReleased"
REFUND_CLAIMED = "RefundClaimed"


def _decided(d: Decision) -> dict[str, Any]:
    return {
        "declaration_id": d.declaration_id,
        "decision": d.decision,
        "reason_code": d.reason_code,
        "reason": d.reason,
    }


async def handle_confirm_allowance(session: AsyncSession, body: dict[str, Any]) -> Reply:
    confirmed = await confirm_allowance(session, order_id=str(body["order_id"]))
    return ALLOWANCE_CONFIRMED, {"confirmed": confirmed}


async def handle_release_allowance(session: AsyncSession, body: dict[str, Any]) -> Reply:
    released = await release_allowance(session, order_id=str(body["order_id"]))
    return ALLOWANCE_RELEASED, {"released": released}


async def handle_refund_claim(session: AsyncSession, body: dict[str, Any]) -> Reply:
    """A returned order: record the refund claim and give the allowance back."""
    d, amount = await file_refund_claim(session, body)
    released = False
    if d.decision != "rejected":
        released = await release_allowance(session, order_id=str(body["order_id"]))
    return REFUND_CLAIMED, {
        **_decided(d),
        "amount": str(amount),
        "currency": body.get("currency"),
        "allowance_released": released,
    }


def make_handlers(book: RuleBook, screener: Screener | None = None) -> dict[str, CommandHandler]:
    """The handlers by command name; declarations are screened (``screener``, by default
    the bundled screening data with restricted goods noted) and import declarations read
    the rule book's quotas."""
    screener = screener or Screener(bundled_screening(), book)

    async def handle_file_import(session: AsyncSession, body: dict[str, Any]) -> Reply:
        d = await file_import(session, book, body, screener=screener)
        return IMPORT_DECIDED, {**_decided(d), "allowance_reserved": d.allowance_reserved}

    async def handle_file_export(session: AsyncSession, body: dict[str, Any]) -> Reply:
        return EXPORT_DECIDED, _decided(await file_export(session, body, screener=screener))

    return {
        FILE_IMPORT: handle_file_import,
        FILE_EXPORT: handle_file_export,
        CONFIRM_ALLOWANCE: handle_confirm_allowance,
        RELEASE_ALLOWANCE: handle_release_allowance,
        FILE_REFUND_CLAIM: handle_refund_claim,
    }


async def start_consumers(app: FastAPI, ctx: ServiceContext) -> None:
    """Consume this hub's customs commands (after the rule book is loaded)."""
    hub = ctx.settings.hub_id
    book: RuleBook = app.state.rulebook
    consumer = commands.command_consumer(
        ctx.db,
        hub,
        make_handlers(book, app.state.screener),
        notify=ctx.relay.notify if ctx.relay is not None else None,
    )
    ctx.subscribe(
        [streams.hub_topic(hub, streams.CUSTOMS_COMMANDS)],
        f"ehub-{hub.lower()}-customs-commands",
        consumer,
        batch=consumer.batch,  # every effect is in customs' database
    )

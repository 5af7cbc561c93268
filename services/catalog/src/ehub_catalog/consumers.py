"""The catalog's side of the order saga (docs/orders.md, "Hub-local commands and replies").

The gateway's saga sends ``ReserveStock``, ``ReleaseStock`` and ``RestockReturn`` on
``ehub.<hub>.catalog-commands``; :func:`ehub_core.commands.command_consumer` runs each
handler here in one transaction with its reply on ``ehub.<hub>.saga-replies``.

- Every handler is idempotent by order id: one reservation per order
  (``stock_reservations``), and a repeated command changes nothing and answers the
  same reply.
- ``ReserveStock`` is all or nothing. Stock is taken with a conditional
  ``UPDATE ... SET stock = stock - :q WHERE id = :id AND stock >= :q`` per product, so
  two orders racing for the last unit cannot both get it (on Postgres the second
  ``UPDATE`` waits for the first and re-checks the row). The updates run in a savepoint:
  a shortfall rolls back every decrement, yet the transaction lives on to commit the
  ``StockRefused`` reply.
- A malformed command is answered ``StockRefused`` with ``reason_code``
  ``invalid_request``; handlers raise only on database errors (which the consumer
  retries and finally answers with ``CommandFailed``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import FastAPI
from google.protobuf.message import DecodeError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ehub_catalog.catalog.markets import PEER_LISTINGS, apply_peer_listing
from ehub_catalog.catalog.models import RELEASED, RESERVED, Product, Seller, StockReservation
from ehub_core import commands, streams
from ehub_core.app import ServiceContext
from ehub_core.bus import Message
from ehub_core.commands import CommandHandler, Reply
from ehub_core.inbox import idempotent

log = logging.getLogger("ehub.catalog.consumers")

RESERVE_STOCK = "ReserveStock"
RELEASE_STOCK = "ReleaseStock"
RESTOCK_RETURN = "RestockReturn"

STOCK_RESERVED = "StockReserved"
STOCK_REFUSED = "StockRefused"
STOCK_RELEASED = "StockReleased"
STOCK_RESTOCKED = "StockRestocked"

UNKNOWN_PRODUCT = "unknown_product"
WRONG_SELLER = "wrong_seller"
OUT_OF_STOCK = "out_of_stock"
RELEASED_REASON = "released"
INVALID_REQUEST = "invalid_request"

MAX_QUANTITY = 1_000_000
MAX_LINES = 100

Quantity = Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
EntityId = Annotated[StrictStr, Field(min_length=1, max_length=40)]
LineId = Annotated[StrictStr, Field(min_length=1, max_length=64)] | StrictInt


class _Command(BaseModel):
    """Every command body: ``order_id`` (and ``step``, which the consumer handles)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    order_id: Annotated[StrictStr, Field(min_length=1, max_length=64)]


class _ReserveLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    line_id: LineId
    product_id: EntityId
    quantity: Quantity


class _ReserveStock(_Command):
    seller_id: EntityId
    lines: list[_ReserveLine] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[_ReserveLine]) -> list[_ReserveLine]:
        if len({line.line_id for line in lines}) != len(lines):
            raise ValueError("line_id repeats")
        return lines


class _ReturnLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    product_id: EntityId
    quantity: Quantity


class _RestockReturn(_Command):
    lines: list[_ReturnLine] = Field(min_length=1, max_length=MAX_LINES)


class _Shortfall(Exception):
    """Raised inside the savepoint to roll back every decrement of a reservation."""

    def __init__(self, product_id: str, quantity: int) -> None:
        super().__init__(product_id)
        self.product_id = product_id
        self.quantity = quantity


# --- replies ---------------------------------------------------------------------------


def _refused(reason_code: str, reason: str, product_id: str | None = None) -> Reply:
    return STOCK_REFUSED, {"reason_code": reason_code, "reason": reason, "product_id": product_id}


def _invalid(exc: ValidationError) -> Reply:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )
    return _refused(INVALID_REQUEST, f"Invalid command: {problems}"[:500])


def _out_of_stock(product_id: str, quantity: int) -> Reply:
    return _refused(
        OUT_OF_STOCK, f"Not enough stock of product {product_id!r} for {quantity}", product_id
    )


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def _reserved_line(line: _ReserveLine, product: Product) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "product_id": product.id,
        "quantity": line.quantity,
        "title": product.title,
        "hs_code": product.hs_code,
        "unit_price": _decimal(product.price),
        "currency": product.currency,
        "weight_kg": _decimal(product.weight_kg),
        "origin_country": product.origin_country,
    }


async def _stock_reserved(
    session: AsyncSession, seller_id: str, lines: list[dict[str, Any]]
) -> Reply:
    """``StockReserved``: the reserved lines with the seller's dispatch address and policy."""
    seller = await session.get(Seller, seller_id)
    return STOCK_RESERVED, {
        "seller_id": seller_id,
        "ship_from": seller.ship_from if seller is not None else None,
        "auto_accept": seller.auto_accept if seller is not None else False,
        "owner": seller.owner if seller is not None else None,  # the seller's partner
        "lines": lines,
    }


async def _answer_existing(session: AsyncSession, reservation: StockReservation) -> Reply:
    """The reply to a repeated ``ReserveStock``: the same reply, or a refusal once the
    reservation was released (a re-sent command must not reserve a cancelled order)."""
    if reservation.status == RELEASED:
        return _refused(
            RELEASED_REASON, f"The reservation of order {reservation.order_id!r} was released"
        )
    return await _stock_reserved(session, reservation.seller_id, reservation.lines)


# --- database steps --------------------------------------------------------------------


async def _reservation(
    session: AsyncSession, order_id: str, *, for_update: bool = False
) -> StockReservation | None:
    stmt = select(StockReservation).where(StockReservation.order_id == order_id)
    if for_update:  # Postgres: serialize release/restock of one order (SQLite: no-op)
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt.execution_options(populate_existing=True))).one_or_none()


def _totals(lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Quantity per product (a product may appear on several lines)."""
    totals: dict[str, int] = {}
    for line in lines:
        totals[line["product_id"]] = totals.get(line["product_id"], 0) + int(line["quantity"])
    return totals


async def _take(session: AsyncSession, product_id: str, quantity: int) -> bool:
    """Decrement stock unless it would go negative; whether it was decremented."""
    result = await session.execute(
        update(Product)
        .where(Product.id == product_id, Product.stock >= quantity)
        .values(stock=Product.stock - quantity)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _put_back(session: AsyncSession, totals: Mapping[str, int]) -> None:
    # In product id order, like _take, so two transactions never wait on each other
    # in opposite orders (a deadlock on Postgres).
    for product_id in sorted(totals):
        await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + totals[product_id])
            .execution_options(synchronize_session=False)
        )


# --- handlers --------------------------------------------------------------------------


async def reserve_stock(session: AsyncSession, body: dict[str, Any]) -> Reply:
    """Reserve every line of an order, or nothing."""
    try:
        cmd = _ReserveStock.model_validate(body)
    except ValidationError as exc:
        return _invalid(exc)
    existing = await _reservation(session, cmd.order_id)
    if existing is not None:
        return await _answer_existing(session, existing)

    wanted = {line.product_id for line in cmd.lines}
    found = await session.scalars(select(Product).where(Product.id.in_(wanted)))
    products = {p.id: p for p in found}
    for line in cmd.lines:
        product = products.get(line.product_id)
        if product is None:
            return _refused(UNKNOWN_PRODUCT, f"No product {line.product_id!r}", line.product_id)
        if product.seller_id != cmd.seller_id:
            return _refused(
                WRONG_SELLER,
                f"Product {line.product_id!r} is not sold by seller {cmd.seller_id!r}",
                line.product_id,
            )
    totals = _totals(line.model_dump() for line in cmd.lines)
    for product_id, quantity in totals.items():  # first short product in line order
        if products[product_id].stock < quantity:
            return _out_of_stock(product_id, quantity)

    lines = [_reserved_line(line, products[line.product_id]) for line in cmd.lines]
    try:
        async with session.begin_nested():
            await session.execute(
                insert(StockReservation).values(
                    order_id=cmd.order_id,
                    seller_id=cmd.seller_id,
                    lines=lines,
                    status=RESERVED,
                    created_at=datetime.now(UTC),
                )
            )
            # The check above read committed stock; a concurrent order may have taken
            # it since (Postgres), which the conditional UPDATE notices.
            for product_id in sorted(totals):
                if not await _take(session, product_id, totals[product_id]):
                    raise _Shortfall(product_id, totals[product_id])
    except _Shortfall as short:
        return _out_of_stock(short.product_id, short.quantity)
    except IntegrityError:
        # Another delivery of this command reserved the order first (it committed
        # while this one waited on the primary key).
        existing = await _reservation(session, cmd.order_id)
        if existing is None:
            raise
        return await _answer_existing(session, existing)
    return await _stock_reserved(session, cmd.seller_id, lines)


async def release_stock(session: AsyncSession, body: dict[str, Any]) -> Reply:
    """Give an order's reserved stock back (compensation); once."""
    try:
        cmd = _Command.model_validate(body)
    except ValidationError as exc:
        return _invalid(exc)
    reservation = await _reservation(session, cmd.order_id, for_update=True)
    # Goods already shipped and returned were restocked; releasing would count them twice.
    if reservation is None or reservation.status != RESERVED or reservation.restocked_at:
        return STOCK_RELEASED, {"released": False}
    await _put_back(session, _totals(reservation.lines))
    reservation.status = RELEASED
    reservation.released_at = datetime.now(UTC)
    return STOCK_RELEASED, {"released": True}


async def restock_return(session: AsyncSession, body: dict[str, Any]) -> Reply:
    """Put returned goods of an order back in stock; once per order."""
    try:
        cmd = _RestockReturn.model_validate(body)
    except ValidationError as exc:
        return _invalid(exc)
    reservation = await _reservation(session, cmd.order_id, for_update=True)
    if reservation is None or reservation.status != RESERVED or reservation.restocked_at:
        return STOCK_RESTOCKED, {"restocked": False}
    reserved = _totals(reservation.lines)
    returned = _totals(line.model_dump() for line in cmd.lines)
    for product_id, quantity in returned.items():
        if quantity > reserved.get(product_id, 0):
            return _refused(
                INVALID_REQUEST,
                f"Order {cmd.order_id!r} reserved {reserved.get(product_id, 0)} of product "
                f"{product_id!r}; {quantity} cannot come back",
                product_id,
            )
    await _put_back(session, returned)
    reservation.restocked_at = datetime.now(UTC)
    return STOCK_RESTOCKED, {"restocked": True}


HANDLERS: dict[str, CommandHandler] = {
    RESERVE_STOCK: reserve_stock,
    RELEASE_STOCK: release_stock,
    RESTOCK_RETURN: restock_return,
}


async def start_consumers(app: FastAPI, ctx: ServiceContext) -> None:
    """Apply the saga's catalog commands while the service runs."""
    hub = ctx.settings.hub_id
    ctx.subscribe(
        [streams.hub_topic(hub, streams.LISTINGS)],
        f"ehub-{hub.lower()}-catalog-listings",
        idempotent(ctx.db, PEER_LISTINGS, _peer_listing),
    )
    consumer = commands.command_consumer(
        ctx.db, hub, HANDLERS, notify=ctx.relay.notify if ctx.relay is not None else None
    )
    ctx.subscribe(
        [streams.hub_topic(hub, streams.CATALOG_COMMANDS)],
        f"ehub-{hub.lower()}-catalog-commands",
        consumer,
        batch=consumer.batch,  # every effect is in the catalog's database
    )


async def _peer_listing(session: AsyncSession, message: Message) -> None:
    """A peer's listing (docs/catalog.md "Listings that travel"); one that cannot be
    read is logged and skipped, never retried for ever."""
    try:
        done = await apply_peer_listing(session, message)
    except (DecodeError, ValueError) as exc:
        log.warning("peer listing on %s unreadable, skipped: %r", message.topic, exc)
        return
    log.debug("peer listing %s: %s", message.key, done)

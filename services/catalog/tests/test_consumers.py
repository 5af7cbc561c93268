"""The catalog's saga commands (docs/orders.md) against real SQLite and Postgres, and once
end to end through the embedded broker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update

from ehub_catalog.app import create_app
from ehub_catalog.catalog.models import (
    RELEASED,
    RESERVED,
    Product,
    Seller,
    StockReservation,
)
from ehub_catalog.consumers import HANDLERS, release_stock, reserve_stock, restock_return
from ehub_catalog.settings import CatalogSettings
from ehub_core import commands
from ehub_core.bus import KafkaBus, Message
from ehub_core.commands import CommandHandler, Reply
from ehub_core.db import Database
from ehub_core.migrations import upgrade
from ehub_core.models import OutboxRecord
from ehub_core.outbox import OutboxRelay
from ehub_core.testing import serve_in_process

SHIP_FROM = {
    "name": "Shipping desk",
    "company": "Maritime Lobster Co",
    "street": ["12 Wharf Rd"],
    "city": "Halifax",
    "postal_code": "B3H 1A1",
    "state": "NS",
    "country": "CA",
    "phone": "+1 902 555 0100",
    "email": "ship@lobster.example",
}


@pytest.fixture
async def db(database_url) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database, "ehub_catalog.migrations")
    try:
        yield database
    finally:
        await database.dispose()


async def add_seller(db: Database, seller_id: str = "sel_1", **over: Any) -> str:
    async with db.transaction() as s:
        s.add(
            Seller(
                id=seller_id,
                name="Maritime Lobster Co",
                country="CA",
                sme_verified=True,
                ship_from=over.get("ship_from", SHIP_FROM),
                auto_accept=over.get("auto_accept", True),
                created_at=datetime.now(UTC),
            )
        )
    return seller_id


async def add_product(db: Database, product_id: str, seller_id: str = "sel_1", stock: int = 5):
    async with db.transaction() as s:
        s.add(
            Product(
                id=product_id,
                seller_id=seller_id,
                title=f"Lobster {product_id}",
                description="",
                hs_code="030632",
                origin_country="CA",
                price=Decimal("45.00"),
                currency="CAD",
                weight_kg=Decimal("1.2"),
                stock=stock,
                created_at=datetime.now(UTC),
            )
        )


@pytest.fixture
async def shop(db: Database) -> Database:
    """Seller sel_1 with prd_a (stock 5) and prd_b (stock 2); seller sel_2 with prd_c."""
    await add_seller(db, "sel_1")
    await add_seller(db, "sel_2", ship_from=None, auto_accept=False)
    await add_product(db, "prd_a", stock=5)
    await add_product(db, "prd_b", stock=2)
    await add_product(db, "prd_c", seller_id="sel_2", stock=9)
    return db


async def run(db: Database, handler: CommandHandler, body: dict[str, Any]) -> Reply:
    async with db.transaction() as s:
        return await handler(s, body)


async def stock(db: Database) -> dict[str, int]:
    async with db.sessionmaker() as s:
        return {p.id: p.stock for p in await s.scalars(select(Product))}


async def reservation(db: Database, order_id: str) -> StockReservation | None:
    async with db.sessionmaker() as s:
        return await s.get(StockReservation, order_id)


def reserve(order_id: str, *lines: tuple[str, int], seller_id: str = "sel_1") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "step": "reserve_stock",
        "seller_id": seller_id,
        "lines": [
            {"line_id": f"l{i}", "product_id": pid, "quantity": q}
            for i, (pid, q) in enumerate(lines, 1)
        ],
    }


def order_step(order_id: str, step: str, **body: Any) -> dict[str, Any]:
    return {"order_id": order_id, "step": step, **body}


LINE_A = {
    "line_id": "l1",
    "product_id": "prd_a",
    "quantity": 2,
    "title": "Lobster prd_a",
    "hs_code": "030632",
    "unit_price": "45.00",
    "currency": "CAD",
    "weight_kg": "1.200",
    "origin_country": "CA",
}


async def test_reserve_decrements_stock_and_answers_the_lines(shop):
    reply = await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 2), ("prd_b", 1)))
    assert reply == (
        "StockReserved",
        {
            "seller_id": "sel_1",
            "ship_from": SHIP_FROM,
            "auto_accept": True,
            "owner": None,  # created in development mode: no partner owns it
            "lines": [
                LINE_A,
                LINE_A
                | {"line_id": "l2", "product_id": "prd_b", "quantity": 1}
                | {"title": "Lobster prd_b"},
            ],
        },
    )
    assert await stock(shop) == {"prd_a": 3, "prd_b": 1, "prd_c": 9}
    res = await reservation(shop, "ord_1")
    assert res is not None and res.status == RESERVED and res.seller_id == "sel_1"


async def test_seller_without_ship_from_answers_null(shop):
    kind, body = await run(shop, reserve_stock, reserve("ord_1", ("prd_c", 1), seller_id="sel_2"))
    assert kind == "StockReserved"
    assert body["ship_from"] is None and body["auto_accept"] is False


async def test_one_short_line_refuses_the_whole_order_and_changes_nothing(shop):
    before = await stock(shop)
    reply = await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 2), ("prd_b", 3)))
    assert reply == (
        "StockRefused",
        {
            "reason_code": "out_of_stock",
            "reason": "Not enough stock of product 'prd_b' for 3",
            "product_id": "prd_b",
        },
    )
    assert await stock(shop) == before
    assert await reservation(shop, "ord_1") is None


async def test_lines_of_one_product_count_together(shop):
    kind, body = await run(shop, reserve_stock, reserve("ord_1", ("prd_b", 1), ("prd_b", 2)))
    assert (kind, body["reason_code"], body["product_id"]) == (
        "StockRefused",
        "out_of_stock",
        "prd_b",
    )
    kind, _ = await run(shop, reserve_stock, reserve("ord_2", ("prd_b", 1), ("prd_b", 1)))
    assert kind == "StockReserved"
    assert (await stock(shop))["prd_b"] == 0


async def test_unknown_product_and_wrong_seller_are_refused_by_name(shop):
    _, body = await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 1), ("prd_zz", 1)))
    assert (body["reason_code"], body["product_id"]) == ("unknown_product", "prd_zz")
    _, body = await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 1), ("prd_c", 1)))
    assert (body["reason_code"], body["product_id"]) == ("wrong_seller", "prd_c")
    assert await stock(shop) == {"prd_a": 5, "prd_b": 2, "prd_c": 9}


@pytest.mark.parametrize(
    "change",
    [
        {"lines": []},
        {"lines": [{"line_id": "l1", "product_id": "prd_a", "quantity": 0}]},
        {"lines": [{"line_id": "l1", "product_id": "prd_a", "quantity": 1_000_001}]},
        {"lines": [{"line_id": "l1", "product_id": "prd_a", "quantity": "2"}]},
        {"lines": [{"line_id": "l1", "product_id": "prd_a", "quantity": 1.5}]},
        {"lines": [{"line_id": "l1", "product_id": "prd_a", "quantity": True}]},
        {"lines": [{"line_id": "l1", "product_id": "prd_a"}]},
        {"lines": [{"line_id": "l1", "product_id": "prd_a", "quantity": 1}] * 2},
        {"lines": "prd_a"},
        {"seller_id": None},
        {"order_id": 7},
    ],
)
async def test_malformed_reserve_is_refused_as_invalid_request(shop, change):
    reply = await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 1)) | change)
    assert reply[0] == "StockRefused"
    assert reply[1]["reason_code"] == "invalid_request" and reply[1]["product_id"] is None
    assert reply[1]["reason"].startswith("Invalid command: ")
    assert await stock(shop) == {"prd_a": 5, "prd_b": 2, "prd_c": 9}


async def test_malformed_release_and_restock_are_refused_as_invalid_request(shop):
    for handler, body in [
        (release_stock, {"order_id": ""}),
        (restock_return, order_step("ord_1", "restock")),
        (restock_return, order_step("ord_1", "restock", lines=[{"product_id": "prd_a"}])),
    ]:
        kind, reply = await run(shop, handler, body)
        assert (kind, reply["reason_code"]) == ("StockRefused", "invalid_request")


async def test_repeated_reserve_answers_the_same_and_takes_stock_once(shop):
    command = reserve("ord_1", ("prd_a", 2))
    first = await run(shop, reserve_stock, command)
    # The product changes after the reservation: the repeat still answers what was reserved.
    async with shop.transaction() as s:
        product = await s.get(Product, "prd_a")
        assert product is not None
        product.price = Decimal("99.00")
    assert await run(shop, reserve_stock, command) == first
    assert (await stock(shop))["prd_a"] == 3


async def test_release_restores_stock_once(shop):
    await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 2), ("prd_b", 2)))
    assert await stock(shop) == {"prd_a": 3, "prd_b": 0, "prd_c": 9}
    release = order_step("ord_1", "release_stock")
    assert await run(shop, release_stock, release) == ("StockReleased", {"released": True})
    assert await stock(shop) == {"prd_a": 5, "prd_b": 2, "prd_c": 9}
    assert await run(shop, release_stock, release) == ("StockReleased", {"released": False})
    assert await stock(shop) == {"prd_a": 5, "prd_b": 2, "prd_c": 9}
    res = await reservation(shop, "ord_1")
    assert res is not None and res.status == RELEASED and res.released_at is not None


async def test_release_without_reservation_releases_nothing(shop):
    reply = await run(shop, release_stock, order_step("ord_nope", "release_stock"))
    assert reply == ("StockReleased", {"released": False})


async def test_reserve_after_release_is_refused(shop):
    command = reserve("ord_1", ("prd_a", 2))
    await run(shop, reserve_stock, command)
    await run(shop, release_stock, order_step("ord_1", "release_stock"))
    assert await run(shop, reserve_stock, command) == (
        "StockRefused",
        {
            "reason_code": "released",
            "reason": "The reservation of order 'ord_1' was released",
            "product_id": None,
        },
    )
    assert (await stock(shop))["prd_a"] == 5


async def test_restock_return_adds_back_once(shop):
    await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 3), ("prd_b", 2)))
    restock = order_step("ord_1", "restock", lines=[{"product_id": "prd_a", "quantity": 2}])
    assert await run(shop, restock_return, restock) == ("StockRestocked", {"restocked": True})
    assert await stock(shop) == {"prd_a": 4, "prd_b": 0, "prd_c": 9}
    assert await run(shop, restock_return, restock) == ("StockRestocked", {"restocked": False})
    assert await stock(shop) == {"prd_a": 4, "prd_b": 0, "prd_c": 9}
    res = await reservation(shop, "ord_1")
    assert res is not None and res.restocked_at is not None
    # Returned goods are back in stock: releasing the order now would count them twice.
    release = order_step("ord_1", "release_stock")
    assert await run(shop, release_stock, release) == ("StockReleased", {"released": False})
    assert await stock(shop) == {"prd_a": 4, "prd_b": 0, "prd_c": 9}


async def test_restock_needs_a_live_reservation_and_no_more_than_it_holds(shop):
    lines = [{"product_id": "prd_a", "quantity": 1}]
    reply = await run(shop, restock_return, order_step("ord_nope", "restock", lines=lines))
    assert reply == ("StockRestocked", {"restocked": False})

    await run(shop, reserve_stock, reserve("ord_1", ("prd_a", 1)))
    too_many = order_step("ord_1", "restock", lines=[{"product_id": "prd_a", "quantity": 2}])
    kind, body = await run(shop, restock_return, too_many)
    assert (kind, body["reason_code"], body["product_id"]) == (
        "StockRefused",
        "invalid_request",
        "prd_a",
    )
    other = order_step("ord_1", "restock", lines=[{"product_id": "prd_b", "quantity": 1}])
    assert (await run(shop, restock_return, other))[1]["product_id"] == "prd_b"
    assert await stock(shop) == {"prd_a": 4, "prd_b": 2, "prd_c": 9}

    await run(shop, release_stock, order_step("ord_1", "release_stock"))
    reply = await run(shop, restock_return, order_step("ord_1", "restock", lines=lines))
    assert reply == ("StockRestocked", {"restocked": False})
    assert await stock(shop) == {"prd_a": 5, "prd_b": 2, "prd_c": 9}


async def test_two_orders_for_the_last_unit_exactly_one_wins(db):
    await add_seller(db)
    await add_product(db, "prd_last", stock=1)
    replies = await asyncio.gather(
        run(db, reserve_stock, reserve("ord_1", ("prd_last", 1))),
        run(db, reserve_stock, reserve("ord_2", ("prd_last", 1))),
    )
    kinds = sorted(kind for kind, _ in replies)
    assert kinds == ["StockRefused", "StockReserved"]
    assert await stock(db) == {"prd_last": 0}
    loser = "ord_1" if replies[0][0] == "StockRefused" else "ord_2"
    assert await reservation(db, loser) is None


async def test_many_orders_racing_never_oversell(db):
    await add_seller(db)
    await add_product(db, "prd_a", stock=3)
    await add_product(db, "prd_b", stock=3)
    # Opposite line orders on purpose: updates in product order cannot deadlock.
    replies = await asyncio.gather(
        *(
            run(
                db,
                reserve_stock,
                reserve(f"ord_{i}", *([("prd_a", 1), ("prd_b", 1)][:: 1 if i % 2 else -1])),
            )
            for i in range(8)
        )
    )
    assert sorted(kind for kind, _ in replies).count("StockReserved") == 3
    assert await stock(db) == {"prd_a": 0, "prd_b": 0}


async def test_order_waiting_on_a_concurrent_reservation_is_refused(db):
    """The second order read the stock before the first committed (on Postgres); its
    conditional UPDATE waits for the first, finds the row short and rolls back."""
    await add_seller(db)
    await add_product(db, "prd_a", stock=5)
    await add_product(db, "prd_last", stock=1)
    async with db.transaction() as s:
        first = await reserve_stock(s, reserve("ord_1", ("prd_last", 1)))
        second = asyncio.create_task(
            run(db, reserve_stock, reserve("ord_2", ("prd_a", 1), ("prd_last", 1)))
        )
        await asyncio.sleep(0.3)
        assert not second.done()
    assert first[0] == "StockReserved"
    kind, body = await second
    assert (kind, body["reason_code"], body["product_id"]) == (
        "StockRefused",
        "out_of_stock",
        "prd_last",
    )
    assert await stock(db) == {"prd_a": 5, "prd_last": 0}
    assert await reservation(db, "ord_2") is None


async def test_concurrent_deliveries_of_one_command_reserve_once(db):
    await add_seller(db)
    await add_product(db, "prd_a", stock=5)
    command = reserve("ord_1", ("prd_a", 2))
    async with db.transaction() as s:
        first = await reserve_stock(s, command)
        again = asyncio.create_task(run(db, reserve_stock, command))
        await asyncio.sleep(0.3)
    assert await again == first
    assert await stock(db) == {"prd_a": 3}


def command_message(hub: str, command: str, body: dict[str, Any]) -> Message:
    cmd_id = commands.command_id(body["order_id"], body["step"])
    return Message(
        topic=commands.topic(hub, commands.CATALOG_COMMANDS),
        value=json.dumps(body).encode(),
        key=body["order_id"].encode(),
        headers=(("event_id", cmd_id.encode()), ("event_type", command.encode())),
    )


async def outbox_replies(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.sessionmaker() as s:
        rows = await s.scalars(select(OutboxRecord).order_by(OutboxRecord.id))
        return [(r.event_type, json.loads(r.payload)) for r in rows]


async def test_refusal_commits_its_reply_and_no_stock_change(shop):
    handle = commands.command_consumer(shop, "CA", HANDLERS, retry_delay=0.01)
    message = command_message("CA", "ReserveStock", reserve("ord_1", ("prd_a", 1), ("prd_b", 3)))
    await handle(message)
    cmd_id = message.header("event_id")
    assert await outbox_replies(shop) == [
        (
            "StockRefused",
            {
                "order_id": "ord_1",
                "step": "reserve_stock",
                "command_id": cmd_id,
                "reason_code": "out_of_stock",
                "reason": "Not enough stock of product 'prd_b' for 3",
                "product_id": "prd_b",
            },
        )
    ]
    assert await stock(shop) == {"prd_a": 5, "prd_b": 2, "prd_c": 9}


async def test_redelivered_command_answers_the_same_reply_again(shop):
    handle = commands.command_consumer(shop, "CA", HANDLERS, retry_delay=0.01)
    message = command_message("CA", "ReserveStock", reserve("ord_1", ("prd_a", 2)))
    await handle(message)
    await handle(message)  # at-least-once delivery, or the saga re-sending a late reply
    assert await stock(shop) == {"prd_a": 3, "prd_b": 2, "prd_c": 9}
    async with shop.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxRecord))).all()
    assert {(r.event_type, r.event_id) for r in rows} == {
        ("StockReserved", commands.reply_id(message.header("event_id") or "", "StockReserved"))
    }


async def test_a_command_sent_again_after_its_reply_went_out_sends_the_reply_again(shop):
    """The saga re-sends a command only when the reply has not arrived (a broker that
    lost it): the stored reply is published again, under the same event id."""
    handle = commands.command_consumer(shop, "CA", HANDLERS, retry_delay=0.01)
    message = command_message("CA", "ReserveStock", reserve("ord_1", ("prd_a", 2)))
    await handle(message)
    async with shop.transaction() as s:  # the relay published it
        await s.execute(update(OutboxRecord).values(sent_at=datetime.now(UTC)))
    await handle(message)
    async with shop.sessionmaker() as s:
        rows = (await s.scalars(select(OutboxRecord))).all()
    assert [(r.event_type, r.sent_at) for r in rows] == [("StockReserved", None)]
    assert await stock(shop) == {"prd_a": 3, "prd_b": 2, "prd_c": 9}


# --- end to end through the embedded broker -------------------------------------------


async def await_reply(bootstrap: str, topic: str, order_id: str, timeout: float = 30) -> Message:
    """The first record keyed ``order_id`` on ``topic`` (read from the beginning)."""
    bus = KafkaBus(bootstrap)
    found: list[Message] = []

    async def collect(message: Message) -> None:
        if message.key == order_id.encode():
            found.append(message)

    sub = bus.subscribe([topic], f"test-{uuid.uuid4().hex[:8]}", collect)
    task = asyncio.create_task(sub.run())
    try:
        deadline = time.monotonic() + timeout
        while not found and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await sub.stop()
        await task
        await bus.stop()
    assert found, f"no reply for {order_id} on {topic} within {timeout} s"
    return found[0]


async def test_reserve_stock_through_the_broker(database_url, broker, tmp_path):
    # Topics and a consumer group of its own per database (ehub.zm.catalog-commands, ...):
    # rejoining a group its last member just left makes the broker wait for it.
    hub = "ZM" if database_url.startswith("sqlite") else "ZW"  # assigned ISO codes
    settings = CatalogSettings(
        hub_id=hub,
        database_url=database_url,
        var_dir=tmp_path,
        kafka_bootstrap=broker.bootstrap,
        relay_poll_interval=0.1,
    )
    gateway = Database(f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}")
    await upgrade(gateway, "ehub_catalog.migrations")  # the core tables: an outbox
    bus = KafkaBus(broker.bootstrap)
    try:
        async with serve_in_process(create_app(settings)) as client:
            seller = (
                await client.post(
                    "/v1/sellers",
                    json={"name": "Lobster Co", "country": "CA", "ship_from": SHIP_FROM},
                )
            ).json()
            r = await client.post(
                "/v1/products",
                json={
                    "seller_id": seller["id"],
                    "title": "Live lobster, 1 kg",
                    "hs_code": "030632",
                    "origin_country": "CA",
                    "price": "45.00",
                    "currency": "CAD",
                    "weight_kg": "1.2",
                    "stock": 10,
                },
            )
            product = r.json()

            # The gateway's saga sends the command through its own outbox.
            order_id = f"ord_{uuid.uuid4().hex[:12]}"
            async with gateway.transaction() as s:
                cmd_id = await commands.send_command(
                    s,
                    hub_id=hub,
                    stream=commands.CATALOG_COMMANDS,
                    command="ReserveStock",
                    order_id=order_id,
                    step="reserve_stock",
                    body={
                        "seller_id": seller["id"],
                        "lines": [{"line_id": "l1", "product_id": product["id"], "quantity": 3}],
                    },
                )
            assert await OutboxRelay(gateway, bus).publish_pending() == 1

            reply = await await_reply(
                broker.bootstrap, commands.topic(hub, commands.SAGA_REPLIES), order_id
            )
            assert reply.header("event_type") == "StockReserved"
            assert reply.header("event_id") == commands.reply_id(cmd_id, "StockReserved")
            body = commands.decode(reply)
            assert body == {
                "order_id": order_id,
                "step": "reserve_stock",
                "command_id": cmd_id,
                "seller_id": seller["id"],
                "ship_from": SHIP_FROM,
                "auto_accept": False,
                "owner": seller.get("owner"),
                "lines": [
                    {
                        "line_id": "l1",
                        "product_id": product["id"],
                        "quantity": 3,
                        "title": "Live lobster, 1 kg",
                        "hs_code": "030632",
                        "unit_price": "45.00",
                        "currency": "CAD",
                        "weight_kg": "1.200",
                        "origin_country": "CA",
                    }
                ],
            }
            r = await client.get(f"/v1/products/{product['id']}")
            assert r.json()["stock"] == 7
    finally:
        await bus.stop()
        await gateway.dispose()


async def test_a_batch_applies_each_command_once_in_order_with_its_reply(shop):
    """``batch`` (one transaction per fetch): commands see the effects of the earlier
    ones in the batch (the last units go to the first order), a copy inside the batch
    answers the same reply once, and replies are written in the commands' order."""
    import contextlib

    consumer = commands.command_consumer(shop, "CA", HANDLERS, retry_delay=0.01)
    first = command_message("CA", "ReserveStock", reserve("ord_1", ("prd_b", 2)))
    second = command_message("CA", "ReserveStock", reserve("ord_2", ("prd_b", 1)))
    spans: list[str] = []

    @contextlib.contextmanager
    def span(message: Message):
        spans.append(message.header("event_id") or "")
        yield

    await consumer.batch([first, second, first], span)
    assert await stock(shop) == {"prd_a": 5, "prd_b": 0, "prd_c": 9}
    assert [(t, b["order_id"]) for t, b in await outbox_replies(shop)] == [
        ("StockReserved", "ord_1"),
        ("StockRefused", "ord_2"),
    ]
    assert len(spans) == 3  # every message's work in its own trace


async def test_a_failing_command_undoes_its_batch_which_is_then_applied_one_by_one(shop):
    import contextlib

    async def broken(session, body):
        raise RuntimeError("disk on fire")

    consumer = commands.command_consumer(
        shop, "CA", {**HANDLERS, "Explode": broken}, retry_delay=0.01
    )
    good = command_message("CA", "ReserveStock", reserve("ord_1", ("prd_a", 2)))
    bad = command_message("CA", "Explode", order_step("ord_9", "explode"))
    await consumer.batch([good, bad], lambda m: contextlib.nullcontext())
    assert await stock(shop) == {"prd_a": 3, "prd_b": 2, "prd_c": 9}  # applied once
    replies = await outbox_replies(shop)
    assert [(t, b["order_id"]) for t, b in replies] == [
        ("StockReserved", "ord_1"),
        (commands.COMMAND_FAILED, "ord_9"),  # after its attempts, one at a time
    ]

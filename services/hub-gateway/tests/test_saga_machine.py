"""The order saga's tables: well-formed, every state reachable, every non-terminal state
can end, and docs/orders.md shows exactly these transitions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ehub_gateway.saga.actions import COMMANDS
from ehub_gateway.saga.machine import (
    BUYER,
    SELLER,
    TERMINAL,
    Action,
    Role,
    State,
    allowed_requests,
    step,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "orders.md"
TABLES = {Role.BUYER: (BUYER, State.PLACED), Role.SELLER: (SELLER, State.RESERVING)}
PEER_EVENTS = {
    Action.SEND_PLACED,
    Action.SEND_CANCEL,
    Action.SEND_ACCEPTED,
    Action.SEND_REJECTED,
    Action.SEND_EXPORT_DECISION,
    Action.SEND_CANCELLED,
    Action.SEND_CANCEL_REFUSED,
    Action.SEND_RETURN_REQUESTED,
    Action.SEND_RETURN_RECEIVED,
}


def test_every_action_is_a_command_or_a_peer_event() -> None:
    assert set(Action) == set(COMMANDS) | PEER_EVENTS
    assert not set(COMMANDS) & PEER_EVENTS


@pytest.mark.parametrize("role", list(Role))
def test_every_state_of_a_side_is_reachable_from_its_start(role: Role) -> None:
    table, start = TABLES[role]
    seen, todo = {start}, [start]
    while todo:
        current = todo.pop()
        for (state, _), nxt in table.items():
            if state == current and nxt.to not in seen:
                seen.add(nxt.to)
                todo.append(nxt.to)
    used = {s for s, _ in table} | {n.to for n in table.values()}
    assert used <= seen, used - seen


@pytest.mark.parametrize("role", list(Role))
def test_every_non_terminal_state_can_reach_a_terminal_state(role: Role) -> None:
    table, _ = TABLES[role]
    states = {s for s, _ in table} | {n.to for n in table.values()}
    for origin in states - TERMINAL:
        seen, todo = {origin}, [origin]
        while todo:
            current = todo.pop()
            for (state, _), nxt in table.items():
                if state == current and nxt.to not in seen:
                    seen.add(nxt.to)
                    todo.append(nxt.to)
        assert seen & TERMINAL, f"{role}: {origin} can never end"


def test_terminal_states_only_leave_for_returns_or_answers() -> None:
    # delivered -> returning is the only way out of a terminal state; the seller's hub
    # still answers a late cancel from a delivered order (refused), staying delivered.
    for table in (BUYER, SELLER):
        for (state, event), nxt in table.items():
            if state in TERMINAL and nxt.to != state:
                assert (state, event, nxt.to) in {
                    (State.DELIVERED, "return", State.RETURNING),
                    (State.DELIVERED, "ReturnRequested", State.RETURNING),
                    # the return's tracking overtook its announcement
                    (State.DELIVERED, "return_moving", State.RETURNING),
                    (State.DELIVERED, "return_delivered", State.RETURNING),
                }


def test_partner_requests_per_side_and_state() -> None:
    assert allowed_requests(Role.SELLER, State.AWAITING_ACCEPTANCE) == ["accept", "reject"]
    assert allowed_requests(Role.BUYER, State.AWAITING_SELLER) == ["cancel"]
    assert allowed_requests(Role.BUYER, State.IN_TRANSIT) == []
    assert allowed_requests(Role.BUYER, State.DELIVERED) == ["return"]
    assert step(Role.BUYER, State.DELIVERED, "cancel") is None
    assert step(Role.SELLER, State.REJECTED, "accept") is None


def test_money_is_given_back_on_every_buyer_side_failure() -> None:
    # Whatever ends a buyer's order without delivery releases the allowance it reserved.
    for (state, event), nxt in BUYER.items():
        if nxt.to in (State.CANCELLED, State.REJECTED, State.UNDELIVERED) and nxt.to != state:
            assert Action.RELEASE_ALLOWANCE in nxt.actions, (state, event)
        # Reaching delivered confirms the allowance, except back from a return that did
        # not happen (refused booking, parcel brought back): it was confirmed already.
        if nxt.to == State.DELIVERED and state not in (State.DELIVERED, State.RETURNING):
            assert Action.CONFIRM_ALLOWANCE in nxt.actions, (state, event)
        if state == State.RETURNING and nxt.to == State.DELIVERED:
            assert not nxt.actions, (state, event)  # nothing was given back: nothing to undo


def test_stock_is_given_back_on_every_seller_side_failure_after_reservation() -> None:
    for (state, event), nxt in SELLER.items():
        if nxt.to == State.REJECTED and state != State.RESERVING:
            assert Action.RELEASE_STOCK in nxt.actions, (state, event)
        if nxt.to == State.REJECTED:
            assert Action.SEND_REJECTED in nxt.actions, (state, event)


def _doc_rows(title: str) -> set[tuple[str, str, str, tuple[str, ...]]]:
    text = DOC.read_text()
    section = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        acts = tuple(re.findall(r"`([a-z_]+)`", cells[3]))
        rows.add((cells[0].strip("`"), cells[1].strip("`"), cells[2].strip("`"), acts))
    return rows


@pytest.mark.parametrize(
    ("title", "table"), [("The buyer's hub", BUYER), ("The seller's hub", SELLER)]
)
def test_docs_show_exactly_the_table(title: str, table: dict) -> None:
    expected = {
        (s.value, e, n.to.value, tuple(a.value for a in n.actions)) for (s, e), n in table.items()
    }
    assert _doc_rows(title) == expected


def test_an_officer_release_moves_a_held_import_on_and_a_rejection_compensates() -> None:
    # docs/customs.md, "The officer": release -> the order goes to the seller's hub.
    released = step(Role.BUYER, State.IMPORT_HELD, "OfficerDecided:cleared")
    assert released is not None and released.to == State.AWAITING_SELLER
    assert released.actions == (Action.SEND_PLACED,)
    rejected = step(Role.BUYER, State.IMPORT_HELD, "OfficerDecided:rejected")
    assert rejected is not None and rejected.to == State.REJECTED
    assert rejected.actions == (Action.RELEASE_ALLOWANCE,)
    for interim in ("OfficerDecided:inspect", "OfficerDecided:held"):
        kept = step(Role.BUYER, State.IMPORT_HELD, interim)
        assert kept is not None and kept.to == State.IMPORT_HELD and not kept.actions
    # A clean order is never touched by an officer's event once it moved on.
    assert step(Role.BUYER, State.AWAITING_SELLER, "OfficerDecided:cleared") is None


def test_a_held_export_waits_for_the_officer_then_ships_or_is_rejected() -> None:
    held = step(Role.SELLER, State.EXPORT_CLEARANCE, "ExportDecided:held")
    assert held is not None and held.to == State.EXPORT_HELD
    released = step(Role.SELLER, State.EXPORT_HELD, "OfficerDecided:cleared")
    assert released is not None and released.to == State.BOOKING
    assert released.actions == (Action.SEND_EXPORT_DECISION, Action.BOOK_SHIPMENT)
    rejected = step(Role.SELLER, State.EXPORT_HELD, "OfficerDecided:rejected")
    assert rejected is not None and rejected.to == State.REJECTED
    assert Action.RELEASE_STOCK in rejected.actions and Action.SEND_REJECTED in rejected.actions
    cancelled = step(Role.SELLER, State.EXPORT_HELD, "OrderCancelled")
    assert cancelled is not None and cancelled.to == State.CANCELLING


def _held_order(order_id: str):
    from datetime import UTC, datetime

    from ehub_gateway.orders.models import Order

    now = datetime.now(UTC)
    return Order(
        id=order_id,
        role="buyer",
        state="import_held",
        buyer_hub="CN",
        seller_hub="CA",
        seller_id="sel_1",
        buyer_ref="b" * 64,
        ship_to={"country": "CN"},
        lines=[],
        currency="CNY",
        seller_currency="CAD",
        money={},
        shipping={"carrier": "postal", "service": "surface_parcel"},
        declarations={"import": {"decision": "held", "reason_code": "restricted_goods"}},
        reason="import_held: needs a quarantine_permit",
        created_at=now,
        updated_at=now,
    )


def _officer_event(order_id: str, decision: str, phase: str = "import"):
    import json

    from ehub_core.bus import Message

    body = {
        "order_id": order_id,
        "declaration_id": "dcl_1",
        "phase": phase,
        "country": "CN",
        "decision": decision,
        "officer_decision": {"rejected": "reject", "inspect": "inspect"}[decision],
        "reason_code": "officer_rejected",
        "reason": "reject by prt_officer: no permit",
        "decided_by": "officer:prt_officer",
        "decided_at": "2026-12-02T00:00:00+00:00",
    }
    headers = (
        ("event_id", f"ev-{order_id}-{decision}-{phase}".encode()),
        ("event_type", b"ClearanceDecided"),
        ("content-type", b"application/json"),
    )
    return Message("ehub.cn.clearance", json.dumps(body).encode(), order_id.encode(), headers)


async def test_the_runner_takes_an_officers_decision_from_the_customs_topic(database_url) -> None:
    # customs' ClearanceDecided (JSON, ehub.<hub>.customs; docs/customs.md "The officer")
    # is OfficerDecided:<decision> for the order's side; the other side's is ignored.
    from sqlalchemy import select

    from ehub_core.db import Database
    from ehub_core.migrations import upgrade
    from ehub_gateway.orders.models import Order, OrderStep, SagaCommand
    from ehub_gateway.saga.runner import Saga

    db = Database(database_url)
    try:
        await upgrade(db, "ehub_gateway.migrations")
        async with db.transaction() as session:
            session.add(_held_order("ord_held"))
        saga = Saga(db, "CN", key=lambda: None)
        await saga.handle(_officer_event("ord_held", "inspect", phase="export"))  # not ours
        await saga.handle(_officer_event("ord_held", "inspect"))
        async with db.transaction() as session:
            assert (await session.get(Order, "ord_held")).state == "import_held"
        await saga.handle(_officer_event("ord_held", "rejected"))
        await saga.handle(_officer_event("ord_held", "rejected"))  # redelivered: inbox skips
        async with db.transaction() as session:
            order = await session.get(Order, "ord_held")
            assert order.state == "rejected"
            assert order.declarations["import"]["decided_by"] == "officer:prt_officer"
            assert order.reason == "import_rejected: reject by prt_officer: no permit"
            commands = (await session.scalars(select(SagaCommand))).all()
            assert [c.command for c in commands] == ["ReleaseAllowance"]
            steps = (
                await session.scalars(select(OrderStep).where(OrderStep.order_id == "ord_held"))
            ).all()
            assert [(s.what, s.state) for s in steps] == [
                ("ClearanceDecided", "import_held"),
                ("ClearanceDecided", "rejected"),
            ]
    finally:
        await db.dispose()


def _sold_and_delivered(order_id: str):
    order = _held_order(order_id)
    order.role, order.state = "seller", "delivered"
    order.ship_to = {"country": "CN"}
    order.declarations = {}
    order.reason = None
    order.shipment = {"shipment_id": "shp_out", "carrier": "postal", "tracking_number": "T1CA"}
    return order


def _from_cn(payload, order_id: str):
    from datetime import UTC, datetime, timedelta

    from ehub_core.bus import Message
    from ehub_core.envelope import read_unverified, seal
    from ehub_core.signing import HubKey

    now = datetime.now(UTC)
    key = HubKey.generate(
        kid="CN#test", not_before=now - timedelta(days=1), not_after=now + timedelta(days=1)
    )
    data = seal(payload, key, target_hub="CA", subject=order_id)
    headers = (
        ("event_id", read_unverified(data).event_id.encode()),
        ("content-type", b"application/x-protobuf"),
    )
    return Message("ehub.ca.shipments", data, order_id.encode(), headers)


@pytest.mark.parametrize(
    ("ending", "state", "restocked"),
    [("brought_back", "delivered", False), ("delivered", "returning", True)],
)
async def test_return_tracking_that_overtakes_its_announcement_is_followed(
    database_url, ending: str, state: str, restocked: bool
) -> None:
    # Found by the crash test: the buyer's hub forwarded the return's tracking and its
    # ReturnRequested as separate events; tracking came first, was taken for outbound news
    # and ignored, and the late ReturnRequested left the seller's order returning for ever.
    from sqlalchemy import select

    from ehub_core.db import Database
    from ehub_core.migrations import upgrade
    from ehub_core.proto.ehub.v1 import logistics_pb2, orders_pb2
    from ehub_gateway.orders.models import Order, SagaCommand
    from ehub_gateway.saga.runner import Saga

    order_id = f"ord_ret_{ending}"
    ret = {"order_id": order_id, "shipment_id": "shp_ret", "carrier": "postal"}
    news = [
        logistics_pb2.ShipmentEvent(
            **ret, tracking_number="R1CN", status=logistics_pb2.SHIPMENT_STATUS_IN_TRANSIT
        )
    ]
    if ending == "brought_back":
        news.append(
            logistics_pb2.ShipmentEvent(
                **ret, tracking_number="R1CN", status=logistics_pb2.SHIPMENT_STATUS_RETURNED
            )
        )
    else:
        news.append(logistics_pb2.DeliveryConfirmed(order_id=order_id, shipment_id="shp_ret"))
    announcement = orders_pb2.ReturnRequested(
        order_id=order_id, return_id="shp_ret", carrier="postal", tracking_number="R1CN"
    )
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_gateway.migrations")
        async with db.transaction() as session:
            session.add(_sold_and_delivered(order_id))
        saga = Saga(db, "CA", key=lambda: None)
        # The return's booking (forwarded by the buyer's hub) leaves the outbound alone.
        booked = logistics_pb2.ShipmentBooked(**ret, tracking_number="R1CN")
        await saga.handle(_from_cn(booked, order_id))
        await saga.handle(_from_cn(news[0], order_id))
        async with db.transaction() as session:
            assert (await session.get(Order, order_id)).state == "returning"
        await saga.handle(_from_cn(news[1], order_id))
        await saga.handle(_from_cn(announcement, order_id))  # late
        async with db.transaction() as session:
            order = await session.get(Order, order_id)
            assert order.state == state
            assert order.shipment["shipment_id"] == "shp_out"  # the outbound is kept
            assert order.shipment["return"]["shipment_id"] == "shp_ret"
            assert order.shipment["return"]["ended"] == ending
            commands = [c.command for c in (await session.scalars(select(SagaCommand))).all()]
            assert ("RestockReturn" in commands) is restocked, commands
    finally:
        await db.dispose()


async def test_a_batch_takes_effect_once_per_message_and_skips_one_it_cannot_read(
    database_url,
) -> None:
    # The consumer hands the saga what one fetch returned (handle_batch): one
    # transaction; a copy inside the batch or a redelivered batch changes nothing more;
    # an unreadable message undoes the batch, which is then taken a message at a time.
    import contextlib

    from sqlalchemy import func, select

    from ehub_core.bus import Message
    from ehub_core.db import Database
    from ehub_core.migrations import upgrade
    from ehub_core.proto.ehub.v1 import logistics_pb2
    from ehub_gateway.orders.models import Order, OrderStep
    from ehub_gateway.saga.runner import Saga

    def moving(order_id: str) -> Message:
        return _from_cn(
            logistics_pb2.ShipmentEvent(
                order_id=order_id,
                shipment_id="shp_ret",
                carrier="postal",
                tracking_number="R1CN",
                status=logistics_pb2.SHIPMENT_STATUS_IN_TRANSIT,
            ),
            order_id,
        )

    spans: list[str] = []

    @contextlib.contextmanager
    def span(message: Message):
        spans.append(message.header("event_id") or "")
        yield

    db = Database(database_url)
    try:
        await upgrade(db, "ehub_gateway.migrations")
        async with db.transaction() as session:
            session.add_all([_sold_and_delivered("ord_b1"), _sold_and_delivered("ord_b2")])
        saga = Saga(db, "CA", key=lambda: None)
        first, second = moving("ord_b1"), moving("ord_b2")
        await saga.handle_batch([first, second, first], span)
        await saga.handle_batch([first, second], span)  # the fetch came again

        async def steps(order_id: str) -> int:
            async with db.transaction() as session:
                stmt = select(func.count()).where(OrderStep.order_id == order_id)
                return int(await session.scalar(stmt) or 0)

        async def state(order_id: str) -> str:
            async with db.transaction() as session:
                return (await session.get(Order, order_id)).state

        assert (await steps("ord_b1"), await steps("ord_b2")) == (1, 1)
        assert (await state("ord_b1"), await state("ord_b2")) == ("returning", "returning")
        assert len(spans) == 2  # each message handled in its span; copies not at all

        async with db.transaction() as session:
            session.add(_sold_and_delivered("ord_b3"))
        unreadable = Message(
            "ehub.ca.shipments",
            b"\xff not an envelope",
            b"ord_b3",
            (("event_id", b"ev-garbage"), ("content-type", b"application/x-protobuf")),
        )
        third = moving("ord_b3")
        await saga.handle_batch([unreadable, third], span)
        assert await steps("ord_b3") == 1 and await state("ord_b3") == "returning"
    finally:
        await db.dispose()

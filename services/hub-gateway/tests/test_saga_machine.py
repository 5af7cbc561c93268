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
        if nxt.to == State.DELIVERED and state != State.DELIVERED and event != "ShipmentRefused":
            assert Action.CONFIRM_ALLOWANCE in nxt.actions, (state, event)


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

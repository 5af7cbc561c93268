"""The customs side of the order saga (docs/orders.md): declarations, decisions and the
allowance reservations, on SQLite and Postgres, plus one run through the real broker."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from alembic import command
from alembic.config import Config

from ehub_core import commands
from ehub_core.db import Database
from ehub_core.migrations import current_revision, upgrade
from ehub_core.testing import serve_in_process
from ehub_customs.allowances.service import allowance_date, record_order
from ehub_customs.app import create_app
from ehub_customs.consumers import make_handlers
from ehub_customs.settings import CustomsSettings

BUYER = "b3f1c0de9a7e4b1f8c2d6e5a4f3b2c1d"  # the gateway sends a hash, stored as given
CLEAN = (
    "no risk rule hit (screening data 2026-12-02; lists ofac-sdn (2026-12-02), "
    "un-consolidated (2026-12-02))"
)


@pytest.fixture
async def app(database_url, tmp_path):
    return create_app(CustomsSettings(database_url=database_url, var_dir=tmp_path))


@pytest.fixture
async def client(app):
    async with serve_in_process(app) as c:
        yield c


def line(**kw: Any) -> dict[str, Any]:
    return {
        "line_id": "ln_1",
        "hs_code": "6109.10",
        "description": "cotton T-shirt",
        "quantity": 2,
        "unit_value": "500.00",
        "origin_country": "GB",
        **kw,
    }


def import_body(order_id: str, *, allowance: str | None = "1000.00", **kw: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "step": "customs_import",
        "country": "CN",
        "origin": "GB",
        "buyer_ref": BUYER,
        "currency": "CNY",
        "lines": [line()],
        "allowance": None if allowance is None else {"amount": allowance, "currency": "CNY"},
        **kw,
    }


def export_body(order_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "step": "customs_export",
        "country": "CN",
        "destination": "GB",
        "currency": "CNY",
        "lines": [line(origin_country="CN")],
        **kw,
    }


async def run(app, name: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Apply one command the way command_consumer does: in one transaction."""
    handler = make_handlers(app.state.rulebook, app.state.screener)[name]
    async with app.state.ctx.db.transaction() as session:
        return await handler(session, body)


async def allowance(client) -> dict[str, Any]:
    on = allowance_date("CN", datetime.now(UTC))
    r = await client.get(f"/v1/allowances/CN/{BUYER}", params={"date": on.isoformat()})
    assert r.status_code == 200, r.text
    return r.json()


async def declarations(client, order_id: str) -> list[dict[str, Any]]:
    r = await client.get("/v1/declarations", params={"order_id": order_id})
    assert r.status_code == 200, r.text
    return r.json()


async def test_clean_import_is_cleared_and_reserves_the_allowance(app, client):
    reply_type, reply = await run(app, "FileImportDeclaration", import_body("ord_1"))
    assert reply_type == "ImportDecided"
    assert reply == {
        "declaration_id": reply["declaration_id"],
        "decision": "cleared",
        "reason_code": "screened_clean",
        "reason": CLEAN,
        "allowance_reserved": True,
    }
    assert reply["declaration_id"].startswith("dcl_")

    a = await allowance(client)
    assert (a["used"], a["reserved"], a["remaining"], a["orders"]) == (
        "1000.00",
        "1000.00",
        "25000.00",
        1,
    )
    # Quotes read the reservation too.
    quote = await client.post(
        "/v1/landed-cost",
        json={
            "origin": "GB",
            "destination": "CN",
            "date": allowance_date("CN", datetime.now(UTC)).isoformat(),
            "currency": "CNY",
            "items": [
                {
                    "hs_code": "6109.10",
                    "quantity": 1,
                    "unit_value": "100.00",
                    "country_of_origin": "GB",
                }
            ],
            "buyer_id": BUYER,
        },
    )
    assert quote.status_code == 200, quote.text
    assert quote.json()["regime"]["allowance_used"] == "1000.00"

    [d] = await declarations(client, "ord_1")
    assert d["id"] == reply["declaration_id"]
    assert (d["phase"], d["country"], d["counterpart_country"]) == ("import", "CN", "GB")
    assert (d["decision"], d["reason_code"], d["decided_by"]) == (
        "cleared",
        "screened_clean",
        "rules",
    )
    assert d["reason"] == reply["reason"]
    assert (d["currency"], d["total_value"]) == ("CNY", "1000.00")
    assert d["lines"] == [{**line(), "hs_code": "610910"}]
    assert d["filed_at"] and d["decided_at"] and d["allowance_reserved"] is True


async def test_repeated_import_changes_nothing_and_answers_the_same(app, client):
    first = await run(app, "FileImportDeclaration", import_body("ord_1"))
    # A re-send, even with a different body, answers the stored decision.
    again = await run(app, "FileImportDeclaration", import_body("ord_1", allowance="5.00"))
    assert again == first
    a = await allowance(client)
    assert (a["used"], a["reserved"], a["orders"]) == ("1000.00", "1000.00", 1)
    assert len(await declarations(client, "ord_1")) == 1


async def test_over_the_annual_limit_is_held_and_reserves_nothing(app, client):
    async with app.state.ctx.db.transaction() as session:
        await record_order(
            session,
            event_id="ev-1",
            country="CN",
            buyer_id=BUYER,
            order_id="ord_0",
            amount=Decimal("24000.00"),
            currency="CNY",
            occurred_at=datetime.now(UTC),
        )
    body = import_body("ord_2", allowance="2000.01", lines=[line(quantity=1, unit_value="2000.01")])
    reply_type, reply = await run(app, "FileImportDeclaration", body)
    assert reply_type == "ImportDecided"
    assert reply["decision"] == "held" and reply["reason_code"] == "allowance_exceeded"
    assert reply["allowance_reserved"] is False
    # The reason states the rule, the figures and the rule's source.
    assert "cn.cbec.retail" in reply["reason"]
    assert "26000 CNY" in reply["reason"] and "24000.00 CNY already used" in reply["reason"]
    assert "Cai Guan Shui [2016] No. 18" in reply["reason"]
    a = await allowance(client)
    assert (a["used"], a["reserved"], a["orders"]) == ("24000.00", "0.00", 1)
    [d] = await declarations(client, "ord_2")
    assert d["decision"] == "held" and d["reason"] == reply["reason"]
    assert await run(app, "FileImportDeclaration", body) == (reply_type, reply)
    # Exactly at the limit is still within it.
    ok = import_body("ord_3", allowance="2000.00")
    assert (await run(app, "FileImportDeclaration", ok))[1]["allowance_reserved"] is True
    assert (await allowance(client))["remaining"] == "0.00"


async def test_confirm_turns_the_reservation_into_a_confirmed_order(app, client):
    await run(app, "FileImportDeclaration", import_body("ord_1"))
    assert await run(app, "ConfirmAllowance", {"order_id": "ord_1"}) == (
        "AllowanceConfirmed",
        {"confirmed": True},
    )
    a = await allowance(client)
    assert (a["used"], a["reserved"], a["orders"]) == ("1000.00", "0.00", 1)
    # Idempotent: a repeat changes nothing and answers the same.
    assert await run(app, "ConfirmAllowance", {"order_id": "ord_1"}) == (
        "AllowanceConfirmed",
        {"confirmed": True},
    )
    assert (await allowance(client))["used"] == "1000.00"
    # Nothing reserved for an order: nothing to confirm.
    assert await run(app, "ConfirmAllowance", {"order_id": "ord_x"}) == (
        "AllowanceConfirmed",
        {"confirmed": False},
    )


async def test_release_frees_the_reserved_allowance(app, client):
    await run(app, "FileImportDeclaration", import_body("ord_1"))
    assert await run(app, "ReleaseAllowance", {"order_id": "ord_1"}) == (
        "AllowanceReleased",
        {"released": True},
    )
    a = await allowance(client)
    assert (a["used"], a["reserved"], a["remaining"], a["orders"]) == (
        "0.00",
        "0.00",
        "26000.00",
        0,
    )
    assert await run(app, "ReleaseAllowance", {"order_id": "ord_1"}) == (
        "AllowanceReleased",
        {"released": True},
    )
    assert await run(app, "ConfirmAllowance", {"order_id": "ord_1"}) == (
        "AllowanceConfirmed",
        {"confirmed": False},
    )
    assert (await allowance(client))["used"] == "0.00"
    assert await run(app, "ReleaseAllowance", {"order_id": "ord_x"}) == (
        "AllowanceReleased",
        {"released": False},
    )
    # The declaration itself stays on record; a re-sent filing answers it again.
    [d] = await declarations(client, "ord_1")
    assert d["decision"] == "cleared"


async def test_release_after_confirm_frees_a_returned_order(app, client):
    await run(app, "FileImportDeclaration", import_body("ord_1"))
    await run(app, "ConfirmAllowance", {"order_id": "ord_1"})
    assert await run(app, "ReleaseAllowance", {"order_id": "ord_1"}) == (
        "AllowanceReleased",
        {"released": True},
    )
    a = await allowance(client)
    assert (a["used"], a["reserved"], a["orders"]) == ("0.00", "0.00", 0)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [line(quantity=0)]}, "lines[0].quantity"),
        ({"lines": [line(quantity=1.5)]}, "lines[0].quantity"),
        ({"lines": [line(), line(unit_value="-1")]}, "lines[1].unit_value"),
        ({"lines": [line(unit_value="ten")]}, "lines[0].unit_value"),
        ({"lines": [line(hs_code="0306")]}, "lines[0].hs_code"),
        ({"country": "CHN"}, "country"),
        ({"origin": "gb"}, "origin"),
        ({"currency": "YUAN"}, "currency"),
        ({"allowance": {"amount": "-5", "currency": "CNY"}}, "allowance.amount"),
        ({"buyer_ref": None}, "buyer_ref"),
    ],
)
async def test_malformed_import_is_rejected_naming_the_field(app, client, patch, field):
    reply_type, reply = await run(app, "FileImportDeclaration", import_body("ord_1", **patch))
    assert reply_type == "ImportDecided"
    assert reply["decision"] == "rejected" and reply["reason_code"] == "invalid_declaration"
    assert reply["reason"].startswith(f"invalid declaration: {field}: "), reply["reason"]
    assert reply["declaration_id"] is None and reply["allowance_reserved"] is False
    assert await declarations(client, "ord_1") == []
    assert (await allowance(client))["used"] == "0.00"
    # Nothing was stored: a corrected filing goes through.
    fixed = await run(app, "FileImportDeclaration", import_body("ord_1"))
    assert fixed[1]["decision"] == "cleared"


async def test_a_clean_export_is_cleared_by_screening(app, client):
    reply_type, reply = await run(app, "FileExportDeclaration", export_body("ord_1"))
    assert reply_type == "ExportDecided"
    assert reply == {
        "declaration_id": reply["declaration_id"],
        "decision": "cleared",
        "reason_code": "screened_clean",
        "reason": CLEAN,
    }
    assert await run(app, "FileExportDeclaration", export_body("ord_1")) == (reply_type, reply)
    [d] = await declarations(client, "ord_1")
    assert (d["phase"], d["country"], d["counterpart_country"]) == ("export", "CN", "GB")
    # Both phases of one order are kept apart.
    await run(app, "FileImportDeclaration", import_body("ord_1"))
    assert sorted(d["phase"] for d in await declarations(client, "ord_1")) == [
        "export",
        "import",
    ]
    bad = await run(app, "FileExportDeclaration", export_body("ord_2", destination=None))
    assert bad[1]["decision"] == "rejected"
    assert bad[1]["reason"].startswith("invalid declaration: destination: ")


async def test_import_into_a_country_without_a_quota_reserves_nothing(app, client):
    body = import_body("ord_1", country="GB", origin="CN", currency="GBP")
    body["allowance"] = {"amount": "100.00", "currency": "GBP"}
    _, reply = await run(app, "FileImportDeclaration", body)
    assert reply["decision"] == "cleared" and reply["allowance_reserved"] is False
    _, reply = await run(app, "FileImportDeclaration", import_body("ord_2", allowance=None))
    assert reply["decision"] == "cleared" and reply["allowance_reserved"] is False
    assert (await allowance(client))["used"] == "0.00"


async def test_declarations_endpoint_needs_an_order_id(client):
    r = await client.get("/v1/declarations")
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "order_id" in r.json()["detail"]
    assert (await client.get("/v1/declarations", params={"order_id": "nope"})).json() == []


async def test_migration_0003_marks_existing_entries_confirmed_and_downgrades(database_url):
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_customs.migrations", "0002")
        async with db.transaction() as s:
            await s.execute(
                sa.text(
                    "INSERT INTO customs_allowance_entries (id, country, buyer_id, year, "
                    "order_id, event_id, amount, currency, occurred_at, recorded_at) VALUES "
                    "('alw_1', 'CN', 'b', 2026, 'ord_1', 'ev', 10, 'CNY', :t, :t)"
                ),
                {"t": datetime.now(UTC)},
            )
        await upgrade(db, "ehub_customs.migrations", "0003")
        assert await current_revision(db) == "0003"
        async with db.sessionmaker() as s:
            status = await s.scalar(sa.text("SELECT status FROM customs_allowance_entries"))
        assert status == "confirmed"
        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade, "0002")
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            columns = await conn.run_sync(
                lambda c: [col["name"] for col in sa.inspect(c).get_columns(ENTRIES)]
            )
        assert "customs_declarations" not in tables and "status" not in columns
        await upgrade(db, "ehub_customs.migrations", "0003")
        assert await current_revision(db) == "0003"
    finally:
        await db.dispose()


ENTRIES = "customs_allowance_entries"


def _downgrade(connection: sa.Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("ehub_customs.migrations")))
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def _replies(bootstrap: str, order_id: str, expect: int, timeout: float = 30.0) -> list:
    """The records of this hub's saga-replies topic keyed by ``order_id``."""
    consumer = AIOKafkaConsumer(
        commands.topic("CN", commands.SAGA_REPLIES),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    found: list = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            found += [r for recs in batch.values() for r in recs if r.key == order_id.encode()]
    finally:
        await consumer.stop()
    return found


async def test_commands_through_the_broker_answer_on_saga_replies(database_url, tmp_path, broker):
    settings = CustomsSettings(
        database_url=database_url,
        var_dir=tmp_path,
        hub_id="CN",
        kafka_bootstrap=broker.bootstrap,
        relay_poll_interval=0.1,
    )
    app = create_app(settings)
    order_id = f"ord_{uuid.uuid4().hex}"
    async with serve_in_process(app) as client:
        db = app.state.ctx.db
        async with db.transaction() as session:
            body = import_body(order_id)
            del body["order_id"], body["step"]
            cmd_id = await commands.send_command(
                session,
                hub_id="CN",
                stream=commands.CUSTOMS_COMMANDS,
                command="FileImportDeclaration",
                order_id=order_id,
                step="customs_import",
                body=body,
            )
        [record] = await _replies(broker.bootstrap, order_id, expect=1)
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["event_type"] == "ImportDecided"
        assert headers["event_id"] == commands.reply_id(cmd_id, "ImportDecided")
        reply = json.loads(record.value)
        assert reply == {
            "order_id": order_id,
            "step": "customs_import",
            "command_id": cmd_id,
            "declaration_id": reply["declaration_id"],
            "decision": "cleared",
            "reason_code": "screened_clean",
            "reason": CLEAN,
            "allowance_reserved": True,
        }
        [d] = await declarations(client, order_id)
        assert d["id"] == reply["declaration_id"]

        # The saga confirms once the order is committed.
        async with db.transaction() as session:
            await commands.send_command(
                session,
                hub_id="CN",
                stream=commands.CUSTOMS_COMMANDS,
                command="ConfirmAllowance",
                order_id=order_id,
                step="customs_confirm",
                body={},
            )
        records = await _replies(broker.bootstrap, order_id, expect=2)
        assert [dict(r.headers)["event_type"] for r in records] == [
            b"ImportDecided",
            b"AllowanceConfirmed",
        ]
        assert json.loads(records[1].value)["confirmed"] is True

"""Partner identity at customs (docs/partners.md): only the gateway's forwarded calls,
scopes per operation, a buyer's allowance readable only by a marketplace that placed an
order of the buyer (or the operator), the saga's commands unchanged, migration 0004.
Every refusal changes nothing. SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ehub_core.db import Database
from ehub_core.migrations import current_revision, upgrade
from ehub_core.partners import unguarded_routes
from ehub_core.testing import serve_in_process
from ehub_customs.allowances.models import AllowanceEntry
from ehub_customs.allowances.service import allowance_date, record_order
from ehub_customs.app import create_app
from ehub_customs.consumers import make_handlers
from ehub_customs.settings import CustomsSettings

TOKEN = "customs-test-internal-token"  # the internal token of conftest's `app`
A, B = "prt_alpha", "prt_bravo"
ALL = "quotes:read allowances:read declarations:read"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
BUYER = "b3f1c0de9a7e4b1f8c2d6e5a4f3b2c1d"
QUOTE = {
    "date": "2026-11-26",
    "origin": "GB",
    "destination": "CN",
    "currency": "CNY",
    "items": [
        {"hs_code": "6109.10", "quantity": 1, "unit_value": "100.00", "country_of_origin": "GB"}
    ],
}


def gw(
    partner: str | None = A, scopes: str = ALL, role: str = "marketplace", **over: str
) -> dict[str, str]:
    headers = {"X-Ehub-Gateway": TOKEN, "X-Ehub-Partner-Role": role, "X-Ehub-Scopes": scopes}
    if partner is not None:
        headers["X-Ehub-Partner"] = partner
    return headers | over


def problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


@pytest.fixture
def counts(app):
    async def _counts() -> dict[str, int]:
        out = {}
        async with app.state.ctx.db.engine.connect() as conn:
            for table in ("customs_allowance_entries", "customs_declarations", "ehub_idempotency"):
                out[table] = (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar()
        return out

    return _counts


def import_body(order_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "step": "customs_import",
        "country": "CN",
        "origin": "GB",
        "buyer_ref": BUYER,
        "currency": "CNY",
        "lines": [
            {
                "line_id": "ln_1",
                "hs_code": "6109.10",
                "description": "cotton T-shirt",
                "quantity": 2,
                "unit_value": "500.00",
                "origin_country": "GB",
            }
        ],
        "allowance": {"amount": "1000.00", "currency": "CNY"},
        **kw,
    }


async def file_import(app, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The saga's FileImportDeclaration, applied as command_consumer does."""
    handler = make_handlers(app.state.rulebook, app.state.screener)["FileImportDeclaration"]
    async with app.state.ctx.db.transaction() as session:
        return await handler(session, body)


async def entry_partner(app, order_id: str) -> str | None:
    async with app.state.ctx.db.sessionmaker() as session:
        entry = await session.scalar(
            sa.select(AllowanceEntry).where(AllowanceEntry.order_id == order_id)
        )
    assert entry is not None
    return entry.partner_id


def today() -> str:
    return allowance_date("CN", datetime.now(UTC)).isoformat()


ROUTES = [
    ("POST", "/v1/landed-cost", QUOTE, "quotes:read"),
    ("GET", "/v1/rules/CN", None, "quotes:read"),
    ("GET", f"/v1/allowances/CN/{BUYER}", None, "allowances:read"),
    ("GET", "/v1/declarations?order_id=ord_1", None, "declarations:read"),
]


async def test_without_the_gateway_credential_every_partner_route_is_401(client, counts):
    for method, path, body, _scope in ROUTES:
        for headers in (
            {},
            gw(**{"X-Ehub-Gateway": "wrong"}),
            {k: v for k, v in gw().items() if k != "X-Ehub-Gateway"},
            OPERATOR,
        ):
            r = await client.request(method, path, json=body, headers=headers)
            assert problem(r, 401)["title"] == "Gateway credential required", (method, path)
        problem(await client.request(method, path, json=body, headers=gw(partner=None)), 401)
    assert set((await counts()).values()) == {0}


@pytest.mark.parametrize("content", [b"{not json", b'{"items": "many"}', b""], ids=repr)
async def test_an_unauthenticated_malformed_body_is_401(client, content):
    headers = {"content-type": "application/json"}
    for path in ("/v1/landed-cost", "/operator/v1/landed-cost"):
        problem(await client.post(path, content=content, headers=headers), 401)
    r = await client.post(
        "/v1/landed-cost", content=content, headers=headers | gw(scopes="allowances:read")
    )
    assert problem(r, 403)["required_scope"] == "quotes:read"


async def test_missing_scope_is_403_naming_it(client, counts):
    for method, path, body, scope in ROUTES:
        others = " ".join(s for s in ALL.split() if s != scope)
        r = await client.request(method, path, json=body, headers=gw(scopes=others))
        p = problem(r, 403)
        assert p["required_scope"] == scope and repr(scope) in p["detail"], (method, path)
    assert set((await counts()).values()) == {0}


async def test_partner_routes_answer_with_their_scope(client):
    r = await client.post("/v1/landed-cost", json=QUOTE, headers=gw(scopes="quotes:read"))
    assert r.status_code == 200, r.text
    r = await client.get("/v1/rules/CN", headers=gw(scopes="quotes:read"))
    assert r.status_code == 200 and r.json()["country"] == "CN"
    r = await client.get(
        "/v1/declarations", params={"order_id": "ord_1"}, headers=gw(scopes="declarations:read")
    )
    assert r.status_code == 200 and r.json() == []


async def test_the_saga_records_the_placing_marketplace_on_the_ledger(app, client):
    reply_type, first = await file_import(app, import_body("ord_a", partner_id=A))
    assert reply_type == "ImportDecided" and first["allowance_reserved"] is True
    assert await entry_partner(app, "ord_a") == A
    # partner_id is optional: the saga's bodies without it work as before.
    _, reply = await file_import(app, import_body("ord_none"))
    assert reply["allowance_reserved"] is True
    assert await entry_partner(app, "ord_none") is None
    # Filing again changes nothing (idempotent by order), whatever the body says.
    _, again = await file_import(app, import_body("ord_a", partner_id=B))
    assert again == first
    assert await entry_partner(app, "ord_a") == A


async def test_only_the_marketplace_that_placed_reads_the_allowance(app, client, counts):
    await file_import(app, import_body("ord_a", partner_id=A))
    async with app.state.ctx.db.transaction() as session:  # the older event-driven path
        await record_order(
            session,
            event_id="ev-b",
            country="CN",
            buyer_id="buyer-of-b",
            order_id="ord_b",
            amount=Decimal("300.00"),
            currency="CNY",
            occurred_at=datetime.now(UTC),
            partner_id=B,
        )
    path, params = f"/v1/allowances/CN/{BUYER}", {"date": today()}

    r = await client.get(path, params=params, headers=gw(A))
    assert r.status_code == 200, r.text
    assert (r.json()["used"], r.json()["orders"]) == ("1000.00", 1)
    r = await client.get("/v1/allowances/CN/buyer-of-b", params=params, headers=gw(B))
    assert r.status_code == 200 and r.json()["used"] == "300.00"

    before = await counts()
    for headers, what in [
        (gw(B), "another marketplace"),
        (gw(A, role="seller"), "not a marketplace"),
        (gw("prt_charlie"), "a marketplace with no orders"),
    ]:
        p = problem(await client.get(path, params=params, headers=headers), 404)
        assert BUYER in p["detail"], what
        assert "1000" not in p["detail"]
    # A placed nothing for B's buyer: 404, exactly like a buyer nobody ordered for.
    foreign = problem(await client.get("/v1/allowances/CN/buyer-of-b", headers=gw(A)), 404)
    unknown = problem(await client.get("/v1/allowances/CN/buyer-none", headers=gw(A)), 404)
    assert foreign["detail"].replace("buyer-of-b", "X") == unknown["detail"].replace(
        "buyer-none", "X"
    )
    assert await counts() == before

    # The operator reads any buyer's; partners and the gateway credential do not open it.
    r = await client.get(f"/operator/v1/allowances/CN/{BUYER}", params=params, headers=OPERATOR)
    assert r.status_code == 200 and r.json()["used"] == "1000.00"
    for headers in ({}, gw(A), {"Authorization": "Bearer wrong"}):
        r = await client.get(f"/operator/v1/allowances/CN/{BUYER}", headers=headers)
        assert problem(r, 401)["title"] == "Operator credential required"
    r = await client.post("/operator/v1/landed-cost", json=QUOTE, headers=OPERATOR)
    assert r.status_code == 200, r.text


async def test_operator_api_is_disabled_without_the_token(database_url, tmp_path):
    app = create_app(CustomsSettings(database_url=database_url, var_dir=tmp_path))
    async with serve_in_process(app) as client:
        r = await client.get(f"/operator/v1/allowances/CN/{BUYER}", headers=OPERATOR)
        assert problem(r, 403)["title"] == "Operator API disabled"
        # Development mode: anonymous, every allowance readable.
        r = await client.get(f"/v1/allowances/CN/{BUYER}")
        assert r.status_code == 200


async def test_every_partner_and_operator_route_is_guarded(app):
    assert unguarded_routes(app) == []


def _downgrade(connection: sa.Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("ehub_customs.migrations")))
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def test_migration_0004_adds_the_partner_to_existing_entries_and_downgrades(
    database_url,
):
    db = Database(database_url)
    try:
        await upgrade(db, "ehub_customs.migrations", "0003")
        async with db.transaction() as s:
            await s.execute(
                sa.text(
                    "INSERT INTO customs_allowance_entries (id, country, buyer_id, year, "
                    "order_id, event_id, amount, currency, status, occurred_at, recorded_at) "
                    "VALUES ('alw_1', 'CN', 'b', 2026, 'ord_1', 'ev', 10, 'CNY', 'confirmed', "
                    ":t, :t)"
                ),
                {"t": datetime.now(UTC)},
            )
        await upgrade(db, "ehub_customs.migrations", "0004")
        assert await current_revision(db) == "0004"

        def inspect(c: sa.Connection) -> tuple[set[str], set[str]]:
            insp = sa.inspect(c)
            cols = {col["name"] for col in insp.get_columns("customs_allowance_entries")}
            idx = {str(i["name"]) for i in insp.get_indexes("customs_allowance_entries")}
            return cols, idx

        async with db.engine.connect() as conn:
            columns, indexes = await conn.run_sync(inspect)
            partner = await conn.scalar(sa.text("SELECT partner_id FROM customs_allowance_entries"))
        assert "partner_id" in columns and "ix_allowance_partner_buyer" in indexes
        assert partner is None  # from before partner identity: the operator's alone
        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade, "0003")
        async with db.engine.connect() as conn:
            columns, indexes = await conn.run_sync(inspect)
            kept = await conn.scalar(sa.text("SELECT id FROM customs_allowance_entries"))
        assert "partner_id" not in columns and "ix_allowance_partner_buyer" not in indexes
        assert kept == "alw_1"
        await upgrade(db, "ehub_customs.migrations", "0004")
        assert await current_revision(db) == "0004"
    finally:
        await db.dispose()

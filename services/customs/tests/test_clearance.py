"""The officer's clearance queue through the API (docs/customs.md, "The officer"):
queue, claim, decide; 409s, 403, idempotency, the outbox event the order saga reads,
the whitelist a release writes, the time-in-queue histogram. SQLite and Postgres."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app
from ehub_customs.consumers import make_handlers
from ehub_customs.settings import CustomsSettings

TOKEN = "customs-test-internal-token"
OFFICER_A, OFFICER_B = "prt_officer_a", "prt_officer_b"
OFFICER_SCOPES = "declarations:read clearance:read clearance:write"
LOBSTER = {
    "line_id": "ln_1",
    "hs_code": "0306.32",
    "description": "Live Atlantic lobster, 1 lb",
    "quantity": 10,
    "unit_value": "45.00",
    "origin_country": "CA",
}
SHIP_TO = {"name": "Li Wei", "street": ["88 Century Avenue"], "city": "Shanghai", "country": "CN"}


def gw(
    partner: str = OFFICER_A, scopes: str = OFFICER_SCOPES, role: str = "officer"
) -> dict[str, str]:
    return {
        "X-Ehub-Gateway": TOKEN,
        "X-Ehub-Partner": partner,
        "X-Ehub-Partner-Role": role,
        "X-Ehub-Scopes": scopes,
    }


def problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


@pytest.fixture
async def app(database_url, tmp_path):
    return create_app(
        CustomsSettings(
            database_url=database_url,
            var_dir=tmp_path,
            internal_token=TOKEN,
            screening_restricted="hold",
        )
    )


@pytest.fixture
async def client(app):
    async with serve_in_process(app) as c:
        yield c


async def file_import(app, order_id: str, **kw: Any) -> dict[str, Any]:
    handler = make_handlers(app.state.rulebook, app.state.screener)["FileImportDeclaration"]
    body = {
        "order_id": order_id,
        "step": "import",
        "country": "CN",
        "origin": "CA",
        "buyer_ref": f"buyer-{order_id}",
        "currency": "CAD",
        "lines": [LOBSTER],
        "allowance": None,
        "consignee": SHIP_TO,
        **kw,
    }
    async with app.state.ctx.db.transaction() as session:
        _, reply = await handler(session, body)
    return reply


async def events(app) -> list[dict[str, Any]]:
    async with app.state.ctx.db.engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT topic, key, event_type, payload FROM ehub_outbox ORDER BY created_at")
        )
        return [
            {"topic": t, "key": k, "type": e, "body": json.loads(bytes(p))}
            for t, k, e, p in rows.all()
            if t == "ehub.cn.clearance"
        ]


def observed(decision: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "ehub_customs_clearance_queue_seconds_count", {"hub": "CN", "decision": decision}
        )
        or 0.0
    )


async def test_an_officer_release_moves_the_order_on(app, client):
    # Live lobster into CN without a quarantine permit (cn.goods.live-crustaceans) is held.
    reply = await file_import(app, "ord_lobster")
    assert (reply["decision"], reply["reason_code"]) == ("held", "restricted_goods")
    dcl = reply["declaration_id"]

    r = await client.get("/v1/clearance/queue", headers=gw())
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["id"] == dcl and item["decision"] == "held" and item["claimed_by"] is None
    [hit] = item["hits"]
    assert (hit["rule"], hit["outcome"], hit["category"]) == (
        "cn.goods.live-crustaceans",
        "restricted",
        "goods",
    )

    r = await client.post(f"/v1/clearance/{dcl}/claim", headers=gw())
    assert r.status_code == 200 and r.json()["claimed_by"] == OFFICER_A
    # Claiming again is no change; another officer's claim or decision is a conflict.
    assert (await client.post(f"/v1/clearance/{dcl}/claim", headers=gw())).status_code == 200
    p = problem(await client.post(f"/v1/clearance/{dcl}/claim", headers=gw(OFFICER_B)), 409)
    assert p["title"] == "Claimed by another officer" and p["claimed_by"] == OFFICER_A
    body = {"decision": "release", "reason": "quarantine permit GACC-P-2026-0042 presented"}
    problem(await client.post(f"/v1/clearance/{dcl}/decide", json=body, headers=gw(OFFICER_B)), 409)

    before = observed("release")
    r = await client.post(f"/v1/clearance/{dcl}/decide", json=body, headers=gw())
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["decision"], d["reason_code"], d["decided_by"]) == (
        "cleared",
        "officer_released",
        f"officer:{OFFICER_A}",
    )
    assert observed("release") == before + 1
    [event] = await events(app)
    assert (event["key"], event["type"]) == ("ord_lobster", "ClearanceDecided")
    assert event["body"] | {"decided_at": None} == {
        "order_id": "ord_lobster",
        "declaration_id": dcl,
        "phase": "import",
        "country": "CN",
        "decision": "cleared",
        "officer_decision": "release",
        "reason_code": "officer_released",
        "reason": f"release by {OFFICER_A}: quarantine permit GACC-P-2026-0042 presented",
        "decided_by": f"officer:{OFFICER_A}",
        "decided_at": None,
    }

    # The same decision again changes nothing: no second event, no second observation.
    again = await client.post(f"/v1/clearance/{dcl}/decide", json=body, headers=gw())
    assert again.status_code == 200 and again.json() == d
    assert len(await events(app)) == 1 and observed("release") == before + 1
    # Another decision on a decided declaration is a conflict.
    p = problem(
        await client.post(
            f"/v1/clearance/{dcl}/decide", json={"decision": "reject", "reason": "x"}, headers=gw()
        ),
        409,
    )
    assert p["title"] == "Declaration already decided" and p["decision"] == "cleared"
    # The saga's re-sent command answers the officer's decision.
    assert (await file_import(app, "ord_lobster"))["decision"] == "cleared"
    assert (await client.get("/v1/clearance/queue", headers=gw())).json()["items"] == []


async def test_inspect_keeps_it_queued_and_a_rejection_is_final(app, client):
    dcl = (await file_import(app, "ord_1"))["declaration_id"]
    r = await client.post(
        f"/v1/clearance/{dcl}/decide",
        json={"decision": "inspect", "reason": "open the crate"},
        headers=gw(),
    )
    assert r.json()["decision"] == "inspect" and r.json()["claimed_by"] == OFFICER_A
    r = await client.get("/v1/clearance/queue", params={"state": "inspect"}, headers=gw())
    assert [x["id"] for x in r.json()["items"]] == [dcl]
    r = await client.post(
        f"/v1/clearance/{dcl}/decide",
        json={"decision": "reject", "reason": "no permit on inspection"},
        headers=gw(),
    )
    assert (r.json()["decision"], r.json()["reason_code"]) == ("rejected", "officer_rejected")
    assert [e["body"]["decision"] for e in await events(app)] == ["inspect", "rejected"]


async def test_queue_filters_and_pages(app, client):
    ids = [(await file_import(app, f"ord_{i}"))["declaration_id"] for i in range(3)]
    cheap = await file_import(
        app,
        "ord_phone",
        lines=[
            {**LOBSTER, "hs_code": "8517.13", "description": "smartphone", "unit_value": "1.00"}
        ],
    )
    assert cheap["reason_code"] == "undervalued"
    page = (await client.get("/v1/clearance/queue", params={"limit": 2}, headers=gw())).json()
    assert [x["id"] for x in page["items"]] == ids[:2] and page["next_cursor"]
    nxt = await client.get(
        "/v1/clearance/queue", params={"limit": 2, "cursor": page["next_cursor"]}, headers=gw()
    )
    assert [x["id"] for x in nxt.json()["items"]] == [ids[2], cheap["declaration_id"]]
    assert nxt.json()["next_cursor"] is None
    r = await client.get("/v1/clearance/queue", params={"reason": "undervalued"}, headers=gw())
    assert [x["id"] for x in r.json()["items"]] == [cheap["declaration_id"]]
    problem(
        await client.get("/v1/clearance/queue", params={"cursor": "nonsense!"}, headers=gw()), 422
    )


async def test_without_the_officer_scopes_nothing_changes(app, client):
    dcl = (await file_import(app, "ord_1"))["declaration_id"]
    marketplace = gw("prt_market", "declarations:read quotes:read", "marketplace")
    p = problem(await client.get("/v1/clearance/queue", headers=marketplace), 403)
    assert p["required_scope"] == "clearance:read"
    body = {"decision": "release", "reason": "x"}
    p = problem(
        await client.post(f"/v1/clearance/{dcl}/decide", json=body, headers=marketplace), 403
    )
    assert p["required_scope"] == "clearance:write"
    read_only = gw(scopes="clearance:read")
    problem(await client.post(f"/v1/clearance/{dcl}/claim", headers=read_only), 403)
    problem(await client.post("/v1/clearance/dcl_unknown/claim", headers=gw()), 404)
    r = await client.get("/v1/declarations", params={"order_id": "ord_1"}, headers=gw())
    assert r.json()[0]["decision"] == "held" and r.json()[0]["claimed_by"] is None
    assert await events(app) == []


async def test_a_release_whitelists_the_party_hits_for_the_next_screening(app, client):
    # UN CDi.001 ERIC BADEGE: "Erik Badege" is a review hit (90.9).
    erik = {**SHIP_TO, "name": "Erik Badege"}
    tee = {**LOBSTER, "hs_code": "6109.10", "description": "cotton T-shirt", "unit_value": "20.00"}
    first = await file_import(app, "ord_1", consignee=erik, lines=[tee])
    assert (first["decision"], first["reason_code"]) == ("held", "denied_party_review")
    r = await client.post(
        f"/v1/clearance/{first['declaration_id']}/decide",
        json={"decision": "release", "reason": "a different person: born 1990, Shanghai resident"},
        headers=gw(),
    )
    assert r.status_code == 200
    second = await file_import(app, "ord_2", consignee=erik, lines=[tee])
    assert (second["decision"], second["reason_code"]) == ("cleared", "screened_clean")
    assert "cleared before by an officer (whitelist)" in second["reason"]
    r = await client.get("/v1/declarations", params={"order_id": "ord_2"}, headers=gw())
    assert [h["outcome"] for h in r.json()[0]["hits"]] == ["whitelisted"]


async def test_a_clean_declaration_is_not_in_the_queue(app, client):
    permit = [{"type": "quarantine_permit", "reference": "GACC-P-1", "hs": "0306"}]
    reply = await file_import(app, "ord_ok", documents=permit)
    assert reply["decision"] == "cleared"
    p = problem(
        await client.post(
            f"/v1/clearance/{reply['declaration_id']}/decide",
            json={"decision": "release", "reason": "x"},
            headers=gw(),
        ),
        409,
    )
    assert p["decision"] == "cleared"

"""Three-record matching (declarations/records.py): order, payment and waybill must agree
before a cross-border retail import is released; a waybill known only after the
pre-declaration completes the match when it arrives. Worked by hand; SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ehub_customs.consumers import make_handlers
from ehub_customs.declarations.records import WaybillRecord, attach_waybill

TOKEN = "customs-test-internal-token"  # the internal token of conftest's `app`
GW = {
    "X-Ehub-Gateway": TOKEN,
    "X-Ehub-Partner": "prt_officer_a",
    "X-Ehub-Partner-Role": "officer",
    "X-Ehub-Scopes": "declarations:read clearance:read clearance:write",
}
TEE = {
    "line_id": "ln_1",
    "hs_code": "6109.10",
    "description": "cotton T-shirt",
    "quantity": 2,
    "unit_value": "150.00",
    "origin_country": "CA",
}
BUYER = "sha256:4f1c2a9e0b7d"
ORDER = {
    "goods": "300.00",
    "shipping": "20.00",
    "tax": "29.12",
    "total": "349.12",
    "buyer_id_hash": BUYER,
    "consignee": "Li Wei",
}
PAYMENT = {"amount": "349.12", "payer_id_hash": BUYER, "reference": "pay_1"}
WAYBILL = {"tracking_number": "CP123456789CA", "consignee": "LI  WEI"}


async def file_import(app, order_id: str, records: Any) -> dict[str, Any]:
    handler = make_handlers(app.state.rulebook, app.state.screener)["FileImportDeclaration"]
    body = {
        "order_id": order_id,
        "country": "CN",
        "origin": "CA",
        "buyer_ref": f"buyer-{order_id}",
        "currency": "CAD",
        "lines": [TEE],
        "consignee": {"name": "Li Wei", "city": "Shanghai", "country": "CN"},
        "records": records,
    }
    async with app.state.ctx.db.transaction() as session:
        _, reply = await handler(session, body)
    return reply


async def hits(client, order_id: str) -> list[dict[str, Any]]:
    r = await client.get("/v1/declarations", params={"order_id": order_id}, headers=GW)
    return r.json()[0]["hits"]


def records(**changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"order": ORDER, "payment": PAYMENT, "waybill": WAYBILL}
    for key, patch in changes.items():
        out[key] = None if patch is None else {**out[key], **patch}
    return out


async def test_agreeing_records_clear_and_say_so(app, client):
    reply = await file_import(app, "ord_ok", records())
    assert (reply["decision"], reply["reason_code"]) == ("cleared", "screened_clean")
    [hit] = await hits(client, "ord_ok")
    assert (hit["outcome"], hit["rule"]) == ("matched", "cn.cbec.three_records")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payment": {"amount": "349.14"}}, "records.payment.amount"),  # 0.02 > 0.01
        ({"order": {"goods": "299.98"}}, "records.order.goods"),  # lines 2 x 150.00
        ({"payment": {"payer_id_hash": "sha256:99aa00bb11cc"}}, "records.payment.payer_id_hash"),
        ({"waybill": {"consignee": "Wang Fang"}}, "records.waybill.consignee"),
    ],
)
async def test_a_mismatch_holds_the_declaration_naming_the_field(app, client, changes, field):
    reply = await file_import(app, "ord_bad", records(**changes))
    assert (reply["decision"], reply["reason_code"]) == ("held", "records_mismatch")
    assert f"disagree on {field}:" in reply["reason"]
    [hit] = await hits(client, "ord_bad")
    assert hit["outcome"] == "mismatch" and hit["reason"].startswith(field)
    queue = (await client.get("/v1/clearance/queue", headers=GW)).json()["items"]
    assert [d["order_id"] for d in queue] == ["ord_bad"]


async def test_within_the_tolerance_of_one_cent_it_agrees(app, client):
    reply = await file_import(app, "ord_cent", records(payment={"amount": "349.13"}))
    assert reply["decision"] == "cleared"


async def test_a_late_waybill_completes_the_match(app, client):
    first = await file_import(app, "ord_a", records(waybill=None))
    second = await file_import(app, "ord_b", records(waybill=None))
    assert first["decision"] == second["decision"] == "cleared"
    assert [h["outcome"] for h in await hits(client, "ord_a")] == ["awaiting_waybill"]
    now = datetime.now(UTC)
    async with app.state.ctx.db.transaction() as session:
        same = WaybillRecord(tracking_number="CP1CA", consignee="li wei")
        d = await attach_waybill(session, order_id="ord_a", waybill=same, now=now)
        assert d is not None and d.decision == "cleared"
        other = WaybillRecord(tracking_number="CP2CA", consignee="Zhang San")
        d = await attach_waybill(session, order_id="ord_b", waybill=other, now=now)
        assert d is not None and (d.decision, d.reason_code) == ("held", "records_mismatch")
        assert "records.waybill.consignee" in d.reason
        # The same waybill again changes nothing; an unknown order is not an error.
        assert await attach_waybill(session, order_id="ord_b", waybill=other, now=now) is d
        assert await attach_waybill(session, order_id="ord_x", waybill=other, now=now) is None
    assert [h["outcome"] for h in await hits(client, "ord_a")] == ["awaiting_waybill", "matched"]
    assert [h["outcome"] for h in await hits(client, "ord_b")] == ["awaiting_waybill", "mismatch"]
    queue = (await client.get("/v1/clearance/queue", headers=GW)).json()["items"]
    assert [x["order_id"] for x in queue] == ["ord_b"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"order": ORDER}, "records.payment"),
        (records(payment={"amount": "-1"}), "records.payment.amount"),
        (records(order={"buyer_id_hash": "x"}), "records.order.buyer_id_hash"),
        (records(waybill={"tracking_number": ""}), "records.waybill.tracking_number"),
        ({**records(), "invoice": {}}, "records.invoice"),
    ],
)
async def test_malformed_records_are_rejected_naming_the_field_and_nothing_is_stored(
    app, client, bad, field
):
    reply = await file_import(app, "ord_m", bad)
    assert (reply["decision"], reply["reason_code"]) == ("rejected", "invalid_declaration")
    assert f"{field}:" in reply["reason"]
    r = await client.get("/v1/declarations", params={"order_id": "ord_m"}, headers=GW)
    assert r.json() == []

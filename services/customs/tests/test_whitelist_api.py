"""The officers' whitelist API (docs/customs.md, "Whitelist"): list, add, remove; who,
when and why; a row clears the next fuzzy hit on the same party and the declaration names
it; bad input is a precise 4xx that records nothing. SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import pytest

from ehub_customs.consumers import make_handlers

TOKEN = "customs-test-internal-token"  # the internal token of conftest's `app`
OFFICER = "prt_officer_a"
SCOPES = "declarations:read clearance:read clearance:write"
BADEGE = "un-consolidated:CDi.001"  # UN Consolidated List: ERIC BADEGE
TEE = {
    "line_id": "ln_1",
    "hs_code": "6109.10",
    "description": "cotton T-shirt",
    "quantity": 1,
    "unit_value": "20.00",
    "origin_country": "CA",
}
ERIK = {"name": "Erik Badege", "street": ["88 Century Avenue"], "city": "Shanghai", "country": "CN"}


def gw(scopes: str = SCOPES, partner: str = OFFICER) -> dict[str, str]:
    return {
        "X-Ehub-Gateway": TOKEN,
        "X-Ehub-Partner": partner,
        "X-Ehub-Partner-Role": "officer",
        "X-Ehub-Scopes": scopes,
    }


def problem(r, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return r.json()


async def file_import(app, order_id: str, consignee: dict[str, Any]) -> dict[str, Any]:
    handler = make_handlers(app.state.rulebook, app.state.screener)["FileImportDeclaration"]
    body = {
        "order_id": order_id,
        "country": "CN",
        "origin": "CA",
        "buyer_ref": f"buyer-{order_id}",
        "currency": "CAD",
        "lines": [TEE],
        "consignee": consignee,
    }
    async with app.state.ctx.db.transaction() as session:
        _, reply = await handler(session, body)
    return reply


async def rows(client) -> list[dict[str, Any]]:
    r = await client.get("/v1/screening/whitelist", headers=gw())
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_an_officer_whitelists_a_party_and_the_next_screening_names_the_entry(app, client):
    held = await file_import(app, "ord_1", ERIK)
    assert (held["decision"], held["reason_code"]) == ("held", "denied_party_review")
    why = "not the listed person: Shanghai resident, born 1990, passport checked"
    r = await client.post(
        "/v1/screening/whitelist",
        json={"name": "ERIK  Badege", "entry": BADEGE, "reason": why},
        headers=gw(),
    )
    assert r.status_code == 201, r.text
    row = r.json()
    assert (row["subject"], row["entry"], row["reason"]) == ("erik badege", BADEGE, why)
    assert row["added_by"] == OFFICER and row["declaration_id"] is None and row["added_at"]
    assert await rows(client) == [row]

    cleared = await file_import(app, "ord_2", ERIK)
    assert (cleared["decision"], cleared["reason_code"]) == ("cleared", "screened_clean")
    r = await client.get("/v1/declarations", params={"order_id": "ord_2"}, headers=gw())
    [hit] = r.json()[0]["hits"]
    assert hit["outcome"] == "whitelisted"
    assert f"whitelist entry {row['id']} by {OFFICER}" in hit["reason"] and why in hit["reason"]

    # Removing it: the same party is held again.
    r = await client.delete(f"/v1/screening/whitelist/{row['id']}", headers=gw())
    assert r.status_code == 200 and r.json()["id"] == row["id"]
    assert await rows(client) == []
    again = await file_import(app, "ord_3", ERIK)
    assert again["reason_code"] == "denied_party_review"
    problem(await client.delete(f"/v1/screening/whitelist/{row['id']}", headers=gw()), 404)


async def test_filters_and_pages(client):
    for name in ("Erik Badege", "Eric Badegi", "Eryk Badege"):
        r = await client.post(
            "/v1/screening/whitelist",
            json={"name": name, "entry": BADEGE, "reason": "checked"},
            headers=gw(),
        )
        assert r.status_code == 201, r.text
    r = await client.get("/v1/screening/whitelist", params={"limit": 2}, headers=gw())
    page = r.json()
    assert [x["subject"] for x in page["items"]] == ["erik badege", "eric badegi"]
    r = await client.get(
        "/v1/screening/whitelist", params={"after": page["next_after"]}, headers=gw()
    )
    assert [x["subject"] for x in r.json()["items"]] == ["eryk badege"]
    assert r.json()["next_after"] is None
    r = await client.get("/v1/screening/whitelist", params={"name": "ERIC BADEGI"}, headers=gw())
    assert [x["subject"] for x in r.json()["items"]] == ["eric badegi"]


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"name": "Erik Badege", "entry": "ofac-sdn:999999999", "reason": "x"}, 422, "entry"),
        ({"name": "Erik Badege", "entry": "no colon", "reason": "x"}, 422, "entry"),
        ({"name": "Eric Badege", "entry": BADEGE, "reason": "x"}, 422, "name"),  # a match
        ({"name": "...", "entry": BADEGE, "reason": "x"}, 422, "name"),
        ({"name": "Erik Badege", "entry": BADEGE, "reason": ""}, 422, "reason"),
        ({"name": "Erik Badege", "entry": BADEGE}, 422, "reason"),
        ({"name": "Erik Badege", "entry": BADEGE, "reason": "x", "by": "me"}, 422, "by"),
    ],
)
async def test_bad_input_names_the_field_and_records_nothing(client, body, status, names):
    p = problem(await client.post("/v1/screening/whitelist", json=body, headers=gw()), status)
    assert names in p["detail"] or any(e.get("field") == names for e in p.get("errors", []))
    assert await rows(client) == []


async def test_the_same_pair_twice_is_a_conflict(client):
    body = {"name": "Erik Badege", "entry": BADEGE, "reason": "checked"}
    first = await client.post("/v1/screening/whitelist", json=body, headers=gw())
    p = problem(await client.post("/v1/screening/whitelist", json=body, headers=gw()), 409)
    assert p["id"] == first.json()["id"] and p["type"].endswith("already-whitelisted")
    assert len(await rows(client)) == 1


async def test_scopes_read_to_list_write_to_change(client):
    body = {"name": "Erik Badege", "entry": BADEGE, "reason": "checked"}
    p = problem(
        await client.post(
            "/v1/screening/whitelist", json=body, headers=gw("declarations:read clearance:read")
        ),
        403,
    )
    assert "clearance:write" in p["detail"]
    problem(await client.get("/v1/screening/whitelist", headers=gw("declarations:read")), 403)
    problem(await client.delete("/v1/screening/whitelist/1", headers=gw("clearance:read")), 403)
    problem(await client.delete("/v1/screening/whitelist/0", headers=gw()), 422)
    assert await rows(client) == []


@pytest.mark.parametrize("after", [str(2**70), "-1", "x"])
async def test_a_page_marker_out_of_range_is_422_not_a_database_error(client, after):
    """Found by the fuzzer: 2**70 reached SQLite as an integer it cannot hold (a 500)."""
    r = await client.get("/v1/screening/whitelist", params={"after": after}, headers=gw())
    body = problem(r, 422)
    assert any(e["loc"][-1] == "after" for e in body["errors"]), body

"""The isolation matrix, through a hub's gateway on a real local network: every partner
operation x (owner, another partner, no key, revoked key, missing scope) answers what it
must, and no refusal changes a row anywhere in the hub."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

TABLES = {
    "catalog": ("sellers", "products", "stock_reservations", "ehub_idempotency"),
    "customs": ("customs_allowance_entries", "customs_declarations", "ehub_idempotency"),
    "logistics": ("logistics_shipments", "logistics_tracking_events", "ehub_idempotency"),
    "gateway": ("orders", "partners", "partner_keys", "webhook_endpoints", "ehub_idempotency"),
}


@dataclass
class Hub:
    var: Path
    manifest: dict[str, Any]
    http: httpx.Client

    @property
    def gw(self) -> str:
        return str(self.manifest["hubs"]["CA"]["gateway"]["url"])

    def partner(self, name: str, role: str, **extra: Any) -> dict[str, Any]:
        resp = self.http.post(
            f"{self.gw}/operator/v1/partners",
            json={"name": name, "role": role, **extra},
            headers={"Authorization": f"Bearer {self.manifest['internal_token']}"},
        )
        assert resp.status_code == 201, resp.text
        made: dict[str, Any] = resp.json()
        return made

    def counts(self) -> dict[str, int]:
        out = {}
        for service, tables in TABLES.items():
            with sqlite3.connect(
                f"file:{self.var / 'ca' / f'{service}.db'}?mode=ro", uri=True
            ) as c:
                names = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
                for t in tables:
                    assert t in names, f"{service} has no table {t}"
                    out[f"{service}.{t}"] = c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    var = tmp_path_factory.mktemp("matrix") / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHUB_")}
    env["EHUB_PARTNER_RELOAD_INTERVAL"] = "0.2"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ehub_cli",
            "network",
            "up",
            "--hubs",
            "CN,CA",
            "--base-port",
            "0",
            "--var-dir",
            str(var),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    while not (var / "network.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("network did not come up")
        time.sleep(0.3)
    with httpx.Client(timeout=30) as http:
        yield Hub(var, json.loads((var / "network.json").read_text()), http)
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


SHIP_FROM = {
    "name": "Maple Co.",
    "street": ["1 Main St"],
    "city": "Halifax",
    "postal_code": "B3J 1R7",
    "country": "CA",
}


def test_every_operation_answers_each_kind_of_caller(hub: Hub) -> None:
    owner = hub.partner("Maple Co.", "seller")
    other = hub.partner("Other Co.", "seller")
    carrier = hub.partner("Courier", "carrier")  # shipments:read only
    officer = hub.partner("Customs officer", "officer")  # declarations and clearance
    revoked = hub.partner("Gone Co.", "seller")
    hub.http.delete(
        f"{hub.gw}/operator/v1/keys/{revoked['key']['key_id']}",
        headers={"Authorization": f"Bearer {hub.manifest['internal_token']}"},
    ).raise_for_status()
    keys = {
        "owner": owner["key"]["key"],
        "other": other["key"]["key"],
        "no key": None,
        "revoked": revoked["key"]["key"],
        "missing scope": carrier["key"]["key"],
        "officer": officer["key"]["key"],
    }

    def call(who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {keys[who]}"} if keys[who] else {}
        return hub.http.request(method, hub.gw + path, json=body, headers=headers)

    # The owner's resources.
    seller = call(
        "owner",
        "POST",
        "/v1/sellers",
        {"name": "Maple Co.", "country": "CA", "ship_from": SHIP_FROM},
    )
    assert seller.status_code == 201, seller.text
    sid = seller.json()["id"]
    product_body = {
        "seller_id": sid,
        "title": "Maple syrup",
        "hs_code": "170220",
        "origin_country": "CA",
        "price": "12.00",
        "currency": "CAD",
        "weight_kg": "0.700",
        "stock": 10,
    }
    product = call("owner", "POST", "/v1/products", product_body)
    assert product.status_code == 201, product.text
    pid = product.json()["id"]
    shipment_body = {
        "carrier": "postal",
        "service": "surface_parcel",
        "shipper": SHIP_FROM,
        "recipient": {
            "name": "Li Wei",
            "street": ["88 Century Avenue"],
            "city": "Shanghai",
            "postal_code": "200120",
            "country": "CN",
        },
        "parcels": [{"weight": "1", "length": 30, "width": 20, "height": 15}],
        "customs": {
            "currency": "CAD",
            "items": [
                {
                    "description": "Maple syrup",
                    "hs_code": "170220",
                    "quantity": 1,
                    "unit_value": "12.00",
                    "origin_country": "CA",
                }
            ],
        },
    }
    shipment = call("owner", "POST", "/v1/shipments", shipment_body)
    assert shipment.status_code == 201, shipment.text
    shp = shipment.json()["id"]
    quote = {
        "origin": "CA",
        "destination": "CN",
        "date": "2026-12-01",
        "currency": "CAD",
        "items": [
            {"hs_code": "170220", "quantity": 1, "unit_value": "12.00", "country_of_origin": "CA"}
        ],
    }

    # operation -> expected status per caller (None: not asked of that caller)
    matrix: list[tuple[str, str, Any, dict[str, int | None]]] = [
        (
            "GET",
            f"/v1/sellers/{sid}",
            None,
            {"owner": 200, "other": 404, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "GET",
            f"/v1/products/{pid}",
            None,
            {"owner": 200, "other": 404, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "PATCH",
            f"/v1/products/{pid}",
            {"stock": 40},
            {"owner": 200, "other": 404, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/products",
            {**product_body, "title": "Second syrup"},
            {"other": 422, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/sellers",
            {"name": "X", "country": "CA"},
            {"no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/sellers",
            {"name": "X", "country": "CA", "sme_verified": True},
            {"owner": 422},
        ),  # only the operator says who is a verified SME
        (
            "GET",
            f"/v1/shipments/{shp}",
            None,
            {"owner": 200, "other": 404, "no key": 401, "revoked": 401},
        ),
        (
            "GET",
            f"/v1/shipments/{shp}/label.pdf",
            None,
            {"owner": 200, "other": 404, "no key": 401, "revoked": 401},
        ),
        (
            "POST",
            f"/v1/shipments/{shp}/cancel",
            None,
            {"other": 404, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/shipments",
            shipment_body,
            {"no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/landed-cost",
            quote,
            {"owner": 200, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/rates",
            {
                "origin": {"country": "CA"},
                "destination": {"country": "CN"},
                "parcels": [{"weight": "1", "length": 1, "width": 1, "height": 1}],
                "declared_value": {"amount": "1", "currency": "CAD"},
            },
            {"owner": 200, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "GET",
            "/v1/orders",
            None,
            {"owner": 200, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/webhooks",
            {"url": "https://example.com/h", "event_types": ["label.ready"]},
            {"no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "GET",
            "/v1/clearance/queue",
            None,
            {"officer": 200, "owner": 403, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/clearance/dcl_notthere/claim",
            None,
            {"officer": 404, "owner": 403, "no key": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/clearance/dcl_notthere/decide",
            {"decision": "release", "reason": "documents seen"},
            {"officer": 404, "owner": 403, "no key": 401, "missing scope": 403},
        ),
        (
            "GET",
            "/v1/screening/whitelist",
            None,
            {"officer": 200, "owner": 403, "no key": 401, "revoked": 401, "missing scope": 403},
        ),
        (
            "POST",
            "/v1/screening/whitelist",
            {},
            {"officer": 422, "owner": 403, "no key": 401, "missing scope": 403},
        ),
        (
            "DELETE",
            "/v1/screening/whitelist/999999",
            None,
            {"officer": 404, "owner": 403, "no key": 401, "missing scope": 403},
        ),
    ]
    failures = []
    for method, path, body, expected in matrix:
        for who, status in expected.items():
            before = hub.counts() if status and status >= 400 else None
            got = call(who, method, path, body)
            if got.status_code != status:
                failures.append(
                    f"{method} {path} as {who}: {got.status_code} (wanted {status}) "
                    + got.text[:200]
                )
                continue
            if status >= 400:
                assert got.headers["content-type"].startswith("application/problem+json"), got.text
                after = hub.counts()
                if after != before:
                    failures.append(f"{method} {path} as {who}: rows changed {before} -> {after}")
    assert not failures, "\n".join(failures)

    # Lists show only one's own.
    mine = call("owner", "GET", f"/v1/products?seller_id={sid}").json()["items"]
    theirs = call("other", "GET", f"/v1/products?seller_id={sid}").json()["items"]
    assert [p["id"] for p in mine] == [pid] and theirs == []

"""Cross-border orders end to end: `ehub network up` with two hubs (CN buys, CA sells),
real processes, real broker, real HTTP. Each test drives the order through the gateways'
``/v1/orders`` API with partner keys (a marketplace of its own at CN, a seller partner of
its own at CA; the demo seller's key for the demo lobster), and checks its effects
through the hubs' own reads: catalog stock, customs allowances and logistics shipments
on the services' operator API, declarations through the gateway with an officer's key.

Every test has its own seller/product (and buyer identity), so stock and allowance
figures can be compared exactly; polling is generous because the machine may be slow.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehub_gateway.orders.schemas import OrderCreate
from ehub_gateway.orders.service import buyer_ref
from tests.federation_harness import gateway_env, wait_until

pytestmark = pytest.mark.slow

BUYER, SELLER = "CN", "CA"
FLOW = 120.0  # seconds an order may take to get somewhere on a loaded machine
PROBLEM = "application/problem+json"
TIMINGS = {
    "EHUB_CARRIER_SIMULATION_INTERVAL": "0.5",
    "EHUB_CARRIER_SIMULATOR_SCENARIO": "delivered",  # the tests below follow delivered parcels
    "EHUB_RELAY_POLL_INTERVAL": "0.1",
    "EHUB_SAGA_RESEND_AFTER": "5",
    "EHUB_TRUST_RELOAD_INTERVAL": "0.5",
}
SHIP_FROM = {
    "name": "Bay of Fundy Seafood",
    "street": ["200 Water St"],
    "city": "Saint John",
    "state": "NB",
    "postal_code": "E2L 4S1",
    "country": "CA",
    "phone": "+1 506 555 0100",
}


@dataclass
class Net:
    var: Path
    manifest: dict[str, Any]
    http: httpx.Client
    keys: dict[str, str] = field(default_factory=dict)  # hub -> this module's partner key
    officers: dict[str, str] = field(default_factory=dict)  # hub -> an officer's key
    order_keys: dict[str, str] = field(default_factory=dict)  # order -> CA key, if not ours

    def url(self, hub: str, service: str) -> str:
        return str(self.manifest["hubs"][hub][service]["url"])

    def gw(self, hub: str) -> str:
        return self.url(hub, "gateway")

    @property
    def demo(self) -> dict[str, str]:
        return dict(self.manifest["demo"][SELLER])

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.manifest['internal_token']}"}

    def auth(self, hub: str, order_id: str | None = None) -> dict[str, str]:
        """The key of the partner whose order it is at ``hub`` (ours unless noted)."""
        key = self.keys[hub]
        if hub == SELLER and order_id in self.order_keys:
            key = self.order_keys[order_id]
        return {"Authorization": f"Bearer {key}"}

    def get(self, hub: str, path: str, order_id: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.get(f"{self.gw(hub)}{path}", headers=self.auth(hub, order_id), **kw)

    def post(self, hub: str, path: str, order_id: str | None = None, **kw: Any) -> httpx.Response:
        headers = {**self.auth(hub, order_id), **kw.pop("headers", {})}
        return self.http.post(f"{self.gw(hub)}{path}", headers=headers, **kw)

    def partner(self, hub: str, role: str) -> dict[str, Any]:
        """A new partner of ``hub`` (the gateway's operator API) with its first key."""
        r = self.http.post(
            f"{self.gw(hub)}/operator/v1/partners",
            json={"name": f"orders test {role} {uuid.uuid4().hex[:6]}", "role": role},
            headers=self.operator,
        )
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created

    def logs(self, needle: str) -> str:
        """Log lines of every service mentioning ``needle`` (for failure messages)."""
        out = []
        for path in sorted((self.var / "logs").glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if needle in line:
                    out.append(f"{path.name}: {line}")
        return "\n".join(out[-40:])


def order_body(
    product_id: str,
    seller_id: str,
    *,
    quantity: int = 1,
    identity: str | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    return {
        "seller_hub": SELLER,
        "seller_id": seller_id,
        "partner_reference": reference or f"t-{uuid.uuid4().hex[:12]}",
        "buyer": {
            "id": f"buyer-{uuid.uuid4().hex[:8]}",
            # Each order its own person, so the allowance figures are the test's own.
            "identity_number": identity or f"T{uuid.uuid4().hex[:17].upper()}",
        },
        "ship_to": {
            "name": "Li Wei",
            "street": ["88 Century Avenue"],
            "city": "Shanghai",
            "postal_code": "200120",
            "country": BUYER,
            "phone": "+86 21 5555 0100",
        },
        "lines": [{"product_id": product_id, "quantity": quantity}],
        "currency": "CNY",
    }


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    var = tmp_path_factory.mktemp("orders") / "var"
    var.mkdir()
    out = (var / "supervisor.out").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ehub_cli",
            "network",
            "up",
            "--hubs",
            f"{BUYER},{SELLER}",
            "--base-port",
            "0",
            "--var-dir",
            str(var),
        ],
        env=gateway_env(**TIMINGS),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        manifest_path = var / "network.json"
        deadline = time.monotonic() + 240  # the supervisor itself waits up to 180 s
        while not manifest_path.exists():
            if proc.poll() is not None:
                pytest.fail(
                    f"network exited early ({proc.returncode}): "
                    + (var / "supervisor.out").read_text()
                )
            if time.monotonic() > deadline:
                pytest.fail("network did not come up within 240 s")
            time.sleep(0.2)
        manifest = wait_until(
            lambda: _read_json(manifest_path), timeout=10, what="a complete network.json"
        )
        with httpx.Client(timeout=30.0) as http:
            n = Net(var=var, manifest=manifest, http=http)
            n.keys[BUYER] = n.partner(BUYER, "marketplace")["key"]["key"]
            n.keys[SELLER] = n.partner(SELLER, "seller")["key"]["key"]
            for hub in (BUYER, SELLER):
                n.officers[hub] = n.partner(hub, "officer")["key"]["key"]
            _wait_for_federation(n)
            yield n
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.close()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("demo") else None


def _wait_for_federation(n: Net) -> None:
    """The hubs load each other's keys shortly after network.json appears: until then
    an offer request is refused (502/503). Ask for an offer of an unknown product: a 422
    naming the product proves the signed round trip works, and places nothing."""
    body = order_body("prd_does_not_exist", n.demo["seller_id"])

    last: list[str] = []

    def offer_answered() -> bool:
        r = n.post(BUYER, "/v1/orders", json=body)
        last[:] = [f"{r.status_code} {r.text[:300]}"]
        if r.status_code in (502, 503):
            return False
        assert r.status_code == 422, r.text
        return [e["field"] for e in r.json()["errors"]] == ["lines.0.product_id"]

    try:
        wait_until(offer_answered, timeout=60, interval=0.5)
    except AssertionError:
        raise AssertionError(f"CN never reached CA's offers; last answer: {last}") from None


# -- helpers -----------------------------------------------------------------------------


def place(n: Net, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    """POST the order at the buyer's hub; a 502/503 (seller's hub busy) is retried."""
    deadline = time.monotonic() + 30
    while True:
        r = n.post(BUYER, "/v1/orders", json=body, headers=headers or {})
        if r.status_code not in (502, 503) or time.monotonic() > deadline:
            return r
        time.sleep(1.0)


def place_ok(n: Net, body: dict[str, Any]) -> dict[str, Any]:
    r = place(n, body, {"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    return order


def get_order(n: Net, hub: str, order_id: str) -> dict[str, Any] | None:
    r = n.get(hub, f"/v1/orders/{order_id}", order_id)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    order: dict[str, Any] = r.json()
    return order


def wait_state(n: Net, hub: str, order_id: str, *states: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        order = get_order(n, hub, order_id)
        seen["state"] = order and order["state"]
        return order if order and order["state"] in states else None

    try:
        found: dict[str, Any] = wait_until(check, timeout=FLOW, interval=0.3)
    except AssertionError:
        raise AssertionError(
            f"order {order_id} at {hub} never reached {states} (last: {seen.get('state')})\n"
            + n.logs(order_id)
        ) from None
    return found


def wait_step(n: Net, hub: str, order_id: str, what: str) -> dict[str, Any]:
    """Wait until the order's timeline at ``hub`` has a step ``what``."""

    def check() -> dict[str, Any] | None:
        order = get_order(n, hub, order_id)
        return order if order and any(s["what"] == what for s in order["timeline"]) else None

    found: dict[str, Any] = wait_until(
        check, timeout=FLOW, interval=0.3, what=f"{what} in {order_id}'s timeline at {hub}"
    )
    return found


def make_product(n: Net, *, stock: int, auto_accept: bool = False) -> dict[str, str]:
    """A seller of this module's CA partner (through the CA gateway), with one product."""
    r = n.post(
        SELLER,
        "/v1/sellers",
        json={
            "name": f"Seller {uuid.uuid4().hex[:6]}",
            "country": SELLER,
            "ship_from": SHIP_FROM,
            "auto_accept": auto_accept,
        },
    )
    assert r.status_code == 201, r.text
    seller_id = r.json()["id"]
    r = n.post(
        SELLER,
        "/v1/products",
        json={
            "seller_id": seller_id,
            "title": "Live Atlantic lobster, 1 lb",
            "hs_code": "030632",
            "origin_country": SELLER,
            "price": "45.00",
            "currency": "CAD",
            "weight_kg": "0.900",
            "stock": stock,
        },
    )
    assert r.status_code == 201, r.text
    return {"seller_id": seller_id, "product_id": r.json()["id"]}


def stock(n: Net, product_id: str) -> int:
    r = n.http.get(
        f"{n.url(SELLER, 'catalog')}/operator/v1/products/{product_id}", headers=n.operator
    )
    assert r.status_code == 200, r.text
    return int(r.json()["stock"])


def ref_of(body: dict[str, Any]) -> str:
    return buyer_ref(BUYER, OrderCreate.model_validate(body))


def allowance(n: Net, body: dict[str, Any]) -> dict[str, Decimal]:
    customs = n.url(BUYER, "customs")
    r = n.http.get(f"{customs}/operator/v1/allowances/{BUYER}/{ref_of(body)}", headers=n.operator)
    assert r.status_code == 200, r.text
    a = r.json()
    return {"used": Decimal(a["used"]), "reserved": Decimal(a["reserved"])}


def declarations(n: Net, hub: str, order_id: str) -> list[dict[str, Any]]:
    r = n.http.get(
        f"{n.gw(hub)}/v1/declarations",
        params={"order_id": order_id},
        headers={"Authorization": f"Bearer {n.officers[hub]}"},
    )
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def shipments(n: Net, order_id: str) -> list[dict[str, Any]]:
    r = n.http.get(
        f"{n.url(SELLER, 'logistics')}/operator/v1/shipments",
        params={"order_id": order_id},
        headers=n.operator,
    )
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def order_ids(n: Net, hub: str, **params: Any) -> list[str]:
    """Every order id at ``hub`` matching ``params``, following the cursor."""
    ids: list[str] = []
    cursor = None
    while True:
        q = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        r = n.get(hub, "/v1/orders", params=q)
        assert r.status_code == 200, r.text
        page = r.json()
        ids += [x["id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def whats(order: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["what"], s["hub"]) for s in order["timeline"]]


# -- the lobster order, shared by the flow test and the conflicts test --------------------


@pytest.fixture(scope="module")
def lobster(net: Net) -> dict[str, Any]:
    """The demo lobster order (auto-accepting seller), placed and delivered."""
    demo = net.demo
    body = order_body(demo["product_id"], demo["seller_id"], quantity=2)
    before = {"stock": stock(net, demo["product_id"]), "allowance": allowance(net, body)}
    r = place(net, body, {"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    placed = r.json()
    order_id = placed["id"]
    net.order_keys[order_id] = demo["seller_key"]  # the demo seller's order at CA
    cn = wait_state(net, BUYER, order_id, "delivered", "cancelled", "rejected")
    ca = wait_state(net, SELLER, order_id, "delivered", "cancelled", "rejected")
    return {
        "body": body,
        "response": r,
        "placed": placed,
        "before": before,
        "cn": cn,
        "ca": ca,
    }


def test_lobster_order_crosses_the_border_and_is_delivered(net: Net, lobster: dict[str, Any]):
    r, placed = lobster["response"], lobster["placed"]
    order_id = placed["id"]
    assert placed["state"] == "placed"
    assert placed["role"] == "buyer"
    assert (placed["buyer_hub"], placed["seller_hub"]) == (BUYER, SELLER)
    assert r.headers["location"] == f"/v1/orders/{order_id}"
    money = placed["money"]
    assert money["currency"] == "CNY"
    for k in ("goods", "shipping", "duty", "vat", "total"):
        assert Decimal(money[k]) >= 0, (k, money)
    assert Decimal(money["goods"]) > 0 and Decimal(money["shipping"]) > 0
    parts = ("goods", "shipping", "duty", "excise", "vat", "fees")
    assert sum(Decimal(money[k]) for k in parts) == Decimal(money["total"]), money
    assert money["seller"] == {"currency": "CAD", "goods": "90.00"}

    cn, ca = lobster["cn"], lobster["ca"]
    assert (cn["id"], cn["state"], cn["role"]) == (order_id, "delivered", "buyer"), whats(cn)
    assert (ca["id"], ca["state"], ca["role"]) == (order_id, "delivered", "seller"), whats(ca)
    cn_steps = whats(cn)
    for what in ("OrderAccepted", "ShipmentBooked", "DeliveryConfirmed"):
        assert (what, SELLER) in cn_steps, cn_steps
    assert cn_steps[0] == ("OrderPlaced", BUYER)
    assert whats(ca)[0] == ("OrderPlaced", BUYER)
    assert not {"accept", "reject", "cancel"} & set(cn["next"] + ca["next"])

    # Stock: taken once, for the quantity ordered.
    assert stock(net, net.demo["product_id"]) == lobster["before"]["stock"] - 2

    # One live shipment for the order at the seller's hub.
    live = [s for s in shipments(net, order_id) if s["status"] != "cancelled"]
    assert len(live) == 1, shipments(net, order_id)
    assert live[0]["status"] == "delivered"
    assert ca["shipment"]["shipment_id"] == live[0]["id"]
    assert cn["shipment"]["tracking_number"] == live[0]["tracking_number"]

    # Customs: import cleared at CN, export cleared at CA.
    imports = declarations(net, BUYER, order_id)
    assert [(d["phase"], d["country"], d["decision"]) for d in imports] == [
        ("import", BUYER, "cleared")
    ]
    exports = declarations(net, SELLER, order_id)
    assert [(d["phase"], d["country"], d["decision"]) for d in exports] == [
        ("export", SELLER, "cleared")
    ]

    # The buyer's allowance: the order counts, and is no longer only reserved.
    amount = Decimal(money["allowance"]["amount"])
    assert amount > 0
    old = lobster["before"]["allowance"]
    now = wait_until(
        lambda: (a := allowance(net, lobster["body"]))["reserved"] == old["reserved"] and a,
        timeout=FLOW,
        what="the allowance reservation to be confirmed",
    )
    assert now["used"] == old["used"] + amount


# -- a seller that decides by hand ---------------------------------------------------------


def test_manual_seller_rejects_and_everything_is_given_back(net: Net):
    p = make_product(net, stock=10)
    body = order_body(p["product_id"], p["seller_id"], quantity=3)
    before = allowance(net, body)
    order = place_ok(net, body)
    order_id = order["id"]

    ca = wait_state(net, SELLER, order_id, "awaiting_acceptance")
    assert {"accept", "reject"} <= set(ca["next"]), ca["next"]
    assert ca["accept_by"] is not None
    cn = wait_state(net, BUYER, order_id, "awaiting_seller")
    assert "cancel" in cn["next"]
    assert stock(net, p["product_id"]) == 7  # reserved while the seller decides
    assert allowance(net, body)["used"] > before["used"]

    r = net.post(SELLER, f"/v1/orders/{order_id}/reject", json={"reason": "sold out at the dock"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "rejected"

    ca = wait_state(net, SELLER, order_id, "rejected")
    cn = wait_state(net, BUYER, order_id, "rejected")
    assert "sold out at the dock" in (ca["reason"] or "")
    assert "sold out at the dock" in (cn["reason"] or ""), cn["reason"]
    assert ("OrderRejected", SELLER) in whats(cn)
    wait_until(
        lambda: stock(net, p["product_id"]) == 10, timeout=FLOW, what="the stock to come back"
    )
    wait_until(lambda: allowance(net, body) == before, timeout=FLOW, what="the allowance released")
    assert shipments(net, order_id) == []


def test_buyer_cancels_before_acceptance(net: Net):
    p = make_product(net, stock=5)
    body = order_body(p["product_id"], p["seller_id"], quantity=2)
    before = allowance(net, body)
    order_id = place_ok(net, body)["id"]
    wait_state(net, SELLER, order_id, "awaiting_acceptance")
    wait_state(net, BUYER, order_id, "awaiting_seller")
    assert stock(net, p["product_id"]) == 3

    r = net.post(BUYER, f"/v1/orders/{order_id}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelling"
    assert r.json()["next"] == []

    cn = wait_state(net, BUYER, order_id, "cancelled", "rejected")
    ca = wait_state(net, SELLER, order_id, "cancelled", "rejected", "in_transit")
    assert (cn["state"], ca["state"]) == ("cancelled", "cancelled"), (whats(cn), whats(ca))
    assert ("OrderCancelled", SELLER) in whats(cn)
    wait_until(
        lambda: stock(net, p["product_id"]) == 5, timeout=FLOW, what="the stock to come back"
    )
    wait_until(lambda: allowance(net, body) == before, timeout=FLOW, what="the allowance released")
    assert shipments(net, order_id) == []  # never accepted: nothing booked
    assert declarations(net, SELLER, order_id) == []  # and no export filed


def test_manual_seller_accepts_and_the_order_is_delivered(net: Net):
    p = make_product(net, stock=4)
    body = order_body(p["product_id"], p["seller_id"], quantity=1)
    order_id = place_ok(net, body)["id"]
    wait_state(net, SELLER, order_id, "awaiting_acceptance")

    r = net.post(SELLER, f"/v1/orders/{order_id}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "export_clearance"
    assert r.json()["next"] == []

    ca = wait_state(net, SELLER, order_id, "delivered", "cancelled", "rejected")
    cn = wait_state(net, BUYER, order_id, "delivered", "cancelled", "rejected")
    assert (cn["state"], ca["state"]) == ("delivered", "delivered"), (whats(cn), whats(ca))
    assert ("accept", SELLER) in whats(ca)
    assert ("OrderAccepted", SELLER) in whats(cn)
    assert stock(net, p["product_id"]) == 3
    live = [s for s in shipments(net, order_id) if s["status"] != "cancelled"]
    assert len(live) == 1 and live[0]["status"] == "delivered", live


# -- refusals --------------------------------------------------------------------------------


def _refused(n: Net, hub: str, order_id: str, what: str, expect: int = 409) -> None:
    """``what`` at ``hub`` is refused with ``expect`` as problem+json and changes nothing."""
    before = get_order(n, hub, order_id)
    r = n.post(hub, f"/v1/orders/{order_id}/{what}", order_id, json={"reason": "test"})
    assert r.status_code == expect, (what, hub, r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    assert r.json()["status"] == expect
    after = get_order(n, hub, order_id)
    if before is None:
        assert after is None
        return
    assert after is not None
    assert after["state"] == before["state"]
    assert len(after["timeline"]) == len(before["timeline"]), (whats(before), whats(after))
    assert after["updated_at"] == before["updated_at"]


def test_requests_that_do_not_fit_the_order_are_refused(net: Net, lobster: dict[str, Any]):
    delivered = lobster["placed"]["id"]
    # Wait for the last step each hub records once delivered, so the timelines are still.
    wait_step(net, BUYER, delivered, "AllowanceConfirmed")

    _refused(net, BUYER, delivered, "accept")  # the buyer's hub is not the seller's
    _refused(net, BUYER, delivered, "reject")
    _refused(net, BUYER, delivered, "cancel")  # delivered: too late
    _refused(net, SELLER, delivered, "cancel")  # the seller's hub is not the buyer's
    _refused(net, SELLER, delivered, "accept")
    r = net.post(BUYER, f"/v1/orders/{delivered}/cancel")
    assert "delivered" in r.json()["detail"]

    p = make_product(net, stock=3)
    waiting = place_ok(net, order_body(p["product_id"], p["seller_id"]))["id"]
    wait_state(net, SELLER, waiting, "awaiting_acceptance")
    wait_state(net, BUYER, waiting, "awaiting_seller")
    _refused(net, BUYER, waiting, "accept")  # only the seller's hub accepts
    _refused(net, SELLER, waiting, "cancel")  # only the buyer's hub cancels
    r = net.post(SELLER, f"/v1/orders/{waiting}/reject")
    assert r.status_code == 200, r.text
    wait_step(net, SELLER, waiting, "StockReleased")
    _refused(net, SELLER, waiting, "accept")
    _refused(net, SELLER, waiting, "reject")

    unknown = f"ord_{uuid.uuid4().hex}"
    for hub in (BUYER, SELLER):
        for what in ("accept", "reject", "cancel"):
            _refused(net, hub, unknown, what, expect=404)
        r = net.get(hub, f"/v1/orders/{unknown}")
        assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)


# -- bad input ---------------------------------------------------------------------------------


def test_bad_orders_are_refused_with_the_field_and_nothing_is_created(net: Net):
    p = make_product(net, stock=2)

    def good() -> dict[str, Any]:
        return order_body(p["product_id"], p["seller_id"])

    def with_(path: str, value: Any) -> dict[str, Any]:
        body = good()
        *parents, last = path.split(".")
        node: Any = body
        for k in parents:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return body

    cases = {
        "unknown product": (with_("lines.0.product_id", "prd_nope"), "lines.0.product_id"),
        "more than in stock": (with_("lines.0.quantity", 3), "lines.0.quantity"),
        "no identity number": (with_("buyer.identity_number", ...), "buyer.identity_number"),
        "bought from itself": (with_("seller_hub", BUYER), "seller_hub"),
        "shipped elsewhere": (with_("ship_to.country", "JP"), "ship_to.country"),
        "not a peer": (with_("seller_hub", "NZ"), "seller_hub"),
        "control character": (with_("ship_to.name", "Li\x00Wei"), "ship_to.name"),
        "newline in city": (with_("ship_to.city", "Shang\nhai"), "ship_to.city"),
        "zero quantity": (with_("lines.0.quantity", 0), "lines.0.quantity"),
        "unknown seller": (with_("seller_id", "sel_nobody"), "seller_id"),
        "unknown field": (with_("coupon", "FREE"), "coupon"),
    }
    before = {hub: set(order_ids(net, hub)) for hub in (BUYER, SELLER)}
    for name, (body, wanted) in cases.items():
        r = place(net, body, {"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 422, (name, r.status_code, r.text)
        assert r.headers["content-type"].startswith(PROBLEM), name
        problem = r.json()
        assert problem["status"] == 422
        fields = [e["field"] for e in problem.get("errors", [])]
        assert wanted in fields, (name, problem)

    r = net.post(
        BUYER,
        "/v1/orders",
        content=b'{"seller_hub": "CA", "lines": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)

    # The order that was fine is still placeable: the product's stock was untouched.
    assert stock(net, p["product_id"]) == 2
    after = {hub: set(order_ids(net, hub)) for hub in (BUYER, SELLER)}
    assert after == before


# -- idempotency -----------------------------------------------------------------------------


def test_idempotency_key_replays_the_same_order(net: Net):
    p = make_product(net, stock=5)
    body = order_body(p["product_id"], p["seller_id"], quantity=1)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = place(net, body, key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = place(net, body, key)
    assert again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]

    other = {**body, "lines": [{"product_id": p["product_id"], "quantity": 2}]}
    r = place(net, other, key)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "Idempotency-Key" in [e["field"] for e in r.json()["errors"]]

    order_id = first.json()["id"]
    ca = wait_state(net, SELLER, order_id, "awaiting_acceptance")
    mine = [
        x
        for x in net.get(BUYER, "/v1/orders", params={"limit": 100}).json()["items"]
        if x["partner_reference"] == body["partner_reference"]
    ]
    assert [x["id"] for x in mine] == [order_id]
    assert stock(net, p["product_id"]) == 4  # reserved once
    assert sum(1 for s in ca["timeline"] if s["what"] == "OrderPlaced") == 1


# -- listing -----------------------------------------------------------------------------------


def test_listing_filters_and_pages_through_every_order(net: Net):
    p = make_product(net, stock=10)
    mine = [place_ok(net, order_body(p["product_id"], p["seller_id"]))["id"] for _ in range(3)]
    for order_id in mine:
        wait_state(net, BUYER, order_id, "awaiting_seller")
        wait_state(net, SELLER, order_id, "awaiting_acceptance")

    page = net.get(BUYER, "/v1/orders", params={"role": "buyer", "limit": 100})
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert set(mine) <= {x["id"] for x in items}
    assert {x["role"] for x in items} == {"buyer"}
    ids = [x["id"] for x in items]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert all(Decimal(x["total"]) > 0 for x in items if x["id"] in mine)

    assert set(mine).isdisjoint(order_ids(net, BUYER, role="seller"))
    assert set(mine) <= set(order_ids(net, SELLER, role="seller"))

    waiting = net.get(BUYER, "/v1/orders", params={"state": "awaiting_seller"})
    assert waiting.status_code == 200, waiting.text
    assert {x["state"] for x in waiting.json()["items"]} == {"awaiting_seller"}
    assert set(mine) <= set(order_ids(net, BUYER, state="awaiting_seller"))
    assert set(mine).isdisjoint(order_ids(net, BUYER, state="delivered"))

    everything = order_ids(net, BUYER)
    walked: list[str] = []
    cursor = None
    for _ in range(len(everything) + 2):
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        r = net.get(BUYER, "/v1/orders", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 1
        walked += [x["id"] for x in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert walked == everything
    assert len(set(walked)) == len(walked)
    assert set(mine) <= set(walked)

    bad = net.get(BUYER, "/v1/orders", params={"cursor": "nope"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)

    # Another marketplace of the same hub sees none of them.
    other = {"Authorization": f"Bearer {net.manifest['demo'][BUYER]['marketplace_key']}"}
    theirs = net.http.get(f"{net.gw(BUYER)}/v1/orders", params={"limit": 100}, headers=other)
    assert theirs.status_code == 200, theirs.text
    assert set(mine).isdisjoint(x["id"] for x in theirs.json()["items"])
    r = net.http.get(f"{net.gw(BUYER)}/v1/orders/{mine[0]}", headers=other)
    assert r.status_code == 404, r.text


# -- regressions of bugs found by these tests (fixed) ---------------------------------------------


def test_an_unknown_buyer_currency_is_named(net: Net):
    p = make_product(net, stock=2)
    body = {**order_body(p["product_id"], p["seller_id"]), "currency": "XXX"}
    r = place(net, body)
    assert r.status_code == 422, r.text
    assert "currency" in [e["field"] for e in r.json()["errors"]], r.json()


def test_lines_of_one_product_over_stock_together_are_refused(net: Net):
    p = make_product(net, stock=5)
    body = order_body(p["product_id"], p["seller_id"])
    body["lines"] = [{"product_id": p["product_id"], "quantity": 3}] * 2
    before = set(order_ids(net, BUYER))
    r = place(net, body)
    assert r.status_code == 422, r.text
    assert set(order_ids(net, BUYER)) == before


def test_the_sellers_hub_records_the_buyers_import_decision(net: Net):
    p = make_product(net, stock=10)
    mine = [place_ok(net, order_body(p["product_id"], p["seller_id"]))["id"] for _ in range(4)]
    for order_id in mine:
        wait_state(net, SELLER, order_id, "awaiting_acceptance")
    every = order_ids(net, SELLER, role="seller")
    assert set(mine) <= set(every)

    def missing() -> list[str]:
        out = []
        for order_id in every:
            order = get_order(net, SELLER, order_id)
            assert order is not None
            if order["declarations"].get("import", {}).get("decision") != "cleared":
                out.append(order_id)
        return out

    try:
        wait_until(lambda: not missing(), timeout=8, what="the import decisions at CA")
    except AssertionError:
        lost = missing()
        raise AssertionError(
            f"{len(lost)} of {len(every)} orders at CA never got CN's import decision: {lost}\n"
            + "\n".join(net.logs(x) for x in lost[:2])
        ) from None


# -- a return ----------------------------------------------------------------------------------


def test_a_delivered_order_is_returned_restocked_and_refunded(net: Net):
    p = make_product(net, stock=5, auto_accept=True)
    body = order_body(p["product_id"], p["seller_id"], quantity=2)
    placed = place_ok(net, body)
    order_id = placed["id"]
    before = allowance(net, body)
    wait_state(net, SELLER, order_id, "delivered", "cancelled", "rejected")
    cn = wait_state(net, BUYER, order_id, "delivered", "cancelled", "rejected")
    assert cn["state"] == "delivered", whats(cn)
    assert "return" in cn["next"], cn["next"]
    assert stock(net, p["product_id"]) == 3
    amount = Decimal(placed["money"]["allowance"]["amount"])
    confirmed = wait_until(
        lambda: (a := allowance(net, body))["reserved"] == 0 and a,
        timeout=FLOW,
        what="the allowance reservation to be confirmed",
    )
    assert confirmed["used"] == amount

    # A return at the seller's hub is not the seller's to ask: 409 naming the state/side.
    r = net.post(SELLER, f"/v1/orders/{order_id}/returns", order_id, json={"reason": "x"})
    assert r.status_code in (403, 404, 409), r.text
    assert r.headers["content-type"].startswith("application/problem+json")

    r = net.post(BUYER, f"/v1/orders/{order_id}/returns", json={"reason": "arrived late"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "returning"
    # Asking again while the return is on its way changes nothing.
    again = net.post(BUYER, f"/v1/orders/{order_id}/returns", json={"reason": "again"})
    assert again.status_code == 409, again.text

    cn = wait_state(net, BUYER, order_id, "returned")
    ca = wait_state(net, SELLER, order_id, "returned")
    assert ("return", BUYER) in whats(cn) and ("ReturnReceived", SELLER) in whats(cn), whats(cn)
    assert ("ReturnRequested", BUYER) in whats(ca), whats(ca)
    assert cn["next"] == [] and ca["next"] == []

    # The seller's catalog has the two back; the outbound shipment stays delivered.
    assert stock(net, p["product_id"]) == 5
    live = [s for s in shipments(net, order_id) if s["status"] != "cancelled"]
    assert [s["status"] for s in live] == ["delivered"], live

    # CN customs: the refund claim for the order's duty and taxes (a command the saga sent
    # as the order became returned: it may land a moment later), and the allowance back.
    def phases() -> list[tuple[str, str]]:
        return [(d["phase"], d["country"]) for d in declarations(net, BUYER, order_id)]

    wait_until(lambda: ("refund", BUYER) in phases(), timeout=FLOW, what="the refund claim")
    found = phases()
    assert found.count(("import", BUYER)) == 1 and found.count(("refund", BUYER)) == 1, found
    after = wait_until(
        lambda: (a := allowance(net, body))["used"] == before["used"] and a,
        timeout=FLOW,
        what="the allowance to be given back",
    )
    assert after["reserved"] == 0


def test_a_listing_travels_to_the_markets_its_seller_chose_and_is_ordered_there(
    net: Net,
) -> None:
    """A seller at CA lists a product for the CN market: CN's search finds it (priced for
    a buyer in CN), a price change and then a withdrawal reach CN, a product without
    markets never does; the order from CN's hit is placed against CA's live offer."""
    demo = net.demo
    seller_auth = {"Authorization": f"Bearer {demo['seller_key']}"}
    word = f"zq{uuid.uuid4().hex[:8]}"  # a word no other listing has

    def create(title: str, markets: list[str]) -> dict[str, Any]:
        r = net.http.post(
            f"{net.gw(SELLER)}/v1/products",
            headers=seller_auth,
            json={
                "seller_id": demo["seller_id"],
                "title": title,
                "description": "Wild blueberries, dried",
                "hs_code": "081340",
                "origin_country": "CA",
                "price": "9.50",
                "currency": "CAD",
                "weight_kg": "0.300",
                "stock": 50,
                "markets": markets,
            },
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def hits_at_cn() -> list[dict[str, Any]]:
        r = net.get(BUYER, "/v1/products", params={"q": word, "ship_to": "CN"})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    started = time.monotonic()
    offered = create(f"Blueberries {word} offered", ["CN", "CA", "CN"])
    create(f"Blueberries {word} home only", [])
    assert offered["markets"] == ["CN"] and offered["version"] == 1  # itself, once: dropped

    found = wait_until(lambda: hits_at_cn() or None, timeout=FLOW, what="the listing at CN")
    lag = time.monotonic() - started
    assert [h["title"] for h in found] == [f"Blueberries {word} offered"], found
    hit = found[0]
    assert hit["source_hub"] == SELLER and hit["product_id"] == offered["id"]
    assert hit["price"] == "9.50" and hit["currency"] == "CAD"
    assert hit["landed_cost"] is not None, hit  # priced by CN's customs for CN
    print(f"listing lag CA -> CN: {lag:.2f} s")

    r = net.http.patch(
        f"{net.gw(SELLER)}/v1/products/{offered['id']}", headers=seller_auth, json={"price": "8.00"}
    )
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    wait_until(
        lambda: [h for h in hits_at_cn() if h["price"] == "8.00"] or None,
        timeout=FLOW,
        what="the new price at CN",
    )

    # The order from CN's hit: the seller's hub answers a live offer for it.
    body = order_body(offered["id"], demo["seller_id"])
    r = place(net, body, {"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    net.order_keys[r.json()["id"]] = demo["seller_key"]

    r = net.http.patch(
        f"{net.gw(SELLER)}/v1/products/{offered['id']}", headers=seller_auth, json={"markets": []}
    )
    assert r.status_code == 200 and r.json()["markets"] == [], r.text
    wait_until(lambda: hits_at_cn() == [] or None, timeout=FLOW, what="the withdrawal at CN")
    # Still the seller's at CA, in CA's own search.
    r = net.http.get(f"{net.gw(SELLER)}/v1/products/{offered['id']}", headers=seller_auth)
    assert r.status_code == 200 and r.json()["version"] == 3


def test_a_product_update_is_refused_whole_when_any_field_is_wrong(net: Net) -> None:
    demo = net.demo
    auth = {"Authorization": f"Bearer {demo['seller_key']}"}
    url = f"{net.gw(SELLER)}/v1/products/{demo['product_id']}"
    before = net.http.get(url, headers=auth).json()
    for body, field_name in (
        ({}, None),
        ({"markets": ["XX"]}, "markets"),
        ({"price": "-1"}, "price"),
        ({"stock": None}, None),
        ({"hs_code": "030632"}, "hs_code"),  # not changeable: the declarations rest on it
    ):
        r = net.http.patch(url, headers=auth, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if field_name:
            assert field_name in r.text, r.text
    assert net.http.get(url, headers=auth).json() == before
    other = net.partner(SELLER, "seller")["key"]["key"]
    r = net.http.patch(url, headers={"Authorization": f"Bearer {other}"}, json={"stock": 1})
    assert r.status_code == 404  # another partner's product is not found

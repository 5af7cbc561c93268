"""The order saga under crashes: `ehub network up` (CN buys, CA sells), orders
placed at CN (every 4th cancelled there, half at once, half 1-6 s later) while a
background thread SIGKILLs a random service process of either hub every 3-5 s, and the
supervisor restarts it. With ``EHUB_CHAOS_BROKER_KILL=1`` it also kills the broker once
(its 3rd-6th tick); the embedded broker comes back empty, and the relays' audit and the
consumers' checks must recover what it lost (docs/architecture.md). That variant runs in
`make chaos` (docs/orders.md says where it stands). The
killing goes on for a while after the last order is placed, so orders are hit while
they travel, are booked and ship; it skips a beat while two services are still down
(a restart takes many seconds on a loaded machine, and the hubs must make progress).

Every 10th order goes to a seller who decides by hand: the test rejects it at CA once it
waits there. Every 8th (of the others) is returned at CN once delivered. Both happen while
the killing goes on (and are retried after it for what the crashes held up).

Once the killing stops, every order must end the same at both hubs (delivered,
cancelled, rejected, returned, or undelivered when the simulated carrier brings the
parcel back; an order cancelled before it reached CA may be unknown there), with at most
one live shipment per order, CA's stock down by exactly what was delivered and not
returned, and each CN buyer's allowance used by exactly its delivered, unreturned orders.
Each hub's partner (the marketplace at CN, the seller at CA) has a webhook endpoint on a
receiver in the test: every delivery's signature verifies, and per order the events
(deduplicated by ``webhook-id``, as the docs tell receivers to) chain each state change
once, in order, to the order's final state.

It runs once per database backend: ``sqlite`` (SQLite files, the local default) and
``postgres`` (``network up --postgres``: every service's database on the server that
``EHUB_TEST_POSTGRES_URL`` names, under a prefix of the run's own, dropped afterwards;
skipped without it). Each run has its own var directory, broker and databases.

The full scenario is 300 orders on both backends (`make chaos`); `make test` places 40 on
SQLite (``EHUB_CHAOS_BACKENDS``, default ``sqlite``). ``EHUB_CHAOS_ORDERS=300`` runs the
full one (the time limits grow with it); ``EHUB_CHAOS_SEED`` replays a run's choices
(orders, cancels, victims);
``EHUB_CHAOS_SPARE=CA/logistics,CN/gateway`` never kills those services (to look past
a known failure).

Orders are placed, cancelled and read through the hubs' gateways with partner API keys,
as a marketplace (CN) and a seller (CA) would. CA's copy of an order belongs to the
seller's partner once the stock is reserved; an order the partner cannot see (one
refused before that) is read from CA's gateway database instead (the same SQL on
either backend), and counted in the summary. The books (stock, the saga's shipments,
allowances) are read as the hubs' operator, who sees every row (docs/partners.md).

On failure the report (each failing order's states and timelines at both hubs, its saga
commands, its shipments, the kills, the log lines naming it) is written next to the
network's var directory as ``chaos-report.json`` and summarised in the assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from standardwebhooks import Webhook

from ehub_gateway.orders.schemas import OrderCreate
from ehub_gateway.orders.service import buyer_ref
from ehub_gateway.saga.machine import TERMINAL as TERMINAL_STATES
from tests.federation_harness import wait_until
from tests.test_network import Network, partner_key, postgres_or_skip, start_network

ORDERS = int(os.environ.get("EHUB_CHAOS_ORDERS", "40"))
EXTRA = max(0, ORDERS - 60)  # seconds of time limit added per order above 60 (300: 240)
# The test body (after the network is up) ends within BUDGET seconds, report included:
# with the network's start-up that is under 6 minutes even when it fails.
BUDGET = 420.0 + 3 * EXTRA
PLACING_TIME = 120.0 + EXTRA  # orders placed (with retries) during the crashes within this
REPORT_TIME = 30.0  # kept for the books and the report
KILL_EVERY = (3.0, 5.0)
MAX_DOWN = 2  # no kill while this many services are down (restarting)
SPARE = {x.strip() for x in os.environ.get("EHUB_CHAOS_SPARE", "").split(",") if x.strip()}
CHAOS_AFTER = 30.0  # the killing goes on this long after the last order is placed
WORKERS = 4
BROKER_KILL = os.environ.get("EHUB_CHAOS_BROKER_KILL", "") == "1"
# `make test` runs the SQLite network only; `make chaos` both (and 300 orders, broker kill).
BACKENDS = os.environ.get("EHUB_CHAOS_BACKENDS", "sqlite").split(",")
CANCEL_EVERY = 4  # every 4th order is cancelled (half at once, half 1-6 s after placing)
REJECT_EVERY = 10  # every 10th goes to a seller who decides by hand, and rejects it
RETURN_EVERY = 8  # every 8th is returned once delivered (during the crashes, if in time)
ACT_TIME = 90.0  # rejects and returns are asked (with retries) during the crashes within this

pytestmark = [pytest.mark.slow, pytest.mark.timeout(int(780 + 3 * EXTRA))]

BUYER, SELLER = "CN", "CA"
# delivered, cancelled, rejected; undelivered (the carrier brought it back); returned
TERMINAL = {str(s) for s in TERMINAL_STATES}
SETTINGS = {
    "EHUB_CARRIER_SIMULATION_INTERVAL": "0.5",
    "EHUB_RELAY_POLL_INTERVAL": "0.1",
    "EHUB_SAGA_RESEND_AFTER": "3",
    # Federation heals within seconds, not minutes (as in the federation tests).
    "EHUB_TRUST_RELOAD_INTERVAL": "0.5",
    "EHUB_RECEIPT_TIMEOUT": "4",
    "EHUB_RECEIPT_TIMEOUT_MAX": "8",
    "EHUB_DELIVERY_BACKOFF_BASE": "0.2",
    "EHUB_DELIVERY_BACKOFF_MAX": "1.5",
    "EHUB_DELIVERY_MAX_ATTEMPTS": "1000",
    # Partners' webhooks go to this test's receiver on a loopback port, retried quickly.
    "EHUB_WEBHOOK_ALLOW_HTTP": "true",
    "EHUB_WEBHOOK_BACKOFF_BASE": "0.5",
    "EHUB_WEBHOOK_BACKOFF_MAX": "2",
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
SHIP_TO = {
    "name": "Li Wei",
    "street": ["88 Century Avenue"],
    "city": "Shanghai",
    "postal_code": "200120",
    "country": BUYER,
    "phone": "+86 21 5555 0100",
}


@dataclass
class Placed:
    key: str
    body: dict[str, Any]
    order: dict[str, Any] | None = None  # the 201 body
    cancel: str | None = None  # "asked", then "ok" or "409" (too late); None: not asked
    cancel_after: float = 0.0  # seconds between placing and cancelling
    reject: str | None = None  # "asked", then "ok": the seller rejected it at CA
    ret: str | None = None  # "asked", then "ok" (returning) or "n/a" (never delivered)
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        assert self.order is not None
        return str(self.order["id"])

    @property
    def quantity(self) -> int:
        return int(self.body["lines"][0]["quantity"])

    @property
    def product_id(self) -> str:
        return str(self.body["lines"][0]["product_id"])


class Killer(threading.Thread):
    """Every 3-5 s, SIGKILLs a random service (pid from network.json) among those that
    are up and ready, unless MAX_DOWN are down already: on a slow machine a restart
    takes many seconds, and the hubs must keep making progress between the crashes."""

    def __init__(self, net: Network, seed: int) -> None:
        super().__init__(name="chaos-killer", daemon=True)
        self.net = net
        self.rng = random.Random(seed)
        self.halt = threading.Event()
        self.kills: list[dict[str, Any]] = []
        self.skipped = 0  # ticks without a kill: MAX_DOWN services were down
        self.error: BaseException | None = None
        # The broker is killed once, then (EHUB_CHAOS_BROKER_KILL=1 only; see above).
        self.broker_tick = self.rng.randint(3, 6) if BROKER_KILL else -1

    def run(self) -> None:
        try:
            tick = 0
            while not self.halt.wait(self.rng.uniform(*KILL_EVERY)):
                tick += 1
                manifest = self.net.manifest()
                broker = manifest.get("broker") or {}
                if tick == self.broker_tick and broker.get("embedded") and broker.get("pid"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(broker["pid"]), signal.SIGKILL)
                        self.kills.append(
                            {
                                "at": time.strftime("%T"),
                                "hub": "-",
                                "service": "broker",
                                "pid": broker["pid"],
                            }
                        )
                    continue
                services = [
                    (hub, name, svc)
                    for hub, named in manifest["hubs"].items()
                    for name, svc in named.items()
                ]
                up = [
                    (hub, name, svc["pid"])
                    for hub, name, svc in services
                    if svc["state"] == "running"
                    and f"{hub}/{name}" not in SPARE
                    and _ready(svc["url"])
                ]
                if len(services) - len(up) >= MAX_DOWN or not up:
                    self.skipped += 1
                    continue
                hub, name, pid = self.rng.choice(up)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    self.kills.append(
                        {"at": time.strftime("%T"), "hub": hub, "service": name, "pid": pid}
                    )
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- the hubs, as a marketplace at CN and a seller at CA see them ----------------------------


@dataclass
class Hubs:
    net: Network
    keys: dict[str, str]  # hub -> the partner's API key
    from_db: set[str] = field(default_factory=set)  # CA orders the partner could not see

    def gw(self, hub: str) -> str:
        return str(self.net.service(hub, "gateway")["url"])

    def client(self, hub: str) -> httpx.Client:
        return httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.keys[hub]}"})

    def get(
        self, http: httpx.Client, hub: str, path: str, *, service: str = "gateway", **params: Any
    ) -> Any:
        """The JSON of a 200 from ``hub``'s ``service``, None for a 404; a crash in
        between (connection error, 5xx) or a 429 is retried."""
        for _ in range(120):
            base = self.net.service(hub, service)["url"]
            try:
                r = http.get(f"{base}{path}", params=params)
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            if r.status_code == 404:
                return None
            if r.status_code == 200:
                return r.json()
            if r.status_code < 500 and r.status_code != 429:
                raise AssertionError(f"GET {path} at {hub} answered {r.status_code}: {r.text}")
            time.sleep(0.5)
        raise AssertionError(f"GET {path} at {hub} kept failing")

    def operator(self) -> httpx.Client:
        """The hubs' operator (internal token): reads every row of a service, the
        saga's shipments and any buyer's allowance included (docs/partners.md)."""
        token = self.net.manifest()["internal_token"]
        return httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"})

    def order(self, http: httpx.Client, hub: str, order_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.get(http, hub, f"/v1/orders/{order_id}")
        if found is None and hub == SELLER:
            found = self.db_order(hub, order_id)
            if found is not None:
                self.from_db.add(order_id)
        return found

    def _query(self, hub: str, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of ``sql`` (named ``:params``) in ``hub``'s gateway database, SQLite
        (opened read-only) or Postgres alike."""

        async def run() -> list[dict[str, Any]]:
            url = self.net.database_url(hub, "gateway", read_only=True)
            engine = create_async_engine(url, poolclass=NullPool)
            try:
                async with engine.connect() as conn:
                    result = await conn.execute(text(sql), params)
                    return [dict(row._mapping) for row in result]
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def db_order(self, hub: str, order_id: str) -> dict[str, Any] | None:
        """The order as ``hub``'s gateway database holds it (state, timeline, money)."""
        rows = self._query(hub, "SELECT * FROM orders WHERE id = :id", id=order_id)
        if not rows:
            return None
        steps = self._query(
            hub,
            "SELECT at, hub, what, state, detail FROM order_steps WHERE order_id = :id ORDER BY id",
            id=order_id,
        )
        order = rows[0]
        for k in ("money", "shipment", "shipping", "declarations", "seller", "lines"):
            if k in order:
                order[k] = _json(order[k])
        order["timeline"] = [
            {**s, "at": str(s["at"]), "detail": _json(s["detail"]) or {}} for s in steps
        ]
        return order

    def saga_commands(self, hub: str, order_id: str) -> list[dict[str, Any]]:
        return self._query(
            hub,
            "SELECT step, command, attempt, sent_at, done_at FROM saga_commands "
            "WHERE order_id = :id ORDER BY id",
            id=order_id,
        )


def _json(value: Any) -> Any:
    """A JSON column as read without the model: text on SQLite (and from asyncpg)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def net(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Network]:
    """The network, its databases on SQLite or (``EHUB_TEST_POSTGRES_URL``) Postgres."""
    if request.param not in BACKENDS:
        pytest.skip(f"EHUB_CHAOS_BACKENDS={','.join(BACKENDS)}; `make chaos` runs both")
    postgres = postgres_or_skip() if request.param == "postgres" else None
    var = tmp_path_factory.mktemp(f"chaos-{request.param}") / "var"
    n = start_network(var, postgres=postgres, **SETTINGS)
    try:
        yield n
    finally:
        n.stop()  # and drops its Postgres databases


def make_seller(
    hubs: Hubs, http: httpx.Client, products: int, *, auto_accept: bool = True
) -> tuple[str, list[str]]:
    """A seller at CA with ``products`` products (the seller partner's)."""
    gw = hubs.gw(SELLER)
    r = http.post(
        f"{gw}/v1/sellers",
        json={
            "name": f"Chaos Seafood {uuid.uuid4().hex[:6]}",
            "country": SELLER,
            "ship_from": SHIP_FROM,
            "auto_accept": auto_accept,
        },
    )
    assert r.status_code == 201, r.text
    seller_id = r.json()["id"]
    ids = []
    for i in range(products):
        r = http.post(
            f"{gw}/v1/products",
            json={
                "seller_id": seller_id,
                "title": f"Live Atlantic lobster, 1 lb (lot {i + 1})",
                "hs_code": "030632",
                "origin_country": SELLER,
                "price": "45.00",
                "currency": "CAD",
                "weight_kg": "0.900",
                "stock": 10 * ORDERS,
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return seller_id, ids


def order_body(product_id: str, seller_id: str, buyer: str, quantity: int) -> dict[str, Any]:
    return {
        "seller_hub": SELLER,
        "seller_id": seller_id,
        "partner_reference": f"chaos-{uuid.uuid4().hex[:12]}",
        "buyer": {"id": f"buyer-{buyer}", "identity_number": f"CHAOS{buyer.upper()}000000"},
        "ship_to": SHIP_TO,
        "lines": [{"product_id": product_id, "quantity": quantity}],
        "currency": "CNY",
    }


def wait_for_federation(hubs: Hubs, http: httpx.Client, seller_id: str) -> None:
    """CN reaches CA's signed offers (a 422 naming an unknown product places nothing)."""
    body = order_body("prd_does_not_exist", seller_id, "probe", 1)

    def answered() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            r = http.post(f"{hubs.gw(BUYER)}/v1/orders", json=body)
            if r.status_code == 422:
                return True
            assert r.status_code in (502, 503), r.text
        return False

    wait_until(answered, timeout=90, interval=0.5, what="CN to reach CA's offers")


# -- placing and cancelling through the crashes ---------------------------------------------


def _post(http: httpx.Client, target: str, p: Placed, **kwargs: Any) -> httpx.Response | None:
    p.attempts += 1
    try:
        return http.post(target, **kwargs)
    except httpx.HTTPError as exc:
        p.errors.append(type(exc).__name__)
        return None


def place_and_maybe_cancel(hubs: Hubs, p: Placed, deadline: float) -> Placed:
    """POST the order (the same Idempotency-Key on every retry of a 5xx, a 409 "in
    progress", a 429 or a connection error); cancel it at once if asked. Gives up at
    ``deadline`` (the caller tries again later with the same key)."""
    with hubs.client(BUYER) as http:
        while p.order is None:
            r = _post(
                http,
                f"{hubs.gw(BUYER)}/v1/orders",
                p,
                json=p.body,
                headers={"Idempotency-Key": p.key},
            )
            if r is not None and r.status_code == 201:
                p.order = r.json()
                break
            if r is not None:
                detail = r.text[:200] if r.status_code >= 500 else ""
                p.errors.append(f"{r.status_code} {detail}".strip())
                if r.status_code < 500 and r.status_code not in (409, 429):
                    raise AssertionError(f"placing answered {r.status_code}: {r.text}")
            if time.monotonic() > deadline:
                return p
            time.sleep(0.5)
        if p.cancel == "asked" and p.cancel_after:
            time.sleep(p.cancel_after)
            p.cancel_after = 0.0  # a retry after the crashes cancels at once
        while p.cancel == "asked":
            r = _post(http, f"{hubs.gw(BUYER)}/v1/orders/{p.id}/cancel", p)
            if r is not None and r.status_code == 200:
                p.cancel = "ok"
            elif r is not None and r.status_code == 409:
                p.cancel = "409"  # too late (or already cancelling: a lost answer's retry)
            elif r is not None and r.status_code < 500 and r.status_code != 429:
                raise AssertionError(f"cancel of {p.id} answered {r.status_code}: {r.text}")
            elif time.monotonic() > deadline:
                return p
            else:
                time.sleep(0.5)
    return p


def place_all(hubs: Hubs, plan: list[Placed], seconds: float) -> list[Placed]:
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda p: place_and_maybe_cancel(hubs, p, deadline), plan))


# -- rejecting at CA and returning at CN, through the crashes --------------------------------


def _state(hubs: Hubs, http: httpx.Client, hub: str, order_id: str) -> str | None:
    try:
        r = http.get(f"{hubs.gw(hub)}/v1/orders/{order_id}")
    except httpx.HTTPError:
        return None
    return str(r.json()["state"]) if r.status_code == 200 else None


def act(hubs: Hubs, p: Placed, deadline: float) -> Placed:
    """The seller rejects an order of the hand-deciding seller once it waits for them
    at CA; the buyer returns a marked order once CN has it delivered. Both retried
    through crashes (a 409 after a lost answer: the state says whether it was ours)."""
    if p.order is None:
        return p
    if p.reject == "asked":
        with hubs.client(SELLER) as http:
            while p.reject == "asked":  # at least one look, however late
                state = _state(hubs, http, SELLER, p.id)
                if state == "awaiting_acceptance":
                    r = _post(
                        http,
                        f"{hubs.gw(SELLER)}/v1/orders/{p.id}/reject",
                        p,
                        json={"reason": "cannot ship this week"},
                    )
                    if r is not None and r.status_code == 200:
                        p.reject = "ok"
                        break
                elif state is not None and state != "reserving":
                    p.reject = "ok" if state == "rejected" else f"n/a ({state})"
                    break
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
    if p.ret == "asked":
        with hubs.client(BUYER) as http:
            while p.ret == "asked":
                state = _state(hubs, http, BUYER, p.id)
                if state == "delivered":
                    r = _post(
                        http,
                        f"{hubs.gw(BUYER)}/v1/orders/{p.id}/returns",
                        p,
                        json={"reason": "not as described"},
                    )
                    if r is not None and r.status_code == 200:
                        p.ret = "ok"
                        break
                elif state in ("returning", "returned"):
                    p.ret = "ok"  # our earlier request's answer was lost in a crash
                elif state is not None and state in TERMINAL:
                    p.ret = f"n/a ({state})"
                if p.ret != "asked" or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
    return p


def act_all(hubs: Hubs, plan: list[Placed], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    todo = [p for p in plan if p.reject == "asked" or p.ret == "asked"]
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda p: act(hubs, p, deadline), todo))


# -- partners' webhooks: a receiver on a loopback port ---------------------------------------


class Hooks:
    """Each hub's partner registers an endpoint here for ``order.state_changed``; every
    delivery is verified (Standard Webhooks) and kept in arrival order."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # path -> signing secret
        self.received: list[tuple[str, str, bytes]] = []  # (path, webhook-id, body)
        self.bad: list[str] = []
        self.lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                path = self.path
                try:
                    Webhook(hooks.secrets[path]).verify(body, dict(self.headers.items()))
                except Exception as exc:  # a bad signature is a finding, not a crash
                    with hooks.lock:
                        hooks.bad.append(f"{path}: {exc!r}")
                    self.send_response(400)
                    self.end_headers()
                    return
                with hooks.lock:
                    hooks.received.append((path, self.headers["webhook-id"], body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def register(self, hubs: Hubs, http: httpx.Client, hub: str) -> None:
        path = f"/{hub.lower()}"
        url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        r = http.post(
            f"{hubs.gw(hub)}/v1/webhooks",
            json={"url": url, "event_types": ["order.state_changed"]},
        )
        assert r.status_code == 201, r.text
        self.secrets[path] = r.json()["secret"]

    def chains(self) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], int]:
        """Per (hub, order): the events, once each (by webhook-id), in arrival order; and
        how many deliveries repeated an id already received (at-least-once redelivery)."""
        seen: dict[str, bytes] = {}
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        repeats = 0
        with self.lock:
            received = list(self.received)
        for path, wid, body in received:
            if wid in seen:
                repeats += 1
                assert seen[wid] == body, f"{wid} delivered with two bodies"
                continue
            seen[wid] = body
            data = json.loads(body)["data"]
            out.setdefault((path[1:].upper(), data["order_id"]), []).append(data)
        return out, repeats

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def chain_gaps(
    hooks: Hooks, views: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]]
) -> dict[str, str]:
    """Orders whose webhooks at a hub do not tell each state change once, in order,
    ending in the order's state there: at CN from ``placed``; at CA from the seller's
    first event (the seller's partner is known once the stock is reserved)."""
    chains, _ = hooks.chains()
    bad: dict[str, str] = {}
    for order_id, (cn, ca) in views.items():
        for hub, view in ((BUYER, cn), (SELLER, ca)):
            events = chains.get((hub, order_id), [])
            if view is None or (hub == SELLER and not events):
                continue  # never at CA, or refused there before it had a partner
            prev = "placed" if hub == BUYER else events[0]["previous_state"]
            for e in events:
                if e["previous_state"] != prev:
                    bad[order_id] = f"{hub}: {e['previous_state']} after {prev} (a gap or a double)"
                    break
                prev = e["state"]
            else:
                if prev != view["state"]:
                    bad[order_id] = f"{hub}: webhooks end at {prev}, the order at {view['state']}"
    return bad


# -- checks ------------------------------------------------------------------------------


def settled(cn: dict[str, Any] | None, ca: dict[str, Any] | None) -> bool:
    if cn is None or cn["state"] not in TERMINAL:
        return False
    if ca is None:  # cancelled before it reached CA: nothing ever goes there
        return bool(cn["state"] == "cancelled")
    return ca["state"] in TERMINAL


def return_ended(cn: dict[str, Any] | None, ca: dict[str, Any] | None) -> bool:
    """A return asked and answered ends ``returned`` at both hubs, or ``delivered`` again
    at both when the carrier brought the return parcel back to the buyer."""
    if cn is None or ca is None or cn["state"] != ca["state"]:
        return False
    if cn["state"] == "returned":
        return True
    states = [s["state"] for s in cn["timeline"]]
    came_back = "returning" in states and states[-1] == "delivered"
    return bool(cn["state"] == "delivered" and came_back)


def state_at(views: dict[str, Any], order_id: str, hub: int = 0) -> str | None:
    view = views[order_id][hub]
    return None if view is None else str(view["state"])


def brief(order: dict[str, Any] | None) -> Any:
    if order is None:
        return None
    return {
        "state": order["state"],
        "reason": order.get("reason"),
        "shipment": order.get("shipment"),
        "timeline": [
            {k: s[k] for k in ("at", "hub", "what", "state", "detail")} for s in order["timeline"]
        ],
    }


def test_orders_end_the_same_at_both_hubs_through_crashes(net: Network):
    started = time.monotonic()

    def say(what: str) -> None:  # progress, seen with -s
        print(f"chaos +{time.monotonic() - started:5.1f}s {what}", flush=True)

    seed = int(os.environ.get("EHUB_CHAOS_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    hubs = Hubs(
        net,
        {BUYER: partner_key(net, BUYER, "marketplace"), SELLER: partner_key(net, SELLER, "seller")},
    )
    cn_http, ca_http = hubs.client(BUYER), hubs.client(SELLER)
    seller_id, products = make_seller(hubs, ca_http, 3)
    manual_id, (manual,) = make_seller(hubs, ca_http, 1, auto_accept=False)
    wait_for_federation(hubs, cn_http, seller_id)
    operator = hubs.operator()
    hooks = Hooks()
    hooks.register(hubs, cn_http, BUYER)
    hooks.register(hubs, ca_http, SELLER)

    def stock(pid: str) -> int:
        product = hubs.get(operator, SELLER, f"/operator/v1/products/{pid}", service="catalog")
        return int(product["stock"])

    initial = {pid: stock(pid) for pid in [*products, manual]}
    buyers = [f"b{i}" for i in range(max(3, ORDERS // 12))]
    plan = []
    for i in range(ORDERS):
        rejected = i % REJECT_EVERY == REJECT_EVERY // 2
        product, seller = (manual, manual_id) if rejected else (rng.choice(products), seller_id)
        body = order_body(product, seller, rng.choice(buyers), rng.randint(1, 3))
        p = Placed(key=str(uuid.uuid4()), body=body)
        if rejected:
            p.reject = "asked"
        elif i % RETURN_EVERY == 1:
            p.ret = "asked"
        elif i % CANCEL_EVERY == CANCEL_EVERY - 1:
            p.cancel = "asked"
            # Half at once (still at CN), half a few seconds on: the order is on its way
            # to CA, accepted or booked there, and the cancel crosses the hubs.
            p.cancel_after = 0.0 if i % (2 * CANCEL_EVERY) < CANCEL_EVERY else rng.uniform(1, 6)
        plan.append(p)

    say(f"seed {seed}: {ORDERS} orders, {sum(1 for p in plan if p.cancel)} to cancel")
    killer = Killer(net, seed)
    killer.start()
    chaos_started = time.monotonic()
    try:
        place_all(hubs, plan, PLACING_TIME)
        placing_seconds = time.monotonic() - chaos_started
        act_all(hubs, plan, ACT_TIME)  # rejects and returns, while services crash
        time.sleep(CHAOS_AFTER)  # crashes while the orders travel, are booked, ship
    finally:
        killer.stop()
    timings = {
        "setup": round(chaos_started - started, 1),
        "placing": round(placing_seconds, 1),
        "chaos": round(time.monotonic() - chaos_started, 1),
    }
    assert killer.error is None, repr(killer.error)
    if BROKER_KILL and net.manifest()["broker"].get("embedded"):
        assert any(k["service"] == "broker" for k in killer.kills), killer.kills
        wait_until(
            lambda: net.manifest()["broker"].get("restarts", 0) >= 1,
            timeout=60,
            what="the supervisor to restart the broker",
        )
    placed_now = sum(1 for p in plan if p.order is not None)
    say(f"killing stopped after {len(killer.kills)} kills; {placed_now} orders placed")
    # What the crashes kept from being placed or cancelled in time, with the same keys.
    late = [p for p in plan if p.order is None or p.cancel == "asked"]
    place_all(hubs, late, 45 + EXTRA)
    unplaced = {p.key: f"not placed: {p.errors[-5:]}" for p in plan if p.order is None}
    assert not unplaced, unplaced
    placed = plan
    act_all(hubs, placed, 90)  # what the crashes kept from being rejected or returned
    by_id = {p.id: p for p in placed}

    def done(order_id: str) -> bool:
        cn, ca = views[order_id]
        if not settled(cn, ca):
            return False
        if by_id[order_id].ret == "ok":  # delivered is terminal until a return
            return return_ended(cn, ca)
        return True

    # Every order terminal at CN and at CA (or cancelled at CN before it went to CA).
    views: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = {}
    pending = [p.id for p in placed]
    settle_started = time.monotonic()
    while pending and time.monotonic() < started + BUDGET - REPORT_TIME:
        for order_id in pending:
            views[order_id] = (
                hubs.order(cn_http, BUYER, order_id),
                hubs.order(ca_http, SELLER, order_id),
            )
        pending = [o for o in pending if not done(o)]
        say(f"{len(pending)} orders not yet terminal at both hubs")
        # Orders slow to reach the seller (a saga catching up) are rejected or returned
        # as they get there: one look at each still asked.
        act_all(hubs, [by_id[o] for o in pending], 0)
        if pending:
            time.sleep(2.0)
    timings["settle"] = round(time.monotonic() - settle_started, 1)

    report = Report(hubs, placed, views, killer.kills, seed, timings)
    report.skipped = killer.skipped
    report.late = len(late)
    report.check("every order is terminal at both hubs", {o: "not settled" for o in pending})

    # The same terminal state at both hubs.
    report.check(
        "the same terminal state at both hubs",
        {
            o: f"CN {cn['state']} / CA {ca['state']}"
            for o, (cn, ca) in views.items()
            if cn is not None and ca is not None and cn["state"] != ca["state"]
        },
    )

    # The seller's rejections and the buyer's returns ended so at both hubs.
    report.check(
        "rejected by request: rejected at both hubs",
        {
            p.id: f"CN {state_at(views, p.id)} / CA {state_at(views, p.id, 1)}"
            for p in placed
            if p.reject == "ok"
            and (state_at(views, p.id), state_at(views, p.id, 1))
            != (
                "rejected",
                "rejected",
            )
        },
    )
    report.check(
        "returned by request: returned at both hubs (or delivered again: parcel brought back)",
        {
            p.id: f"CN {state_at(views, p.id)} / CA {state_at(views, p.id, 1)}"
            for p in placed
            if p.ret == "ok" and not return_ended(*views[p.id])
        },
    )
    report.check(
        "every reject asked was made (the order waits for the seller until they answer)",
        {p.id: f"reject {p.reject}" for p in placed if p.reject == "asked"},
    )

    # Partners' webhooks: each state change of each order told once, in order, at both hubs.
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not chain_gaps(hooks, views), timeout=60, interval=2.0, what="webhooks")
    report.check("partner webhooks tell each state change once, in order", chain_gaps(hooks, views))
    report.check("webhook signatures verify", {f"bad {i}": b for i, b in enumerate(hooks.bad)})
    report.hooks = {
        "deliveries": len(hooks.received),
        "repeated_ids": hooks.chains()[1],
    }

    # At most one live (non-cancelled) shipment per order at CA.
    live: dict[str, str] = {}
    for p in placed:
        found = (
            hubs.get(operator, SELLER, "/operator/v1/shipments", service="logistics", order_id=p.id)
            or []
        )
        report.shipments[p.id] = [
            {k: s.get(k) for k in ("id", "status", "carrier", "tracking_number")} for s in found
        ]
        alive = [s for s in found if s["status"] != "cancelled"]
        if len(alive) > 1:
            live[p.id] = f"{len(alive)} live shipments: " + ", ".join(
                f"{s['id']} {s['status']}" for s in alive
            )
        if state_at(views, p.id) == "delivered" and not alive:
            live[p.id] = "delivered without a live shipment at CA's logistics"
    report.check("at most one live shipment per order", live)

    # Stock and allowances balance, once the last commands (releases, confirmations) ran.
    delivered = [p for p in placed if state_at(views, p.id) == "delivered"]
    stocked = [*products, manual]
    expected_stock = {
        pid: initial[pid] - sum(p.quantity for p in delivered if p.product_id == pid)
        for pid in stocked
    }
    expected_used: dict[str, Decimal] = {}
    for p in placed:
        ref = buyer_ref(BUYER, OrderCreate.model_validate(p.body))
        expected_used.setdefault(ref, Decimal(0))
        if p in delivered:
            allowance = (views[p.id][0] or {}).get("money", {}).get("allowance") or {}
            expected_used[ref] += Decimal(str(allowance.get("amount") or 0))

    def books() -> dict[str, Any]:
        ledgers = {
            ref: hubs.get(
                operator, BUYER, f"/operator/v1/allowances/{BUYER}/{ref}", service="customs"
            )
            for ref in expected_used
        }
        return {"stock": {pid: stock(pid) for pid in stocked}, "ledgers": ledgers}

    def balanced() -> dict[str, Any] | None:
        b = books()
        report.books = b
        ok = b["stock"] == expected_stock and all(
            Decimal(b["ledgers"][ref]["used"]) == used
            and Decimal(b["ledgers"][ref]["reserved"]) == 0
            for ref, used in expected_used.items()
        )
        return b if ok else None

    with contextlib.suppress(AssertionError):
        wait_until(balanced, timeout=20, interval=2.0, what="stock and allowances to balance")
    b = report.books or books()
    # What orders not terminal still hold, to tell a consequence from a leak.
    open_orders = [p for p in placed if p.id in pending]
    held = {pid: sum(p.quantity for p in open_orders if p.product_id == pid) for pid in stocked}
    held_allowance: dict[str, Decimal] = {}
    for p in open_orders:
        ref = buyer_ref(BUYER, OrderCreate.model_validate(p.body))
        allowance = (views[p.id][0] or {}).get("money", {}).get("allowance") or {}
        amount = Decimal(str(allowance.get("amount") or 0))
        held_allowance[ref] = held_allowance.get(ref, Decimal(0)) + amount
    report.check(
        "CA stock = initial - delivered quantities",
        {
            pid: f"stock {b['stock'][pid]}, expected {expected_stock[pid]} "
            f"(initial {initial[pid]}; {held[pid]} held by orders not terminal)"
            for pid in stocked
            if b["stock"][pid] != expected_stock[pid]
        },
    )
    report.check(
        "CN allowance used = delivered orders' allowance amounts (nothing left reserved)",
        {
            f"buyer {ref[:12]}": f"used {b['ledgers'][ref]['used']} reserved "
            f"{b['ledgers'][ref]['reserved']}, expected used {used} reserved 0 "
            f"({held_allowance.get(ref, 0)} held by orders not terminal)"
            for ref, used in expected_used.items()
            if Decimal(b["ledgers"][ref]["used"]) != used
            or Decimal(b["ledgers"][ref]["reserved"]) != 0
        },
    )
    for client in (cn_http, ca_http, operator):
        client.close()
    hooks.close()
    report.finish(time.monotonic() - started)


class Report:
    """Collects every failed check; on failure writes chaos-report.json and fails with
    a summary (which order, its states and timelines at both hubs, its log lines)."""

    def __init__(
        self,
        hubs: Hubs,
        placed: list[Placed],
        views: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]],
        kills: list[dict[str, Any]],
        seed: int,
        timings: dict[str, float],
    ) -> None:
        self.hubs = hubs
        self.placed = placed
        self.views = views
        self.kills = kills
        self.seed = seed
        self.timings = timings
        self.failures: dict[str, dict[str, str]] = {}
        self.shipments: dict[str, list[dict[str, Any]]] = {}
        self.books: dict[str, Any] = {}
        self.late = 0
        self.skipped = 0
        self.hooks: dict[str, int] = {}

    def check(self, what: str, bad: dict[str, str]) -> None:
        if bad:
            self.failures[what] = bad

    def summary(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for cn, ca in self.views.values():
            key = f"CN {cn and cn['state']} / CA {ca and ca['state']}"
            states[key] = states.get(key, 0) + 1
        by_service: dict[str, int] = {}
        for k in self.kills:
            name = f"{k['hub']} {k['service']}"
            by_service[name] = by_service.get(name, 0) + 1
        return {
            "orders": len(self.placed),
            "seed": self.seed,
            "seconds": self.timings,
            "kills": len(self.kills),
            "kills_by_service": by_service,
            "kill_ticks_skipped": self.skipped,
            "spared": sorted(SPARE),
            "cancel_asked": sum(1 for p in self.placed if p.cancel),
            "cancel_409": sum(1 for p in self.placed if p.cancel == "409"),
            "rejected_by_seller": sum(1 for p in self.placed if p.reject == "ok"),
            "returned": sum(1 for p in self.placed if p.ret == "ok"),
            "return_not_asked": sum(1 for p in self.placed if p.ret == "asked"),
            "webhooks": self.hooks,
            "place_attempts": sum(p.attempts for p in self.placed),
            "placed_after_chaos": self.late,
            "ca_orders_read_from_db": len(self.hubs.from_db),
            "states": states,
        }

    def finish(self, seconds: float) -> None:
        self.timings["test"] = round(seconds, 1)
        summary = self.summary()
        print(f"chaos: {json.dumps(summary)}")
        if not self.failures:
            return
        orders = sorted({o for bad in self.failures.values() for o in bad if o.startswith("ord_")})
        detail = {}
        with self.hubs.client(BUYER) as cn_http, self.hubs.client(SELLER) as ca_http:
            for order_id in orders:
                p = next(p for p in self.placed if p.id == order_id)
                detail[order_id] = {
                    "cancel": p.cancel,
                    "cn": brief(self.hubs.order(cn_http, BUYER, order_id)),
                    "ca": brief(self.hubs.order(ca_http, SELLER, order_id)),
                    "cn_saga_commands": self.hubs.saga_commands(BUYER, order_id),
                    "ca_saga_commands": self.hubs.saga_commands(SELLER, order_id),
                    "shipments": self.shipments.get(order_id),
                    "logs": self.hubs.net.logs(order_id, limit=80).splitlines(),
                }
        path = self.hubs.net.var.parent / "chaos-report.json"
        path.write_text(
            json.dumps(
                {
                    "summary": summary,
                    "failures": self.failures,
                    "orders": detail,
                    "books": self.books,
                    "kills": self.kills,
                    "supervisor": self.hubs.net.output().splitlines()[-200:],
                },
                indent=2,
                default=str,
            )
        )
        lines = [f"chaos run failed ({path}): {json.dumps(summary)}"]
        for what, bad in self.failures.items():
            lines.append(f"- {what}: {len(bad)} failing")
            lines += [f"    {k}: {v}" for k, v in list(bad.items())[:10]]
        for order_id in orders[:3]:
            d = detail[order_id]
            lines.append(f"order {order_id} (cancel: {d['cancel']}):")
            for hub in ("cn", "ca"):
                view = d[hub]
                lines.append(f"  at {hub.upper()}: {view and view['state']}")
                for s in (view or {}).get("timeline", []):
                    lines.append(
                        f"    {s['at'][11:23]} {s['what']:<24} by {s['hub']} -> {s['state']}"
                        f" {json.dumps(s['detail'])[:120]}"
                    )
                lines.append(f"  saga commands at {hub.upper()}: {d[f'{hub}_saga_commands']}")
            lines.append(f"  shipments: {d['shipments']}")
            lines += [f"  {x[:300]}" for x in d["logs"][-15:]]
        pytest.fail("\n".join(lines), pytrace=False)

"""One order, one trace: every step of an order, at both hubs and in every service it
touches, continues the trace the marketplace started when it placed the order.

The end-to-end test runs real processes (`ehub network up`), a real broker, real HTTP,
and a real OTLP/HTTP receiver that all eight services export their spans to. Two quick
tests pin the two pieces of ehub_core the trace hangs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import propagate
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from ehub_core.bus import KafkaBus, Message
from ehub_core.telemetry import current_traceparent, resumed_trace
from tests.federation_harness import gateway_env, wait_until
from tests.helpers.events import wait_for
from tests.helpers.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver

HUBS = ("CN", "CA")  # buyer, seller
DONE = {"delivered", "cancelled", "rejected"}
# The (hub, service) pairs a CN order of a CA product passes through: CN prices it
# (customs' landed cost) and files the import declaration; CA quotes (catalog, logistics
# rates), reserves stock, files the export declaration and books the parcel.
EXPECTED_PAIRS = {
    ("CN", "gateway"),
    ("CN", "customs"),
    ("CA", "gateway"),
    ("CA", "catalog"),
    ("CA", "customs"),
    ("CA", "logistics"),
}
# Hub-local topics of the order's steps (commands, replies, peers' events, tracking).
ORDER_STREAMS = (
    "-commands",
    ".saga-replies",
    ".orders",
    ".customs",
    ".shipments",
    ".tracking",
    ".clearance",
)


def _traceparent(trace_id: str) -> str:
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


# -- the pieces -------------------------------------------------------------------------


async def test_a_consumer_handles_each_message_in_the_trace_it_carries(broker):
    """What a handler writes to the outbox (stamped by ``propagate.inject``) continues
    the trace of the message it handles, not a new one."""
    bus = KafkaBus(broker.bootstrap)
    topic = f"ehub.test.{uuid.uuid4().hex[:10]}"
    trace_ids = [secrets.token_hex(16) for _ in range(3)]
    seen: list[str | None] = []

    async def handler(message: Message) -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        seen.append(carrier.get("traceparent"))

    await bus.publish(
        [
            Message(topic, b"{}", b"k", (("event_id", t.encode()), ("traceparent", p.encode())))
            for t in trace_ids
            for p in [_traceparent(t)]
        ]
    )
    sub = bus.subscribe([topic], f"g-{uuid.uuid4().hex[:6]}", handler)
    task = asyncio.create_task(sub.run())

    async def all_seen() -> bool:
        return len(seen) >= len(trace_ids)

    try:
        await wait_for(all_seen, 30)
    finally:
        await sub.stop()
        await task
        await bus.stop()
    assert [p and p.split("-")[1] for p in seen] == trace_ids


def test_resumed_trace_continues_a_stored_trace():
    """A carrier's webhook arrives in a trace of its own; the hub continues the trace
    stored with the shipment's booking."""
    trace_id = secrets.token_hex(16)
    with resumed_trace(_traceparent(trace_id), "carrier tracking"):
        inside = current_traceparent()
    assert inside is not None and inside.split("-")[1] == trace_id
    with resumed_trace(None, "carrier tracking"), resumed_trace("garbage", "x"):
        assert current_traceparent() is None  # nothing stored: the current trace goes on


# -- the whole network ------------------------------------------------------------------


@dataclass
class TracedNetwork:
    manifest: dict[str, Any]
    var: Path
    receiver: OtlpReceiver
    headers: dict[str, str]  # what the marketplace sends the buyer's gateway (its key)
    log: Path  # the network's output (the services' logs)

    def gateway(self, hub: str) -> str:
        return str(self.manifest["hubs"][hub]["gateway"]["url"])


@pytest.fixture
def traced_network(tmp_path: Path) -> Iterator[TracedNetwork]:
    var = tmp_path / "var"
    with otlp_receiver() as receiver:
        env = gateway_env(
            EHUB_OTLP_ENDPOINT=receiver.url,
            EHUB_CARRIER_SIMULATION_INTERVAL="0.5",
            EHUB_CARRIER_SIMULATOR_SCENARIO="delivered",  # no parcel brought back
            EHUB_RELAY_POLL_INTERVAL="0.1",
            EHUB_TRUST_RELOAD_INTERVAL="0.5",
            # A re-sent command starts a trace of its own (the saga's timer has none to
            # continue); on a loaded machine a reply may well take the default 10 s.
            EHUB_SAGA_RESEND_AFTER="120",
            # Export spans every 200 ms instead of every 5 s.
            OTEL_BSP_SCHEDULE_DELAY="200",
            # Keep every span of a busy minute, and give a slow receiver time to answer.
            OTEL_BSP_MAX_QUEUE_SIZE="200000",
            OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="60",
        )
        log_path = tmp_path / "network.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ehub_cli",
                    "network",
                    "up",
                    "--hubs",
                    ",".join(HUBS),
                    "--base-port",
                    "0",
                    "--var-dir",
                    str(var),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            manifest_path = var / "network.json"
            deadline = time.monotonic() + 240
            while not manifest_path.exists():
                if proc.poll() is not None:
                    pytest.fail(
                        f"network exited early ({proc.returncode}):\n"
                        + log_path.read_text()[-5000:]
                    )
                if time.monotonic() > deadline:
                    pytest.fail("network did not come up within 240 s")
                time.sleep(0.2)
            manifest = wait_until(
                lambda: _read_manifest(manifest_path), timeout=10, what="a complete network.json"
            )
            net = TracedNetwork(
                manifest, var, receiver, _marketplace_headers(var, HUBS[0]), log_path
            )
            _wait_for_federation(net)
            yield net
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("demo") else None


def _order_body(manifest: dict[str, Any], product_id: str | None = None) -> dict[str, Any]:
    """The demo lobster order of scripts/demo_order.py."""
    buyer, seller = HUBS
    demo = manifest["demo"][seller]
    return {
        "seller_hub": seller,
        "seller_id": demo["seller_id"],
        "partner_reference": "trace-" + uuid.uuid4().hex[:8],
        "buyer": {"id": "buyer-42", "identity_number": "110101199003074578"},
        "ship_to": {
            "name": "Li Wei",
            "street": ["88 Century Avenue"],
            "city": "Shanghai",
            "postal_code": "200120",
            "country": buyer,
            "phone": "+86 21 5555 0100",
        },
        "lines": [{"product_id": product_id or demo["product_id"], "quantity": 2}],
        "currency": "CNY",
    }


def _marketplace_headers(var: Path, hub: str) -> dict[str, str]:
    """An API key of a marketplace partner of ``hub``'s gateway, made for this test
    (as ``ehub partners add`` does); none if the gateway has no partner keys."""
    try:
        from ehub_gateway.partners import service
    except ImportError:
        return {}
    from ehub_cli.federation import gateway_settings, with_db
    from ehub_core.db import Database

    async def work(db: Database) -> str:
        async with db.transaction() as session:
            _, key = await service.create_partner(
                session, name="order trace test", role="marketplace"
            )
        return key.key

    return {"Authorization": f"Bearer {with_db(gateway_settings(hub, var), work)}"}


def _wait_for_federation(net: TracedNetwork) -> None:
    """The hubs load each other's keys shortly after network.json appears; until then
    the seller's hub refuses the offer request (502/503). An order for an unknown
    product answers 422 once the signed round trip works, and places nothing. (A 401:
    the gateway has not loaded the new API key yet.)"""
    buyer, seller = HUBS
    body = _order_body(net.manifest, product_id="prd_does_not_exist")

    def offer_answered() -> bool:
        with httpx.Client(timeout=30.0, headers=net.headers) as client:
            r = client.post(f"{net.gateway(buyer)}/v1/orders", json=body)
        if r.status_code in (401, 502, 503):
            return False
        assert r.status_code == 422, r.text
        return True

    wait_until(offer_answered, timeout=90, interval=0.5, what=f"{buyer} to reach {seller}")


def _place(client: httpx.Client, net: TracedNetwork, traceparent: str) -> str:
    buyer, _ = HUBS
    body = _order_body(net.manifest)
    headers = {
        **net.headers,
        "Idempotency-Key": str(uuid.uuid4()),
        "traceparent": traceparent,
    }
    deadline = time.monotonic() + 30
    while True:  # a 502/503 (the seller's hub busy) is retried, same key, same trace
        # Other tests of this process may have instrumented httpx (an app built in
        # process sets up tracing): its client span would replace our traceparent with
        # one of its own trace, unsampled, and the order would leave no span at all.
        with suppress_http_instrumentation():
            resp = client.post(f"{net.gateway(buyer)}/v1/orders", json=body, headers=headers)
        if resp.status_code not in (502, 503) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _states(net: TracedNetwork, order_id: str) -> dict[str, str]:
    """The order's state at each hub that has it, read from the gateways' databases:
    each hub shows an order only to its own partner (the marketplace here, the
    seller's partner there), and this test is about traces, not about the API."""
    states = {}
    for hub in HUBS:
        db = net.var / hub.lower() / "gateway.db"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA busy_timeout = 5000")
            row = conn.execute("SELECT state FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row:
            states[hub] = str(row[0])
    return states


def _wait_until_done(net: TracedNetwork, order_id: str, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = _states(net, order_id)
        done = len(states) == len(HUBS) and set(states.values()) <= DONE
        if done or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def _pair(span: ReceivedSpan) -> tuple[str, str]:
    return (span.hub, span.service.removeprefix("ehub-"))


def _topic(span: ReceivedSpan) -> str:
    return str(span.attributes.get("messaging.destination.name", ""))


def _is_order_step(span: ReceivedSpan) -> bool:
    """A message of an order's step sent or handled (not the Kafka instrumentation's
    per-poll ``receive`` spans, which are roots of their own by design)."""
    return span.name.endswith((" send", " process")) and any(
        s in _topic(span) for s in ORDER_STREAMS
    )


def _is_db(span: ReceivedSpan) -> bool:
    return any(k.startswith("db.") for k in span.attributes) or span.name == "connect"


def _describe(spans: list[ReceivedSpan], trace_id: str) -> str:
    """The order's trace, and the order steps found in other traces (for failures)."""
    ours = sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: s.start_ns)
    names = Counter(f"{h}/{svc}: {s.name}" for s in ours if not _is_db(s) for h, svc in [_pair(s)])
    lines = [f"order trace {trace_id}: {len(ours)} spans (database statements not listed)"]
    lines += [f"    {n:3d} x {name}" for name, n in names.items()]
    strays: dict[str, list[ReceivedSpan]] = {}
    for s in spans:
        if s.trace_id != trace_id and _is_order_step(s):
            strays.setdefault(s.trace_id, []).append(s)
    for tid, group in strays.items():
        group.sort(key=lambda s: s.start_ns)
        roots = [s for s in spans if s.trace_id == tid and not s.parent_span_id]
        started = f" started by {roots[0].hub}/{roots[0].name}" if roots else ""
        lines.append(f"other trace {tid}{started}:")
        lines += [
            f"    {h}/{svc}: {s.name} ({s.attributes.get('ehub.event_type', '')})"
            for s in group
            for h, svc in [_pair(s)]
        ]
    return "\n".join(lines)


def _exports(net: TracedNetwork) -> str:
    """What the receiver got from each service, and the services' complaints about
    exporting (for failures: a span missing because its batch never arrived)."""
    per = Counter(f"{s.hub}/{s.service}" for s in net.receiver.snapshot())
    lines = [f"receiver: {net.receiver.requests} exports; spans by service: {dict(per)}"]
    for path in [net.log, *sorted((net.var / "logs").glob("*.log"))]:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        lines += [
            f"    {path.name}: {line[:300]}"
            for line in text.splitlines()
            if "opentelemetry" in line or "export" in line.lower() or "otlp" in line.lower()
        ][-10:]
    return "\n" + "\n".join(lines)


def _logistics_keeps_the_booking_trace() -> bool:
    """Whether shipments store their booking's traceparent, so that carrier events
    continue the order's trace (see the end of the test)."""
    from ehub_logistics.shipments.models import Shipment

    return "traceparent" in Shipment.__table__.c


@pytest.mark.slow
def test_one_order_is_one_trace_across_hubs_and_services(traced_network: TracedNetwork):
    net = traced_network
    receiver = net.receiver
    buyer, seller = HUBS
    trace_id = secrets.token_hex(16)

    with httpx.Client(timeout=30.0) as client:
        order_id = _place(client, net, _traceparent(trace_id))
    states = _wait_until_done(net, order_id, timeout=150)
    assert states == {buyer: "delivered", seller: "delivered"}, states

    # Services export in batches (every 200 ms here): wait for the last step, the
    # buyer's hub handling the delivery its peer forwarded, then for stragglers.
    def delivered_at(spans: list[ReceivedSpan]) -> set[str]:
        return {
            s.hub
            for s in spans
            if s.trace_id == trace_id
            and s.service == "ehub-gateway"
            and s.name.endswith(" process")
            and s.attributes.get("ehub.event_type") == "DeliveryConfirmed"
        }

    # On a loaded machine the exporters run behind: wait generously for the last step.
    receiver.wait_for(lambda spans: delivered_at(spans) == set(HUBS), timeout=90)
    time.sleep(1.5)
    spans = receiver.snapshot()
    ours = [s for s in spans if s.trace_id == trace_id]
    pairs = {_pair(s) for s in ours}
    report = _describe(spans, trace_id) + _exports(net)
    print(report)  # shown with -rP (or on failure)

    # The placing request, the offer and quotes, every command and reply, every event
    # between the hubs: one trace, through every service the order touches.
    assert len(pairs) >= 6, f"only {sorted(pairs)} in the order's trace\n{report}"
    assert {h for h, _ in pairs} == set(HUBS), f"{sorted(pairs)}\n{report}"
    assert pairs >= EXPECTED_PAIRS, f"missing {EXPECTED_PAIRS - pairs}\n{report}"
    handled = {(s.hub, _topic(s)) for s in ours if s.name.endswith(" process")}
    for hub, streams in (
        (buyer, ("customs-commands", "saga-replies", "orders", "customs")),
        (seller, ("orders", "catalog-commands", "customs-commands", "logistics-commands")),
    ):
        for stream in streams:
            topic = f"ehub.{hub.lower()}.{stream}"
            assert (hub, topic) in handled, f"{topic} handled outside the trace\n{report}"

    # A database statement outside any trace (a background loop polling: the outbox
    # relay, the delivery worker, the saga timer) is not a trace of its own.
    traces: dict[str, list[ReceivedSpan]] = {}
    for s in spans:
        traces.setdefault(s.trace_id, []).append(s)
    polls = [t for t, group in traces.items() if all(_is_db(s) for s in group)]
    assert not polls, f"{len(polls)} traces of database statements alone, e.g. {traces[polls[0]]}"

    # Tracking: the carrier's webhooks start traces of their own (the carrier's); the
    # hub continues the order's trace with what it makes of them, up to the delivery
    # at both hubs. No step of the order is left in another trace.
    strays = [s for s in spans if s.trace_id != trace_id and _is_order_step(s)]
    tracked = delivered_at(spans) == set(HUBS) and not strays
    if not tracked and not _logistics_keeps_the_booking_trace():
        pytest.xfail(
            "carrier tracking events start a trace of their own: logistics must store the "
            "booking's traceparent on the shipment and publish tracking events in "
            "ehub_core.telemetry.resumed_trace(shipment.traceparent, ...)"
        )
    assert delivered_at(spans) == set(HUBS), f"delivery outside the order's trace\n{report}"
    assert not strays, f"order steps outside the order's trace:\n{report}"

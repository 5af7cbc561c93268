"""Real hubs for the federation tests: gateway processes on loopback, a broker of the
tests' own, the operator CLI, and reads of each hub's persisted SQLite state.

Everything here is what an operator would run: ``python -m ehub_cli serve gateway`` with
``EHUB_*`` settings, ``ehub init`` / ``ehub peers add`` / ``ehub keys ...``, and the
internal API to hand events to the federation relay. Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import propagate

from ehub_core.broker import EmbeddedBroker, _die_with_parent, free_port
from ehub_core.envelope import confirms, new_event_id, seal, verify_receipt
from ehub_core.proto.ehub.v1.envelope_pb2 import EnvelopeBatch
from ehub_core.proto.ehub.v1.logistics_pb2 import ShipmentEvent, ShipmentStatus
from ehub_core.proto.ehub.v1.orders_pb2 import OrderPlaced
from ehub_core.signing import HubKey, KeyRing, sign_request

TOKEN = "federation-test-token"  # a test-only internal bearer token
EVENTS_PATH = "/federation/v1/events"
BATCH_TYPE = "application/x-protobuf; messageType=ehub.v1.EnvelopeBatch"

# Short timings so failures heal within seconds instead of minutes.
FAST = {
    "EHUB_RECEIPT_TIMEOUT": "4",
    "EHUB_RECEIPT_TIMEOUT_MAX": "8",
    "EHUB_DELIVERY_BACKOFF_BASE": "0.2",
    "EHUB_DELIVERY_BACKOFF_MAX": "1.5",
    "EHUB_DELIVERY_MAX_ATTEMPTS": "1000",
    "EHUB_TRUST_RELOAD_INTERVAL": "0.5",
    "EHUB_RELAY_POLL_INTERVAL": "0.1",
}


def wait_until(
    check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; return it, or fail after
    ``timeout`` seconds naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what or check} (last: {last!r})"
            )
        time.sleep(interval)


def gateway_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any ``EHUB_*``/``OTEL_*`` leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EHUB_", "OTEL_"))}
    env.update(extra)
    return env


class Broker:
    """The tests' own embedded broker on a fixed port, so it can be restarted in place
    (a restart loses everything it held, as the embedded broker does)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._broker = EmbeddedBroker(log_path=log_dir / "broker.log")
        self.port = self._broker.port

    @property
    def bootstrap(self) -> str:
        return self._broker.bootstrap

    def start(self) -> Broker:
        self._broker.start()
        return self

    def restart(self) -> None:
        self._broker.stop()
        self._broker = EmbeddedBroker(port=self.port, log_path=self.log_dir / "broker.log")
        self._broker.start()

    def stop(self) -> None:
        self._broker.stop()


@dataclass
class Gateway:
    """One hub's gateway as a separate uvicorn process, with its own var dir."""

    hub: str
    var_dir: Path
    host: str
    bootstrap: str | None
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)
        self.var_dir.mkdir(parents=True, exist_ok=True)

    # -- identity and paths ----------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.var_dir / self.hub.lower() / "gateway.db"

    @property
    def keys_dir(self) -> Path:
        return self.var_dir / self.hub.lower() / "keys"

    @property
    def log_path(self) -> Path:
        return self.var_dir / f"{self.hub.lower()}-gateway.log"

    def keyring(self) -> KeyRing:
        return KeyRing(self.keys_dir, self.hub)

    def env(self) -> dict[str, str]:
        env = gateway_env(
            EHUB_HUB_ID=self.hub,
            EHUB_VAR_DIR=str(self.var_dir),
            EHUB_PUBLIC_URL=self.url,
            EHUB_INTERNAL_TOKEN=TOKEN,
            EHUB_LOG_LEVEL="INFO",
        )
        if self.bootstrap:
            env["EHUB_KAFKA_BOOTSTRAP"] = self.bootstrap
        env.update(self.settings)
        return env

    # -- process ---------------------------------------------------------------------------

    def create_key(self, *, not_before: datetime | None = None) -> str:
        """Create the hub's signing key in its key directory (what ``ehub init`` does,
        optionally valid from ``not_before``); return its fingerprint."""
        ring = self.keyring()
        key = ring.generate(not_before=not_before) if not_before else ring.ensure_active()
        return key.fingerprint

    def start(self, *, wait: bool = True) -> Gateway:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ehub_cli",
                "serve",
                "gateway",
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        if wait:
            self.wait_up()
        return self

    def wait_up(self, timeout: float = 60.0) -> None:
        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.hub} gateway exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=timeout, what=f"{self.hub} gateway to come up")

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to finish anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # -- operator CLI ----------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ehub ARGS`` as this hub's operator would (same settings as the gateway)."""
        result = subprocess.run(
            [sys.executable, "-m", "ehub_cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ehub {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def add_peer(self, other: Gateway, fingerprint: str, *extra: str) -> str:
        return self.cli(
            "peers",
            "add",
            other.url,
            "--fingerprint",
            fingerprint,
            "--hub",
            self.hub,
            "--var-dir",
            str(self.var_dir),
            *extra,
        ).stdout

    # -- internal API ----------------------------------------------------------------------

    def inject(
        self, events: Sequence[dict[str, Any]], *, headers: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Hand events to this hub's federation relay (``POST /internal/v1/events``).

        A ``traceparent`` header is also made the current trace context: if other tests
        of this process instrumented httpx, the instrumentation rewrites the header from
        the current context, which must then be the caller's trace.
        """
        out: list[dict[str, Any]] = []
        parent = (headers or {}).get("traceparent")
        token = otel_context.attach(propagate.extract({"traceparent": parent})) if parent else None
        try:
            out = self._post_events(events, headers)
        finally:
            if token is not None:
                otel_context.detach(token)
        return out

    def _post_events(
        self, events: Sequence[dict[str, Any]], headers: dict[str, str] | None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with httpx.Client(timeout=60) as client:
            for i in range(0, len(events), 1000):
                r = client.post(
                    f"{self.url}/internal/v1/events",
                    json={"events": list(events[i : i + 1000])},
                    headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})},
                )
                assert r.status_code == 202, r.text
                out.extend(r.json())
        return out

    # -- persisted state -------------------------------------------------------------------

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            yield conn
        finally:
            conn.close()

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self.db() as conn:
            return list(conn.execute(sql, tuple(params)).fetchall())

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def column(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return [r[0] for r in self.rows(sql, params)]


async def find_record(bootstrap: str, topic: str, event_id: str, timeout: float = 30.0) -> Any:
    """The first record on ``topic`` whose ``event_id`` header is ``event_id``."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for rec in records:
                    if ("event_id", event_id.encode()) in list(rec.headers or ()):
                        return rec
    finally:
        await consumer.stop()
    raise AssertionError(f"no record for event {event_id} on {topic} within {timeout:.0f}s")


def peer_all(links: Sequence[tuple[Gateway, Gateway, str, Sequence[str]]]) -> None:
    """``ehub peers add`` for each (hub, peer, peer's fingerprint, extra args).

    The CLI's own Typer app runs in this process (with the hub's environment), which
    spares a fixture the start-up of one Python process per link; the tests of the
    command itself run it as a separate process, as an operator does.
    """
    from typer.testing import CliRunner

    from ehub_cli.main import app

    for gw, other, fp, extra in links:
        args = ["peers", "add", other.url, "--fingerprint", fp, "--hub", gw.hub]
        args += ["--var-dir", str(gw.var_dir), *extra]
        env = {k: v for k, v in gw.env().items() if k.startswith("EHUB_")}
        unset = {k: None for k in os.environ if k.startswith("EHUB_") and k not in env}
        result = CliRunner().invoke(app, args, env={**unset, **env})
        assert result.exit_code == 0, f"ehub {' '.join(args)}: {result.output}{result.exception}"
    for gw, other, _fp, _extra in links:
        wait_trusted(gw, other)


def init_all(*gateways: Gateway) -> dict[str, str]:
    """``ehub init`` for each hub at once; return each hub's fingerprint."""
    procs = {
        gw.hub: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ehub_cli",
                "init",
                "--hub",
                gw.hub,
                "--var-dir",
                str(gw.var_dir),
            ],
            env=gw.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for gw in gateways
    }
    fingerprints = {}
    for hub, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        match = re.search(r"fingerprint (SHA256:\S+)", out)
        assert proc.returncode == 0 and match, out
        fingerprints[hub] = match.group(1)
    return fingerprints


def wait_trusted(receiver: Gateway, sender: Gateway, timeout: float = 30.0) -> None:
    """Wait until ``receiver``'s running gateway trusts ``sender`` (it reloads its peers
    every EHUB_TRUST_RELOAD_INTERVAL): probe with an empty batch signed by the sender."""
    key = sender.keyring().active_key()
    url = f"{receiver.url}{EVENTS_PATH}"
    wait_until(
        lambda: signed_post(url, batch(), key)[0].status_code == 200,
        timeout=timeout,
        what=f"{receiver.hub} to trust {sender.hub}",
    )


def start_all(*gateways: Gateway) -> None:
    for gw in gateways:
        gw.start(wait=False)
    for gw in gateways:
        gw.wait_up()


# What federation ingest writes. The hub's order saga also keeps an inbox and writes
# commands through the outbox, at its own pace (an event an earlier test delivered may be
# handled while a later test looks): its rows are not ingest's and are not counted.
STATE_TABLES = {
    "fed_received": "SELECT count(*) FROM fed_received",
    "ehub_inbox": "SELECT count(*) FROM ehub_inbox WHERE consumer = 'federation'",
    "ehub_outbox": (
        "SELECT count(*) FROM ehub_outbox WHERE topic NOT LIKE '%-commands' "
        "AND topic NOT LIKE 'ehub.fed.%'"
    ),
    "ehub_nonces": "SELECT count(*) FROM ehub_nonces",
    "fed_peer_keys_revoked": "SELECT count(*) FROM fed_peer_keys WHERE revoked_at IS NOT NULL",
}


def state_counts(gw: Gateway, tables: Iterable[str] = STATE_TABLES) -> dict[str, int]:
    """Row counts of a hub's persisted federation state (to prove nothing changed)."""
    return {name: int(gw.scalar(STATE_TABLES[name])) for name in tables}


def batch(*envelopes: bytes) -> bytes:
    return EnvelopeBatch(envelopes=list(envelopes)).SerializeToString()


def sealed_order(key: HubKey, target: str = "CA", **kwargs: Any) -> bytes:
    """An OrderPlaced sealed by ``key`` (its hub is the source)."""
    event_id = new_event_id()
    order = f"ord_{event_id[-12:]}"
    payload = OrderPlaced(order_id=order, buyer_hub=key.hub_id, seller_hub=target)
    return seal(payload, key, target_hub=target, subject=order, event_id=event_id, **kwargs)


def sealed_shipment(key: HubKey, target: str = "CA") -> bytes:
    event_id = new_event_id()
    shipment = f"shp_{event_id[-12:]}"
    payload = ShipmentEvent(shipment_id=shipment, status=ShipmentStatus.SHIPMENT_STATUS_IN_TRANSIT)
    return seal(payload, key, target_hub=target, subject=shipment, event_id=event_id)


def signed_post(
    url: str,
    body: bytes,
    key: HubKey,
    *,
    now: datetime | None = None,
    content_type: str = BATCH_TYPE,
) -> tuple[httpx.Response, dict[str, str]]:
    """POST ``body`` signed (RFC 9421) by ``key`` for its hub; return the response and
    the headers sent (to replay or tamper with)."""
    headers = {"Content-Type": content_type}
    headers.update(sign_request("POST", url, headers, body, key, key.hub_id, now=now))
    return httpx.post(url, content=body, headers=headers, timeout=30), headers


def receipt_entries(response: httpx.Response, resolve: Any, *, receiver: str, sender: str) -> Any:
    """The entries of the signed receipt in a verified 200 answer."""
    assert response.status_code == 200, response.text
    receipt = verify_receipt(
        response.content, resolve, expected_receiver=receiver, expected_sender=sender
    )
    return list(receipt.entries)


def outbound_status(cn: Gateway, ids: Iterable[str]) -> dict[str, int]:
    """Status counts of CN's ``fed_outbound`` rows for these events."""
    wanted = set(ids)
    counts: dict[str, int] = {}
    for event_id, status in cn.rows("SELECT event_id, status FROM fed_outbound"):
        if event_id in wanted:
            counts[status] = counts.get(status, 0) + 1
    return counts


def wait_receipted(cn: Gateway, ids: Sequence[str], timeout: float = 180.0) -> None:
    def done() -> bool:
        return outbound_status(cn, ids) == {"receipted": len(ids)}

    try:
        wait_until(done, timeout=timeout, what=f"{len(ids)} events receipted at {cn.hub}")
    except AssertionError as exc:
        wanted = set(ids)
        errors: dict[str, int] = {}
        for event_id, error in cn.rows("SELECT event_id, last_error FROM fed_outbound"):
            if event_id in wanted:
                errors[str(error)[:120]] = errors.get(str(error)[:120], 0) + 1
        raise AssertionError(
            f"{exc}; status now {outbound_status(cn, ids)}; last errors {errors}"
        ) from None


def assert_took_effect_once(
    cn: Gateway, ca: Gateway, ids: Sequence[str], via: Iterable[str]
) -> dict[str, int]:
    """Each event took effect exactly once at CA, counted in CA's persisted state, and CN
    holds a verifying signed receipt from CA for each (0 lost, 0 doubled). Returns how
    many arrived by each transport (all of them in ``via``)."""
    sent = set(ids)
    assert len(sent) == len(ids)

    def mine(column: list[Any]) -> list[Any]:
        return [x for x in column if x in sent]

    received = ca.rows("SELECT event_id, via FROM fed_received")
    got = [e for e, _ in received if e in sent]
    assert len(got) == len(sent) and set(got) == sent, (len(got), len(sent - set(got)))
    by_transport: dict[str, int] = {}
    for e, v in received:
        if e in sent:
            by_transport[v] = by_transport.get(v, 0) + 1
    assert set(by_transport) <= set(via), by_transport
    inbox = mine(ca.column("SELECT event_id FROM ehub_inbox WHERE consumer = 'federation'"))
    assert len(inbox) == len(sent) and set(inbox) == sent
    republished = ca.rows("SELECT event_id, topic FROM ehub_outbox")
    ours = [(e, t) for e, t in republished if e in sent]
    assert len(ours) == len(sent) and {e for e, _ in ours} == sent
    assert {t for _, t in ours} == {f"ehub.{ca.hub.lower()}.orders"}

    cn_rows = cn.rows(
        "SELECT o.event_id, o.digest, o.status, r.signed_receipt FROM fed_outbound o "
        "LEFT JOIN fed_receipts r ON r.receipt_id = o.receipt_id"
    )
    ours_out = [r for r in cn_rows if r[0] in sent]
    assert len(ours_out) == len(sent)
    assert {r[2] for r in ours_out} == {"receipted"}
    # Every stored receipt is CA's signature confirming exactly this event and digest.
    resolve = ca.keyring().resolve
    parsed: dict[bytes, Any] = {}
    for event_id, digest, _status, signed in ours_out:
        assert signed is not None, f"no stored receipt for {event_id}"
        receipt = parsed.get(signed)
        if receipt is None:
            receipt = parsed[signed] = verify_receipt(
                signed, resolve, expected_receiver=ca.hub, expected_sender=cn.hub
            )
        assert confirms(receipt, event_id, digest), event_id
    return by_transport


def assert_no_strays(cn: Gateway, ca: Gateway) -> None:
    """Across everything CN ever sent CA: CA holds exactly what CN holds receipts for."""
    outbound = dict(
        cn.rows("SELECT event_id, status FROM fed_outbound WHERE target_hub = ?", [ca.hub])
    )
    received = ca.column("SELECT event_id FROM fed_received WHERE source_hub = ?", [cn.hub])
    assert len(received) == len(set(received))
    assert set(received) == {e for e, s in outbound.items() if s == "receipted"}


def order_placed(
    target: str = "CA", *, source: str = "CN", transport: str | None = None
) -> dict[str, Any]:
    """One OrderPlaced for the internal API, with a fresh UUIDv7 of our own."""
    event_id = new_event_id()
    order = f"ord_{event_id[-12:]}"
    return {
        "type": "OrderPlaced",
        "target_hub": target,
        "subject": order,
        "payload": {"orderId": order, "buyerHub": source, "sellerHub": target},
        "event_id": event_id,
        "transport": transport,
    }


def shipment_event(
    target: str = "CA", *, transport: str | None = None, order: str | None = None
) -> dict[str, Any]:
    """One ShipmentEvent for the internal API; about ``order`` if given (the receiver takes
    it only from that order's other hub, e.g. after the sender's ``order_placed``)."""
    event_id = new_event_id()
    payload = {"shipmentId": f"shp_{event_id[-12:]}", "status": "SHIPMENT_STATUS_IN_TRANSIT"}
    return {
        "type": "ShipmentEvent",
        "target_hub": target,
        "subject": order or f"shp_{event_id[-12:]}",
        "payload": {**payload, "orderId": order} if order else payload,
        "event_id": event_id,
        "transport": transport,
    }


def pre_dated(hours: int = 2) -> datetime:
    """A key start well in the past, so tests may sign with ``created`` minutes ago."""
    return (datetime.now(UTC) - timedelta(hours=hours)).replace(microsecond=0)

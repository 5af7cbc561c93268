"""`ehub network up` as an operator runs it: real processes, real broker, real HTTP.

The supervisor restarts a service that dies (SIGKILL here), with back-off, and keeps
``network.json`` current; SIGTERM still stops everything, even during a back-off.

With ``--postgres ADMIN_URL`` (tests: ``EHUB_TEST_POSTGRES_URL``; skipped without it)
every hub's services keep their databases on that server, one per hub and service.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehub_cli.network import (
    RESTART_DELAY_MAX,
    RESTART_DELAY_MIN,
    RESTART_RESET_AFTER,
    Child,
    NetworkPlan,
    PostgresServer,
    Supervisor,
    describe_exit,
    next_delay,
    service_env,
)
from ehub_cli.services import SERVICES
from ehub_core.pytest_plugin import PG_ENV, postgres_admin_url
from tests.federation_harness import gateway_env, wait_until

HUBS = ("CN", "CA")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits to be reaped.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


# -- a running network ---------------------------------------------------------------------


@dataclass
class Network:
    """``ehub network up --hubs CN,CA`` in a subprocess; its stdout goes to a file."""

    proc: subprocess.Popen[bytes]
    var: Path
    out_path: Path
    postgres: PostgresServer | None = None  # None: SQLite files under ``var``

    @property
    def backend(self) -> str:
        return "sqlite" if self.postgres is None else "postgres"

    @property
    def manifest_path(self) -> Path:
        return self.var / "network.json"

    def database_url(self, hub: str, service: str, *, read_only: bool = False) -> str:
        """SQLAlchemy async URL of ``hub``'s ``service`` database, as the service has it
        (``read_only``: a SQLite file is opened read-only; Postgres is read as is)."""
        if self.postgres is not None:
            return self.postgres.service_url(hub, service)
        path = self.var / hub.lower() / f"{service}.db"
        if read_only:
            return f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
        return f"sqlite+aiosqlite:///{path}"

    def manifest(self) -> dict[str, Any]:
        """The manifest as it is now (it is replaced whole, never half-written)."""
        data: dict[str, Any] = json.loads(self.manifest_path.read_text())
        return data

    def service(self, hub: str, name: str) -> dict[str, Any]:
        svc: dict[str, Any] = self.manifest()["hubs"][hub][name]
        return svc

    def pids(self) -> dict[tuple[str, str], int]:
        return {
            (hub, name): svc["pid"]
            for hub, services in self.manifest()["hubs"].items()
            for name, svc in services.items()
        }

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def logs(self, needle: str, limit: int = 60) -> str:
        """Lines of every service log mentioning ``needle`` (for failure messages)."""
        found = [
            f"{path.name}: {line}"
            for path in sorted((self.var / "logs").glob("*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if needle in line
        ]
        return "\n".join(found[-limit:])

    def stop(self) -> None:
        """SIGTERM the supervisor (SIGKILL if it lingers); then drop the network's
        Postgres databases, if it has any."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.postgres is not None:
            self.postgres.drop(self.databases())

    def databases(self) -> list[str]:
        """The names of the network's Postgres databases."""
        assert self.postgres is not None
        return [self.postgres.database(hub, name) for hub in HUBS for name in SERVICES]


def postgres_or_skip() -> str:
    """The tests' Postgres admin URL, or skip the test."""
    admin = postgres_admin_url()
    if not admin:
        pytest.skip(f"{PG_ENV} not set: no Postgres server to put the network's databases on")
    return admin


def start_network(var: Path, *, postgres: str | None = None, **settings: str) -> Network:
    """Start a CN + CA network in ``var`` with ``EHUB_*`` ``settings``; return once its
    manifest (with the demo seller) is written.

    ``postgres``: an admin URL; the network's databases go to that server under a
    prefix of their own (``ehub_t<random>``), dropped by :meth:`Network.stop`.
    """
    var.mkdir(parents=True, exist_ok=True)
    out_path = var.parent / f"{var.name}-supervisor.out"
    args = [
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
    ]
    server = None
    if postgres:
        server = PostgresServer.parse(postgres, f"ehub_t{uuid.uuid4().hex[:10]}")
        args += ["--postgres", postgres, "--db-prefix", server.prefix]
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            args, env=gateway_env(**settings), stdout=out, stderr=subprocess.STDOUT
        )
    net = Network(proc, var, out_path, server)
    deadline = time.monotonic() + 240  # a loaded 2-core machine may take minutes
    while not net.manifest_path.exists():
        if proc.poll() is not None:
            net.stop()
            pytest.fail(f"network exited early ({proc.returncode}):\n{net.output()}")
        if time.monotonic() > deadline:
            net.stop()
            pytest.fail(f"network did not come up within 240 s:\n{net.output()}")
        time.sleep(0.2)
    return net


def partner_key(net: Network, hub: str, role: str) -> str:
    """A new partner of ``hub`` (operator API, with the network's internal token) and
    its API key: what a marketplace or seller is given before it calls the hub."""
    manifest = net.manifest()
    gateway = manifest["hubs"][hub]["gateway"]["url"]

    def created() -> str | None:
        try:
            r = httpx.post(
                f"{gateway}/operator/v1/partners",
                json={
                    "name": f"test {role} {uuid.uuid4().hex[:6]}",
                    "role": role,
                    # The tests poll hard: far above any rate limit they could hit.
                    "rate_per_second": 10_000,
                    "burst": 10_000,
                },
                headers={"Authorization": f"Bearer {manifest['internal_token']}"},
                timeout=10,
            )
        except httpx.HTTPError:
            return None
        if r.status_code >= 500:
            return None
        assert r.status_code == 201, r.text
        return str(r.json()["key"]["key"])

    key: str = wait_until(created, timeout=60, interval=0.5, what=f"a {role} key at {hub}")
    return key


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def kill_and_wait_restart(net: Network, hub: str, name: str, timeout: float = 90) -> int:
    """SIGKILL ``hub``'s ``name`` service; return the new pid once the manifest shows
    it running again and it answers /readyz 200."""
    before = net.service(hub, name)
    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> int | None:
        svc = net.service(hub, name)
        if svc["pid"] != before["pid"] and svc["state"] == "running":
            return int(svc["pid"])
        return None

    pid: int = wait_until(restarted, timeout=timeout, what=f"{hub} {name} restarted")
    wait_until(lambda: ready(before["url"]), timeout=timeout, what=f"{hub} {name} ready again")
    return pid


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """One network for the module (starting one takes a while on a loaded machine): the
    first test sees it fresh, the restart tests kill what they need, the last one stops
    it with SIGTERM."""
    net = start_network(
        tmp_path_factory.mktemp("network") / "var",
        EHUB_RELAY_POLL_INTERVAL="0.1",
        EHUB_TRUST_RELOAD_INTERVAL="0.5",
    )
    try:
        yield net
    finally:
        if net.proc.poll() is None:
            net.proc.kill()
            net.proc.wait()


# -- tests (in this order: the last one stops the network) ---------------------------------


def test_two_hubs_come_up_ready(shared: Network):
    manifest = shared.manifest()
    assert set(manifest["hubs"]) == {"CN", "CA"}
    urls = [svc["url"] for hub in manifest["hubs"].values() for svc in hub.values()]
    assert len(urls) == 8
    # Each hub binds its own loopback address.
    assert {svc["host"] for svc in manifest["hubs"]["CN"].values()} == {"127.0.0.2"}
    assert {svc["host"] for svc in manifest["hubs"]["CA"].values()} == {"127.0.0.3"}
    assert {
        (svc["restarts"], svc["state"]) for h in manifest["hubs"].values() for svc in h.values()
    } == {(0, "running")}
    with httpx.Client(timeout=5) as client:
        for url in urls:
            r = client.get(f"{url}/readyz")
            assert r.status_code == 200, (url, r.text)
            assert r.json()["checks"] == {"database": "ok", "broker": "ok"}

    status = subprocess.run(
        [sys.executable, "-m", "ehub_cli", "network", "status", "--var-dir", str(shared.var)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("readyz=200") == 8
    assert status.stdout.count("restarts=0") == 8
    for hub in manifest["hubs"].values():
        for svc in hub.values():
            assert f"pid={svc['pid']} " in status.stdout


def test_a_killed_service_is_restarted_and_the_others_keep_their_pids(shared: Network):
    before = shared.pids()
    old = before[("CN", "logistics")]
    new = kill_and_wait_restart(shared, "CN", "logistics")
    assert new != old and not _alive(old)
    after = shared.pids()
    assert after.pop(("CN", "logistics")) == new
    del before[("CN", "logistics")]
    assert after == before  # the other 7 services were left alone
    assert all(_alive(p) for p in after.values())
    svc = shared.service("CN", "logistics")
    assert (svc["restarts"], svc["state"]) == (1, "running")
    assert "CN logistics died (signal SIGKILL); restart #1 in 0.5 s" in shared.output()

    status = subprocess.run(
        [sys.executable, "-m", "ehub_cli", "network", "status", "--var-dir", str(shared.var)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    line = next(x for x in status.stdout.splitlines() if x.startswith("CN logistics"))
    assert "readyz=200" in line and f"pid={new} " in line and "restarts=1" in line, line


def _demo_order(manifest: dict[str, Any]) -> dict[str, Any]:
    """The body scripts/demo_order.py places: two lobsters from CA's demo seller."""
    demo = manifest["demo"]["CA"]
    return {
        "seller_hub": "CA",
        "seller_id": demo["seller_id"],
        "partner_reference": "demo-" + uuid.uuid4().hex[:8],
        "buyer": {"id": "buyer-42", "identity_number": "110101199003074578"},
        "ship_to": {
            "name": "Li Wei",
            "street": ["88 Century Avenue"],
            "city": "Shanghai",
            "postal_code": "200120",
            "country": "CN",
            "phone": "+86 21 5555 0100",
        },
        "lines": [{"product_id": demo["product_id"], "quantity": 2}],
        "currency": "CNY",
    }


def test_events_pending_for_a_killed_gateway_flow_once_it_is_restarted(shared: Network):
    manifest = shared.manifest()
    cn = manifest["hubs"]["CN"]["gateway"]["url"]
    ca_gateway = manifest["hubs"]["CA"]["gateway"]
    demo = manifest["demo"]
    # The demo marketplace buys at CN; CA's copy of the order is its demo seller's.
    as_market = {"Authorization": f"Bearer {demo['CN']['marketplace_key']}"}
    as_seller = {"Authorization": f"Bearer {demo['CA']['seller_key']}"}
    body = _demo_order(manifest)
    key = str(uuid.uuid4())
    with httpx.Client(timeout=30) as http:
        # The hubs load each other's keys shortly after the manifest appears; until
        # then placing is refused (502/503) and retried with the same key.
        def placed() -> httpx.Response | None:
            r = http.post(
                f"{cn}/v1/orders", json=body, headers={**as_market, "Idempotency-Key": key}
            )
            return r if r.status_code not in (502, 503) else None

        r = wait_until(placed, timeout=90, interval=0.5, what="CN to place the demo order")
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]
        # The order is recorded at CN; CA's gateway dies before the order reaches it:
        # CN's saga sends OrderPlaced to a hub that is down.
        os.kill(ca_gateway["pid"], signal.SIGKILL)
        killed_at = datetime.now().astimezone()
        wait_until(
            lambda: shared.service("CA", "gateway")["pid"] != ca_gateway["pid"],
            timeout=60,
            what="CA gateway restarted",
        )

        def at_ca() -> dict[str, Any] | None:
            try:
                r = http.get(f"{ca_gateway['url']}/v1/orders/{order_id}", headers=as_seller)
            except httpx.HTTPError:
                return None
            return r.json() if r.status_code == 200 else None

        try:
            order = wait_until(at_ca, timeout=120, interval=0.5, what=f"{order_id} at CA")
        except AssertionError:
            raise AssertionError(shared.logs(order_id) + "\n" + shared.output()) from None
    first = order["timeline"][0]
    assert (first["what"], first["hub"]) == ("OrderPlaced", "CN"), first
    # It reached CA after the kill: the new gateway process took it.
    assert datetime.fromisoformat(first["at"]) > killed_at, (first["at"], killed_at)
    svc = shared.service("CA", "gateway")
    assert svc["restarts"] == 1 and svc["state"] == "running"
    assert "CA gateway died (signal SIGKILL); restart #1 in 0.5 s" in shared.output()


def test_a_killed_broker_is_restarted_and_an_order_goes_on_through_it(shared: Network):
    """The embedded broker dies just after an order is placed: the supervisor starts it
    again on the same port, empty; what it had acknowledged is published again (the
    relays' audit), and the order goes on to be shipped by the seller's hub."""
    manifest = shared.manifest()
    cn = manifest["hubs"]["CN"]["gateway"]["url"]
    ca = manifest["hubs"]["CA"]["gateway"]["url"]
    broker = manifest["broker"]
    assert broker["embedded"] and broker["restarts"] == 0, broker
    demo = manifest["demo"]
    as_market = {"Authorization": f"Bearer {demo['CN']['marketplace_key']}"}
    as_seller = {"Authorization": f"Bearer {demo['CA']['seller_key']}"}
    with httpx.Client(timeout=30) as http:
        r = http.post(
            f"{cn}/v1/orders",
            json=_demo_order(manifest),
            headers={**as_market, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]
        os.kill(broker["pid"], signal.SIGKILL)

        def restarted() -> dict[str, Any] | None:
            b = shared.manifest()["broker"]
            return b if b["restarts"] == 1 and b["pid"] != broker["pid"] else None

        now = wait_until(restarted, timeout=60, what="the broker restarted")
        assert now["bootstrap"] == broker["bootstrap"] and _alive(now["pid"])
        assert "broker died; restart #1" in shared.output()

        def shipped_at_ca() -> str | None:
            try:
                r = http.get(f"{ca}/v1/orders/{order_id}", headers=as_seller)
            except httpx.HTTPError:
                return None
            state = r.json().get("state") if r.status_code == 200 else None
            return state if state in ("shipped", "in_transit", "delivered") else None

        try:
            wait_until(shipped_at_ca, timeout=150, interval=0.5, what=f"{order_id} shipped")
        except AssertionError:
            raise AssertionError(shared.logs(order_id) + "\n" + shared.output()) from None


def test_sigterm_during_a_restart_back_off_stops_everything(shared: Network):
    manifest = shared.manifest()
    pids = [svc["pid"] for hub in manifest["hubs"].values() for svc in hub.values()]
    pids.append(manifest["broker"]["pid"])
    descendants = {p for pid in pids for p in _children_of(pid)}
    # SIGTERM while a service waits out its restart back-off still stops everything,
    # restarted services included.
    os.kill(manifest["hubs"]["CN"]["customs"]["pid"], signal.SIGKILL)
    wait_until(
        lambda: shared.service("CN", "customs")["state"] == "restarting",
        timeout=10,
        interval=0.02,
        what="CN customs in back-off",
    )
    shared.proc.send_signal(signal.SIGTERM)
    assert shared.proc.wait(30) == 0
    everything = pids + list(descendants)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in everything):
        time.sleep(0.1)
    assert [p for p in everything if _alive(p)] == []
    assert not shared.manifest_path.exists()
    out = shared.output()
    assert "CN customs died (signal SIGKILL); restart #1 in 0.5 s" in out, out
    assert out.rstrip().endswith("stopping..."), out


# -- the supervisor's restart bookkeeping, without processes --------------------------------


def test_back_off_doubles_to_ten_seconds_and_resets_after_a_minute_of_uptime():
    delays = []
    delay = 0.0
    for _ in range(8):
        delay = next_delay(delay, uptime=1.0)
        delays.append(delay)
    assert delays == [0.5, 1, 2, 4, 8, 10, 10, 10]
    assert RESTART_DELAY_MIN == 0.5 and RESTART_DELAY_MAX == 10
    assert next_delay(10, uptime=RESTART_RESET_AFTER - 1) == 10
    assert next_delay(10, uptime=RESTART_RESET_AFTER) == 0.5
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"
    assert describe_exit(3) == "exit code 3"


class _Exited:
    """Stands for a Popen whose process has exited."""

    def __init__(self, returncode: int, pid: int = 0) -> None:
        self.returncode = returncode
        self.pid = pid

    def poll(self) -> int | None:
        return self.returncode


class _Running(_Exited):
    def __init__(self, pid: int) -> None:
        super().__init__(0, pid)

    def poll(self) -> int | None:
        return None


def test_supervise_restarts_after_the_back_off_and_rewrites_the_manifest(tmp_path, capsys):
    plan = NetworkPlan.make(["CN"], tmp_path, base_port=0)
    sup = Supervisor(plan)
    spawned: list[str] = []
    next_pid = iter(range(1000, 2000))

    def spawn(svc: Any) -> Any:
        spawned.append(svc.service)
        svc.pid = next(next_pid)
        svc.state = "running"
        return _Running(svc.pid)

    sup._spawn = spawn  # type: ignore[method-assign]
    for svc in plan.services:
        sup.children.append(Child(svc, spawn(svc), started_at=0.0))  # type: ignore[arg-type]
    spawned.clear()
    logistics = next(c for c in sup.children if c.svc.service == "logistics")
    manifest = tmp_path / "network.json"

    def state() -> tuple[Any, ...]:
        svc = json.loads(manifest.read_text())["hubs"]["CN"]["logistics"]
        return svc["pid"], svc["restarts"], svc["state"]

    # Dies within its first minute, three times: 0.5 s, 1 s, 2 s.
    now = 10.0
    for k, delay in enumerate((0.5, 1, 2), start=1):
        logistics.proc = _Exited(-signal.SIGKILL)  # type: ignore[assignment]
        sup.supervise(now)
        assert state()[1:] == (k - 1, "restarting")
        sup.supervise(now + delay - 0.01)
        assert spawned == ["logistics"] * (k - 1)
        sup.supervise(now + delay)
        assert spawned == ["logistics"] * k
        assert state() == (logistics.svc.pid, k, "running")
        now += delay + 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "CN logistics died (signal SIGKILL); restart #1 in 0.5 s",
        "CN logistics died (signal SIGKILL); restart #2 in 1 s",
        "CN logistics died (signal SIGKILL); restart #3 in 2 s",
    ]
    # After a minute up, the next death waits 0.5 s again.
    logistics.started_at = now
    logistics.proc = _Exited(1)  # type: ignore[assignment]
    sup.supervise(now + RESTART_RESET_AFTER)
    assert capsys.readouterr().out == "CN logistics died (exit code 1); restart #4 in 0.5 s\n"
    # A process that cannot even be started (no memory to fork) is tried again later.
    now += RESTART_RESET_AFTER + 0.5

    def no_fork(svc: Any) -> Any:
        raise OSError(12, "Cannot allocate memory")

    sup._spawn = no_fork  # type: ignore[method-assign]
    sup.supervise(now)
    assert capsys.readouterr().out.startswith("CN logistics could not be started (")
    assert state()[1:] == (3, "restarting")
    sup._spawn = spawn  # type: ignore[method-assign]
    sup.supervise(now + 0.99)
    assert spawned == ["logistics"] * 3
    sup.supervise(now + 1)
    assert spawned == ["logistics"] * 4 and state() == (logistics.svc.pid, 4, "running")
    # A signal during the back-off: nothing is started any more.
    logistics.proc = _Exited(-signal.SIGKILL)  # type: ignore[assignment]
    sup.supervise(now + 2)
    sup._signalled = signal.SIGTERM
    sup.supervise(now + 60)
    assert spawned == ["logistics"] * 4
    assert state()[2] == "restarting"


# -- databases on a Postgres server (--postgres) --------------------------------------------


def test_postgres_admin_url_becomes_one_database_per_hub_and_service(tmp_path, monkeypatch):
    server = PostgresServer.parse("postgresql://ehub:s3cr%7Bt@db.example:6543/postgres")
    template = server.url_template()
    assert template == "postgresql+asyncpg://ehub:s3cr%7Bt@db.example:6543/ehub_{hub}_{service}"
    monkeypatch.setenv("EHUB_NETWORK_POSTGRES", "postgresql://ehub:s3cr%7Bt@db.example:6543/x")
    monkeypatch.setenv("EHUB_DATABASE_URL", "sqlite+aiosqlite:///elsewhere/{service}.db")
    plan = NetworkPlan.make(["CN", "CA"], tmp_path, base_port=0, postgres=server)
    assert {(s.hub, s.service): s.database for s in plan.services}[("CA", "logistics")] == (
        "ehub_ca_logistics"
    )
    for svc in plan.services:
        env = service_env(plan, svc, None, "token")
        assert env["EHUB_DATABASE_URL"] == template
        assert "EHUB_NETWORK_POSTGRES" not in env  # the admin URL stays with the supervisor
        # What the service makes of its environment: its own database on the server.
        monkeypatch.setenv("EHUB_DATABASE_URL", env["EHUB_DATABASE_URL"])
        monkeypatch.setenv("EHUB_HUB_ID", env["EHUB_HUB_ID"])
        settings = SERVICES[svc.service].load_settings()
        assert settings.resolved_database_url == server.service_url(svc.hub, svc.service)
        assert settings.resolved_database_url.endswith(f"/ehub_{svc.hub.lower()}_{svc.service}")
    # The supervisor's own work on a gateway (peering) goes to the same database, whatever
    # its environment says.
    monkeypatch.setenv("EHUB_DATABASE_URL", "sqlite+aiosqlite:///elsewhere/{service}.db")
    gateway = Supervisor(plan)._gateway_settings("CA").resolved_database_url
    assert gateway == "postgresql+asyncpg://ehub:s3cr%7Bt@db.example:6543/ehub_ca_gateway"
    # The manifest names the server, never the password.
    info = plan.database_info()
    assert info == {
        "backend": "postgresql",
        "server": "db.example:6543",
        "url": "postgresql+asyncpg://ehub:***@db.example:6543/ehub_{hub}_{service}",
    }
    # Other spellings of an admin URL; what is refused.
    for url in ("postgres://p@h/postgres", "postgresql+asyncpg://p@h:1/postgres"):
        assert (
            PostgresServer.parse(url, "x1")
            .service_url("CN", "customs")
            .startswith("postgresql+asyncpg://p@h")
        )
    with pytest.raises(ValueError, match="postgresql://"):
        PostgresServer.parse("mysql://root@h/db")
    with pytest.raises(ValueError, match="prefix"):
        PostgresServer.parse("postgresql://p@h/postgres", "Bad-Prefix")
    # Without --postgres: SQLite files under the var dir, as before.
    monkeypatch.delenv("EHUB_DATABASE_URL")
    sqlite = NetworkPlan.make(["CN"], tmp_path, base_port=0)
    assert sqlite.database_info() == {
        "backend": "sqlite",
        "files": f"{tmp_path}/<hub>/<service>.db",
    }
    assert sqlite.of_hub("CN")["gateway"].database == f"{tmp_path}/cn/gateway.db"
    assert "EHUB_DATABASE_URL" not in service_env(sqlite, sqlite.services[0], None, "t")


def test_a_reused_gateway_database_with_a_new_hub_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EHUB_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # no broker is started
    monkeypatch.delenv("EHUB_DATABASE_URL", raising=False)
    plan = NetworkPlan.make(["CN"], tmp_path, base_port=0)
    gateway_db = tmp_path / "cn" / "gateway.db"
    gateway_db.parent.mkdir()
    gateway_db.write_bytes(b"")  # left by an earlier network, whose keys are gone
    sup = Supervisor(plan)
    with pytest.raises(RuntimeError, match="reused, but its signing key was just created"):
        sup.start()
    assert sup.children == [] and sup.databases["reused"] == [str(gateway_db)]
    # --fresh starts from empty databases (the SQLite files go); the key is kept.
    gateway_db.with_name("gateway.db-wal").write_bytes(b"")
    fresh = Supervisor(plan, fresh=True)
    fresh._prepare_databases()
    assert not gateway_db.exists() and not gateway_db.with_name("gateway.db-wal").exists()
    assert fresh.databases == {"created": [s.database for s in plan.services], "reused": []}
    assert list((tmp_path / "cn" / "keys").iterdir())


async def _pg_fetch(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def pg_fetch(url: str, sql: str, *args: Any) -> list[Any]:
    return asyncio.run(_pg_fetch(url, sql, *args))


@pytest.mark.postgres
def test_postgres_databases_are_created_reused_refused_in_use_and_recreated_fresh():
    server = PostgresServer.parse(postgres_or_skip(), f"ehub_t{uuid.uuid4().hex[:10]}")
    names = [server.database(hub, "catalog") for hub in HUBS]
    admin = server.admin.render_as_string(hide_password=False)
    try:
        assert server.prepare(names) == (names, [])
        one = server.service_url("CN", "catalog")
        pg_fetch(one, "CREATE TABLE kept (id int)")
        assert server.prepare(names) == ([], names)  # a second network up reuses them
        assert pg_fetch(one, "SELECT count(*) FROM kept")[0][0] == 0

        async def while_connected() -> None:
            import asyncpg

            conn = await asyncpg.connect(one.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                with pytest.raises(
                    RuntimeError, match=r"in use \(connections: ehub_t\w+_cn_catalog 1\)"
                ):
                    await asyncio.to_thread(server.prepare, names)
            finally:
                await conn.close()

        asyncio.run(while_connected())
        assert server.prepare(names, fresh=True) == (names, [])
        assert pg_fetch(one, "SELECT to_regclass('kept') IS NULL")[0][0] is True
    finally:
        server.drop(names)
    rows = pg_fetch(admin, "SELECT datname FROM pg_database WHERE datname = ANY($1)", names)
    assert rows == []


@pytest.mark.postgres
def test_network_up_on_postgres_keeps_every_database_on_the_server(tmp_path):
    net = start_network(tmp_path / "var", postgres=postgres_or_skip())
    assert net.postgres is not None
    admin = net.postgres.admin.render_as_string(hide_password=False)
    try:
        manifest = net.manifest()
        assert manifest["database"] == {
            "backend": "postgresql",
            "server": net.postgres.server,
            "url": net.postgres.url_template(hide_password=True),
        }
        expected = {
            (hub, name): net.postgres.database(hub, name) for hub in HUBS for name in SERVICES
        }
        assert {
            (hub, name): svc["database"]
            for hub, services in manifest["hubs"].items()
            for name, svc in services.items()
        } == expected
        assert "databases  postgresql " in net.output() and "(8 created, 0 reused)" in net.output()
        with httpx.Client(timeout=10) as client:
            for hub in manifest["hubs"].values():
                for svc in hub.values():
                    r = client.get(f"{svc['url']}/readyz")
                    assert r.json()["checks"]["database"] == "ok", (svc["url"], r.text)
        rows = pg_fetch(
            admin,
            "SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY datname",
            list(expected.values()),
        )
        assert sorted(r[0] for r in rows) == sorted(expected.values())
        # Migrated, and holding what the supervisor did: each gateway pins the other hub
        # (written by the CLI's own connection) and has the demo partners (through HTTP).
        for hub, other in (("CN", "CA"), ("CA", "CN")):
            url = net.database_url(hub, "gateway")
            tables = {
                r[0]
                for r in pg_fetch(
                    url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
            assert {"orders", "saga_commands", "fed_peers", "partners"} <= tables, tables
            assert [r[0] for r in pg_fetch(url, "SELECT hub_id FROM fed_peers")] == [other]
            assert pg_fetch(url, "SELECT count(*) FROM partners")[0][0] >= 2
            for name in SERVICES:
                version = pg_fetch(net.database_url(hub, name), "SELECT * FROM alembic_version")
                assert len(version) == 1, (hub, name)
        assert list(net.var.rglob("*.db")) == []  # no SQLite anywhere
        # A second network on the same databases is refused while this one runs.
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "ehub_cli",
                "network",
                "up",
                "--var-dir",
                str(tmp_path / "second"),
                "--base-port",
                "0",
                "--db-prefix",
                net.postgres.prefix,
            ],
            env=gateway_env(EHUB_NETWORK_POSTGRES=admin),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert "are in use (connections: " in second.stderr, second.stderr
    finally:
        net.stop()
    rows = pg_fetch(
        admin, "SELECT datname FROM pg_database WHERE datname = ANY($1)", net.databases()
    )
    assert rows == []


def test_each_hubs_simulated_carriers_get_a_secret_seed_of_their_own(tmp_path, monkeypatch):
    # The carriers' webhook keys once came from one published seed; a network now gives
    # each hub's logistics a secret derived from the network's token, stable across the
    # service's restarts and different per hub and per network.
    monkeypatch.delenv("EHUB_CARRIER_SIMULATOR_SEED", raising=False)
    plan = NetworkPlan.make(["CN", "CA"], tmp_path, base_port=0)
    logistics = {s.hub: s for s in plan.services if s.service == "logistics"}

    def seed(hub: str, token: str) -> str:
        return service_env(plan, logistics[hub], None, token)["EHUB_CARRIER_SIMULATOR_SEED"]

    assert seed("CN", "t1") == seed("CN", "t1")
    assert len({seed("CN", "t1"), seed("CA", "t1"), seed("CN", "t2")}) == 3
    assert "ehub-dev-simulator" not in {seed("CN", "t1"), seed("CA", "t1")}
    others = [s for s in plan.services if s.service != "logistics"]
    assert all(
        "EHUB_CARRIER_SIMULATOR_SEED" not in service_env(plan, s, None, "t1") for s in others
    )

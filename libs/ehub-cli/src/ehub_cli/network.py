"""A local network of hubs: the broker plus each hub's four services as separate
uvicorn processes, each hub on its own loopback address (127.0.0.2, 127.0.0.3, ...).

The supervisor writes every URL to ``<var>/network.json`` and stops all children on
SIGINT/SIGTERM; children also get SIGTERM from the kernel if the supervisor itself is
killed, so no process is left behind.

A service that dies while the network runs is started again with the same command,
environment and port, after a back-off of 0.5 s doubling up to 10 s (back to 0.5 s once
a process has lived 60 s). Its events wait in its outbox meanwhile; the manifest records
each service's ``pid``, ``restarts`` and ``state`` (``running`` or ``restarting``).

Databases are SQLite files under ``<var>/<hub>/`` unless ``--postgres ADMIN_URL`` names
a Postgres server: then the network creates (if missing) one database per hub and
service there, ``<prefix>_<hub>_<service>`` (``ehub_cn_gateway``, ...), and every
service and the supervisor's own work on a gateway (peering) use them, through one
``EHUB_DATABASE_URL`` template. Like the SQLite files, they outlive the network and are
reused by the next ``network up``; one whose databases are in use (another network runs
on them) is refused, and ``--fresh`` starts from empty databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ehub_cli.federation import init_hub, with_db
from ehub_cli.services import SERVICES
from ehub_core.broker import BrokerError, EmbeddedBroker, _die_with_parent, free_port
from ehub_core.db import Database
from ehub_core.settings import CoreSettings, load_settings
from ehub_gateway.federation.trust import add_peer
from ehub_gateway.settings import GatewaySettings

# Restart back-off: the first restart waits RESTART_DELAY_MIN, each quick death doubles
# the wait up to RESTART_DELAY_MAX; a process that lived RESTART_RESET_AFTER resets it.
RESTART_DELAY_MIN = 0.5
RESTART_DELAY_MAX = 10.0
RESTART_RESET_AFTER = 60.0


DEFAULT_DB_PREFIX = "ehub"
_DB_PREFIX_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DB_SLOT = "EHUBDATABASENAME"  # stands for the database name while a URL is rendered


@dataclass(frozen=True)
class PostgresServer:
    """The Postgres server a network keeps its databases on, from an admin URL such as
    ``postgresql://postgres@127.0.0.1:5432/postgres`` (what ``scripts/pg-throwaway``
    prints): a role that may create databases, and a database to connect to meanwhile.

    Each hub's service gets the database ``<prefix>_<hub>_<service>`` (lower case).
    """

    admin: URL
    prefix: str = DEFAULT_DB_PREFIX

    @classmethod
    def parse(cls, admin_url: str, prefix: str = DEFAULT_DB_PREFIX) -> PostgresServer:
        """Raise ValueError, with the reason, for anything but a Postgres URL."""
        try:
            url = make_url(admin_url.strip())
        except ArgumentError:
            raise ValueError(
                "expected a URL such as postgresql://postgres@127.0.0.1:5432/postgres"
            ) from None
        if url.drivername not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ValueError(f"must be a postgresql:// URL (got {url.drivername}://...)")
        if not _DB_PREFIX_RE.match(prefix):
            raise ValueError(
                f"database prefix must be a lower-case letter, then up to 39 of a-z, 0-9, _"
                f" (got {prefix!r})"
            )
        return cls(url.set(drivername="postgresql", database=url.database or "postgres"), prefix)

    @property
    def server(self) -> str:
        return f"{self.admin.host or 'localhost'}:{self.admin.port or 5432}"

    def database(self, hub: str, service: str) -> str:
        return f"{self.prefix}_{hub.lower()}_{service}"

    def url_template(self, *, hide_password: bool = False) -> str:
        """``EHUB_DATABASE_URL`` for every service: ``postgresql+asyncpg://.../
        <prefix>_{hub}_{service}``, which each process's settings fill in."""
        rendered = self.admin.set(drivername="postgresql+asyncpg", database=_DB_SLOT)
        text = rendered.render_as_string(hide_password=hide_password)
        text = text.replace("{", "{{").replace("}", "}}")  # literal braces survive format()
        return text.replace(_DB_SLOT, f"{self.prefix}_{{hub}}_{{service}}")

    def service_url(self, hub: str, service: str) -> str:
        """The database URL ``hub``'s ``service`` ends up with (as its settings fill in
        the template)."""
        return self.url_template().format(hub=hub.lower(), service=service)

    async def _connect(self) -> Any:
        import asyncpg

        try:
            return await asyncpg.connect(
                self.admin.render_as_string(hide_password=False), timeout=15
            )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            raise RuntimeError(f"cannot connect to Postgres at {self.server}: {exc}") from None

    def prepare(self, names: list[str], *, fresh: bool = False) -> tuple[list[str], list[str]]:
        """Create the databases that are missing (all of them, dropped first, with
        ``fresh``); return (created, reused). Refuse (RuntimeError) if any of them has a
        connection: another network runs on them."""

        async def run() -> tuple[list[str], list[str]]:
            import asyncpg

            conn = await self._connect()
            try:
                busy = await conn.fetch(
                    "SELECT datname, count(*) AS n FROM pg_stat_activity "
                    "WHERE datname = ANY($1::text[]) GROUP BY datname ORDER BY datname",
                    names,
                )
                if busy:
                    used = ", ".join(f"{r['datname']} {r['n']}" for r in busy)
                    raise RuntimeError(
                        f"the Postgres databases on {self.server} are in use (connections: "
                        f"{used}): another network runs on them; stop it, or name other "
                        "databases with --db-prefix"
                    )
                rows = await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", names
                )
                existing = {r["datname"] for r in rows}
                if fresh:
                    for name in sorted(existing):
                        await conn.execute(f'DROP DATABASE "{name}"')
                    existing = set()
                created, reused = [], []
                for name in names:
                    if name in existing:
                        reused.append(name)
                        continue
                    try:
                        await conn.execute(f'CREATE DATABASE "{name}"')
                    except asyncpg.DuplicateDatabaseError:  # created meanwhile
                        reused.append(name)
                        continue
                    created.append(name)
                return created, reused
            except asyncpg.PostgresError as exc:
                raise RuntimeError(f"Postgres at {self.server}: {exc}") from None
            finally:
                await conn.close()

        return asyncio.run(run())

    def drop(self, names: list[str]) -> None:
        """Drop the databases (gone already is fine), closing what still uses them."""

        async def run() -> None:
            conn = await self._connect()
            try:
                for name in names:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(run())


@dataclass
class ServiceProcess:
    hub: str
    service: str
    host: str
    port: int
    pid: int | None = None
    restarts: int = 0
    state: str = "running"  # running | restarting
    database: str = ""  # the SQLite file or the Postgres database's name (no credentials)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class NetworkPlan:
    hubs: list[str]
    var_dir: Path
    base_port: int = 8000
    services: list[ServiceProcess] = field(default_factory=list)
    postgres: PostgresServer | None = None  # None: EHUB_DATABASE_URL or the SQLite default

    @classmethod
    def make(
        cls,
        hubs: list[str],
        var_dir: Path,
        base_port: int = 8000,
        postgres: PostgresServer | None = None,
    ) -> NetworkPlan:
        plan = cls(hubs=hubs, var_dir=var_dir, base_port=base_port, postgres=postgres)
        for i, hub in enumerate(hubs):
            host = f"127.0.0.{2 + i}"
            for spec in SERVICES.values():
                port = free_port(host) if base_port == 0 else base_port + spec.port_offset
                svc = ServiceProcess(hub, spec.name, host, port)
                svc.database = plan.database_name(hub, spec.name)
                plan.services.append(svc)
        return plan

    def of_hub(self, hub: str) -> dict[str, ServiceProcess]:
        return {s.service: s for s in self.services if s.hub == hub}

    @property
    def database_url(self) -> str:
        """The ``EHUB_DATABASE_URL`` template every service of the network gets."""
        if self.postgres is not None:
            return self.postgres.url_template()
        default = CoreSettings.model_fields["database_url"].default
        return os.environ.get("EHUB_DATABASE_URL") or str(default)

    def resolved_database_url(self, hub: str, service: str) -> str:
        """What CoreSettings.resolved_database_url makes of the template."""
        return self.database_url.format(hub=hub.lower(), service=service, var_dir=self.var_dir)

    def database_name(self, hub: str, service: str) -> str:
        """The SQLite file or the Postgres database of ``hub``'s ``service`` ("" for a
        URL the services will refuse, naming the variable, when they start)."""
        try:
            return make_url(self.resolved_database_url(hub, service)).database or ""
        except (ArgumentError, KeyError, IndexError, ValueError):
            return ""

    def database_info(self) -> dict[str, Any]:
        """Where the databases are, for the manifest and the banner (never a password)."""
        if self.postgres is not None:
            return {
                "backend": "postgresql",
                "server": self.postgres.server,
                "url": self.postgres.url_template(hide_password=True),
            }
        # {hub} and {service} as <hub> and <service>: readable, and still a URL.
        pattern = self.database_url.replace("{hub}", "<hub>").replace("{service}", "<service>")
        try:
            url = make_url(pattern.format(var_dir=self.var_dir))
        except (ArgumentError, KeyError, IndexError, ValueError):
            return {"backend": "unknown"}  # the services refuse it when they start
        if url.get_backend_name() == "sqlite":
            return {"backend": "sqlite", "files": url.database}
        return {
            "backend": url.get_backend_name(),
            "server": f"{url.host or 'localhost'}:{url.port or 5432}",
            "url": url.render_as_string(hide_password=True),
        }


def service_env(
    plan: NetworkPlan, svc: ServiceProcess, bootstrap: str | None, internal_token: str
) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EHUB_NETWORK_POSTGRES", None)  # the admin credential stays with the supervisor
    env["EHUB_INTERNAL_TOKEN"] = internal_token
    env["EHUB_HUB_ID"] = svc.hub
    env["EHUB_VAR_DIR"] = str(plan.var_dir)
    if plan.postgres is not None:
        env["EHUB_DATABASE_URL"] = plan.postgres.url_template()
    if bootstrap:
        env["EHUB_KAFKA_BOOTSTRAP"] = bootstrap
    siblings = plan.of_hub(svc.hub)
    if svc.service == "gateway":
        env["EHUB_PUBLIC_URL"] = svc.url
        for name in ("catalog", "customs", "logistics"):
            env[f"EHUB_{name.upper()}_URL"] = siblings[name].url
    if svc.service == "logistics":
        # A local network has no real carriers: the simulators move every parcel.
        env.setdefault("EHUB_CARRIER_SIMULATION", "1")
    return env


# One believable seller per hub, with a product, so an order can be placed at once.
DEMO_SELLERS: dict[str, dict[str, Any]] = {
    "CA": {
        "seller": {
            "name": "Atlantic Lobster Co.",
            "ship_from": {
                "name": "Atlantic Lobster Co.",
                "street": ["1 Lower Water St"],
                "city": "Halifax",
                "state": "NS",
                "postal_code": "B3J 1R7",
                "country": "CA",
                "phone": "+1 902 555 0100",
            },
        },
        "product": {
            "title": "Live Atlantic lobster, 1 lb",
            "hs_code": "030632",
            "price": "45.00",
            "currency": "CAD",
            "weight_kg": "0.900",
        },
    },
    "CN": {
        "seller": {
            "name": "Hangzhou Silk Works",
            "ship_from": {
                "name": "Hangzhou Silk Works",
                "street": ["18 Wulin Road"],
                "city": "Hangzhou",
                "postal_code": "310006",
                "country": "CN",
                "phone": "+86 571 5555 0100",
            },
        },
        "product": {
            "title": "Silk scarf, 90 x 90 cm",
            "hs_code": "621410",
            "price": "180.00",
            "currency": "CNY",
            "weight_kg": "0.100",
        },
    },
}


def _partner(client: httpx.Client, gateway: str, token: str, name: str, role: str) -> Any:
    """A partner of the hub (gateway operator API) and its first API key."""
    r = client.post(
        f"{gateway}/operator/v1/partners",
        json={"name": name, "role": role},
        headers={"Authorization": f"Bearer {token}"},
    )
    r.raise_for_status()
    return r.json()


def seed_demo(plan: NetworkPlan, internal_token: str) -> dict[str, Any]:
    """Create each hub's demo partners (a seller and a marketplace, with their API keys)
    and the demo seller (auto-accepting its orders, owned by the seller partner) with
    one product."""
    demo: dict[str, Any] = {}
    operator = {"Authorization": f"Bearer {internal_token}"}
    with httpx.Client(timeout=10.0) as client:
        for hub in plan.hubs:
            spec = DEMO_SELLERS.get(hub)
            if spec is None:
                continue
            services = plan.of_hub(hub)
            gateway, catalog = services["gateway"].url, services["catalog"].url
            owner = _partner(client, gateway, internal_token, spec["seller"]["name"], "seller")
            market = _partner(
                client, gateway, internal_token, f"{hub} demo marketplace", "marketplace"
            )
            as_seller = {"Authorization": f"Bearer {owner['key']['key']}"}
            body = {**spec["seller"], "country": hub, "auto_accept": True}
            # Only the hub's operator says a seller is a verified SME.
            seller = client.post(
                f"{catalog}/operator/v1/sellers",
                json={**body, "owner": owner["partner"]["id"], "sme_verified": True},
                headers=operator,
            )
            if seller.status_code == 404:  # a catalog without the operator API
                seller = client.post(
                    f"{gateway}/v1/sellers", json={**body, "sme_verified": True}, headers=as_seller
                )
            seller.raise_for_status()
            seller_id = seller.json()["id"]
            product = client.post(
                f"{gateway}/v1/products",
                json={
                    **spec["product"],
                    "seller_id": seller_id,
                    "origin_country": hub,
                    "stock": 500,
                },
                headers=as_seller,
            )
            product.raise_for_status()
            demo[hub] = {
                "seller_id": seller_id,
                "product_id": product.json()["id"],
                # API keys of the demo partners (this file is the operator's only: 0600)
                "seller_key": owner["key"]["key"],
                "marketplace_key": market["key"]["key"],
            }
    return demo


@dataclass
class Child:
    """One supervised service: its current process and its restart bookkeeping."""

    svc: ServiceProcess
    proc: subprocess.Popen[bytes]
    started_at: float  # time.monotonic() of the current process's start
    delay: float = 0.0  # the last restart's back-off (0: none yet)
    restart_at: float | None = None  # when a dead process is started again


def describe_exit(returncode: int) -> str:
    """``exit code 1`` or ``signal SIGKILL``, from a Popen return code."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def next_delay(previous: float, uptime: float) -> float:
    """The back-off before restarting a process that died after ``uptime`` seconds."""
    if previous <= 0 or uptime >= RESTART_RESET_AFTER:
        return RESTART_DELAY_MIN
    return min(previous * 2, RESTART_DELAY_MAX)


class Supervisor:
    def __init__(
        self, plan: NetworkPlan, *, log_dir: Path | None = None, fresh: bool = False
    ) -> None:
        self.plan = plan
        self.fresh = fresh  # start from empty databases
        self.databases: dict[str, list[str]] = {"created": [], "reused": []}
        self.log_dir = log_dir or plan.var_dir / "logs"
        self.broker: EmbeddedBroker | None = None
        self.broker_restarts = 0
        self.bootstrap = os.environ.get("EHUB_KAFKA_BOOTSTRAP") or None
        self.children: list[Child] = []
        self._stopping = False
        self._signalled: int | None = None
        self.internal_token = os.environ.get("EHUB_INTERNAL_TOKEN") or secrets.token_urlsafe(24)
        self.fingerprints: dict[str, str] = {}
        self.demo: dict[str, Any] = {}

    def start(self, ready_timeout: float = 180.0) -> None:
        self.plan.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_databases()
        if not self.bootstrap:
            self.broker = EmbeddedBroker(log_path=self.log_dir / "broker.log").start()
            self.bootstrap = self.broker.bootstrap
        for hub in self.plan.hubs:
            settings = self._gateway_settings(hub)
            ring, created = init_hub(settings)
            gateway_db = self.plan.of_hub(hub)["gateway"].database
            if created and gateway_db in self.databases["reused"]:
                # The peers in the databases pin the hub's old key (and keep a key id's
                # first key): federation would fail on the new key's signatures.
                raise RuntimeError(
                    f"{hub}'s database {gateway_db} is reused, but its signing key was just "
                    f"created in {settings.resolved_keys_dir}: the peers recorded there pin "
                    "the old key. Use the var dir of the network that made the databases, "
                    "or --fresh."
                )
            self.fingerprints[hub] = ring.active_key().fingerprint
        for svc in self.plan.services:
            self.children.append(Child(svc, self._spawn(svc), time.monotonic()))
        self._wait_ready(ready_timeout)
        self._peer_hubs()
        self.demo = seed_demo(self.plan, self.internal_token)
        self.write_manifest()

    def _prepare_databases(self) -> None:
        """Postgres: create the missing databases (refused if another network uses
        them). ``fresh``: drop them first, or delete the SQLite files."""
        names = [s.database for s in self.plan.services]
        if self.plan.postgres is not None:
            created, reused = self.plan.postgres.prepare(names, fresh=self.fresh)
            self.databases = {"created": created, "reused": reused}
            return
        if self.plan.database_info()["backend"] != "sqlite":  # EHUB_DATABASE_URL's
            if self.fresh:
                raise RuntimeError("--fresh drops Postgres databases only with --postgres")
            return
        for name in names:
            if not name or name == ":memory:":
                continue
            path = Path(name)
            if self.fresh:
                for doomed in (path, Path(f"{name}-wal"), Path(f"{name}-shm")):
                    doomed.unlink(missing_ok=True)
            self.databases["reused" if path.exists() else "created"].append(name)

    def log_path(self, svc: ServiceProcess) -> Path:
        return self.log_dir / f"{svc.hub.lower()}-{svc.service}.log"

    def _spawn(self, svc: ServiceProcess) -> subprocess.Popen[bytes]:
        """Start ``svc``'s process (the same command, environment and port every time)."""
        log = self.log_path(svc).open("ab")
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ehub_cli",
                    "serve",
                    svc.service,
                    "--host",
                    svc.host,
                    "--port",
                    str(svc.port),
                ],
                env=service_env(self.plan, svc, self.bootstrap, self.internal_token),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        svc.pid = proc.pid
        svc.state = "running"
        return proc

    def _gateway_settings(self, hub: str) -> GatewaySettings:
        # The services' own database, whatever the environment says.
        return load_settings(
            GatewaySettings,
            hub_id=hub,
            var_dir=self.plan.var_dir,
            kafka_bootstrap=self.bootstrap,
            database_url=self.plan.database_url,
        )

    def _peer_hubs(self) -> None:
        """Every hub of the local network trusts every other, pinned by fingerprint; they
        share the broker, so they talk over the backbone."""
        for hub in self.plan.hubs:
            settings = self._gateway_settings(hub)
            for other in self.plan.hubs:
                if other == hub:
                    continue
                url = self.plan.of_hub(other)["gateway"].url

                async def work(
                    db: Database, url: str = url, other: str = other, hub: str = hub
                ) -> None:
                    await add_peer(
                        db,
                        own_hub=hub,
                        base_url=url,
                        fingerprint=self.fingerprints[other],
                        transport="kafka",
                    )

                with_db(settings, work)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {c.svc.url: c.svc for c in self.children}
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for c in self.children:
                    if c.proc.poll() is not None:
                        raise RuntimeError(
                            f"{c.svc.hub} {c.svc.service} exited "
                            f"({describe_exit(c.proc.returncode)}); see {self.log_path(c.svc)}"
                        )
                for url in list(pending):
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{url}/readyz").status_code == 200:
                            del pending[url]
                if pending:
                    time.sleep(0.2)
        if pending:
            names = ", ".join(f"{s.hub}/{s.service}" for s in pending.values())
            raise RuntimeError(f"not ready within {timeout:.0f}s: {names}")

    def manifest(self) -> dict[str, Any]:
        hubs: dict[str, Any] = {}
        for hub in self.plan.hubs:
            hubs[hub] = {
                name: asdict(s) | {"url": s.url} for name, s in self.plan.of_hub(hub).items()
            }
        return {
            "supervisor_pid": os.getpid(),
            "internal_token": self.internal_token,
            "fingerprints": self.fingerprints,
            "broker": {
                "bootstrap": self.bootstrap,
                "embedded": self.broker is not None,
                "pid": self.broker.pid if self.broker else None,
                "restarts": self.broker_restarts,
            },
            "database": self.plan.database_info(),
            "hubs": hubs,
            "demo": self.demo,
        }

    def write_manifest(self) -> Path:
        """Write ``network.json`` whole (a reader never sees half of it)."""
        path = self.plan.var_dir / "network.json"
        tmp = path.with_name(path.name + ".tmp")
        # It holds the internal token: readable by the operator only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(self.manifest(), indent=2) + "\n")
        os.replace(tmp, path)
        return path

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signalled = signum

    def wait(self, poll: float = 0.2) -> int:
        """Restart dead children until SIGINT/SIGTERM; return the exit code to use."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        while self._signalled is None:
            self.supervise()
            time.sleep(poll)
        return 0

    def supervise(self, now: float | None = None) -> None:
        """One round: schedule the restart of every newly dead child, start those due."""
        changed = self._supervise_broker()
        now = time.monotonic() if now is None else now
        for c in self.children:
            if self._stopping or self._signalled is not None:
                break
            if c.restart_at is None:
                if c.proc.poll() is None:
                    continue
                c.delay = next_delay(c.delay, now - c.started_at)
                c.restart_at = now + c.delay
                c.svc.state = "restarting"
                print(
                    f"{c.svc.hub} {c.svc.service} died ({describe_exit(c.proc.returncode)}); "
                    f"restart #{c.svc.restarts + 1} in {c.delay:g} s",
                    flush=True,
                )
                changed = True
            if now >= c.restart_at:
                try:
                    c.proc = self._spawn(c.svc)
                except OSError as exc:  # e.g. no memory to fork: try again, later
                    c.delay = next_delay(c.delay, 0.0)
                    c.restart_at = now + c.delay
                    print(
                        f"{c.svc.hub} {c.svc.service} could not be started ({exc}); "
                        f"next try in {c.delay:g} s",
                        flush=True,
                    )
                    continue
                c.started_at = now
                c.restart_at = None
                c.svc.restarts += 1
                changed = True
        if changed:
            self.write_manifest()

    def _supervise_broker(self) -> bool:
        """An embedded broker that died is started again on the same port, so the
        services reconnect by themselves. It comes back empty (memory storage): the
        relays find that out and publish again what it had acknowledged
        (docs/architecture.md, "The embedded broker")."""
        broker = self.broker
        if broker is None or broker.alive or self._stopping or self._signalled is not None:
            return False
        print(
            f"broker died; restart #{self.broker_restarts + 1} on {broker.bootstrap} "
            "(empty: it kept everything in memory)",
            flush=True,
        )
        try:
            broker.restart()
        except (OSError, BrokerError) as exc:
            print(f"broker could not be restarted ({exc}); next try in a moment", flush=True)
            return False
        self.broker_restarts += 1
        return True

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        for c in self.children:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for c in self.children:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
        if self.broker:
            self.broker.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.plan.var_dir / "network.json").unlink()


@dataclass
class ServiceStatus:
    hub: str
    service: str
    url: str
    readyz: int | str  # the HTTP status, or the error's name
    pid: int | None
    restarts: int
    state: str


def status(var_dir: Path) -> tuple[dict[str, Any], list[ServiceStatus]]:
    manifest = json.loads((var_dir / "network.json").read_text())
    rows: list[ServiceStatus] = []
    with httpx.Client(timeout=3.0) as client:
        for hub, services in manifest["hubs"].items():
            for name, svc in services.items():
                try:
                    code: int | str = client.get(f"{svc['url']}/readyz").status_code
                except httpx.HTTPError as exc:
                    code = exc.__class__.__name__
                rows.append(
                    ServiceStatus(
                        hub=hub,
                        service=name,
                        url=svc["url"],
                        readyz=code,
                        pid=svc.get("pid"),
                        restarts=int(svc.get("restarts", 0)),
                        state=str(svc.get("state", "running")),
                    )
                )
    return manifest, rows

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

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ehub_cli.federation import init_hub, with_db
from ehub_cli.network_demo import DEMO_SELLERS, seed_demo
from ehub_cli.network_plan import (
    NetworkPlan,
    ServiceProcess,
    service_env,
    unavailable_addresses,
)
from ehub_cli.network_postgres import DEFAULT_DB_PREFIX, PostgresServer
from ehub_cli.network_status import ServiceStatus, status
from ehub_core.broker import BrokerError, EmbeddedBroker, _die_with_parent
from ehub_core.db import Database
from ehub_core.settings import load_settings
from ehub_gateway.federation.trust import add_peer
from ehub_gateway.settings import GatewaySettings

__all__ = [  # the network's parts, importable from here as before the split
    "DEFAULT_DB_PREFIX",
    "DEMO_SELLERS",
    "NetworkPlan",
    "PostgresServer",
    "ServiceProcess",
    "ServiceStatus",
    "Supervisor",
    "seed_demo",
    "service_env",
    "status",
    "unavailable_addresses",
]

# Restart back-off: the first restart waits RESTART_DELAY_MIN, each quick death doubles
# the wait up to RESTART_DELAY_MAX; a process that lived RESTART_RESET_AFTER resets it.
RESTART_DELAY_MIN = 0.5
RESTART_DELAY_MAX = 10.0
RESTART_RESET_AFTER = 60.0


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
        self.started = time.monotonic()  # "ready after N s" counts from here

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.1f}s"

    def start(self, ready_timeout: float = 180.0) -> None:
        busy = unavailable_addresses(self.plan)
        if busy:
            raise RuntimeError(
                f"cannot listen on {', '.join(busy)}: stop what uses "
                f"{'it' if len(busy) == 1 else 'them'}, or choose other ports with "
                "--base-port (make run PORT_BASE=...)"
            )
        self.plan.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_databases()
        if not self.bootstrap:
            self.broker = EmbeddedBroker(log_path=self.log_dir / "broker.log").start()
            self.bootstrap = self.broker.bootstrap
            print(f"  ready  broker        {self.bootstrap:<24} {self.elapsed()}", flush=True)
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
                            svc = pending.pop(url)
                            name = f"{svc.hub} {svc.service}"
                            print(f"  ready  {name:<13} {url:<24} {self.elapsed()}", flush=True)
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

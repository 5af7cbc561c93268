"""What a local network runs: each hub's four services, their addresses and ports, their
databases, and the environment each process gets."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ehub_cli.network_postgres import PostgresServer
from ehub_cli.services import SERVICES
from ehub_core.broker import free_port
from ehub_core.settings import CoreSettings


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
    if svc.service == "catalog":
        # Search prices every hit with this hub's customs; a local network shows the demo
        # catalog (docs/catalog.md) unless the operator says otherwise.
        env["EHUB_CUSTOMS_URL"] = siblings["customs"].url
        env.setdefault("EHUB_CATALOG_DEMO_SEED", "true")
    if svc.service == "logistics":
        # A local network has no real carriers: the simulators move every parcel.
        env.setdefault("EHUB_CARRIER_SIMULATION", "1")
        # Each hub's simulated carriers sign with keys of their own, kept across restarts
        # of the service: derived from the network's secret token and the hub.
        secret = hashlib.sha256(f"{internal_token}:carrier-simulators:{svc.hub}".encode())
        env.setdefault("EHUB_CARRIER_SIMULATOR_SEED", secret.hexdigest())
    return env


def unavailable_addresses(plan: NetworkPlan) -> list[str]:
    """``host:port (reason)`` of every service address that cannot be bound now: another
    process listens there (or the address does not exist here). Binding is immediate, so
    a network that cannot start says so within a second or two, before anything starts."""
    problems = []
    for svc in plan.services:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As uvicorn binds: a port left in TIME_WAIT by a stopped network is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((svc.host, svc.port))
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                problems.append(f"{svc.host}:{svc.port} ({svc.hub} {svc.service}: {reason})")
    return problems

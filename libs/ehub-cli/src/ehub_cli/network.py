"""A local network of hubs: the broker plus each hub's four services as separate
uvicorn processes, each hub on its own loopback address (127.0.0.2, 127.0.0.3, ...).

The supervisor writes every URL to ``<var>/network.json`` and stops all children on
SIGINT/SIGTERM (or when one of them dies); children also get SIGTERM from the kernel if
the supervisor itself is killed, so no process is left behind.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ehub_cli.federation import init_hub, with_db
from ehub_cli.services import SERVICES
from ehub_core.broker import EmbeddedBroker, _die_with_parent, free_port
from ehub_core.db import Database
from ehub_core.settings import load_settings
from ehub_gateway.federation.trust import add_peer
from ehub_gateway.settings import GatewaySettings


@dataclass
class ServiceProcess:
    hub: str
    service: str
    host: str
    port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class NetworkPlan:
    hubs: list[str]
    var_dir: Path
    base_port: int = 8000
    services: list[ServiceProcess] = field(default_factory=list)

    @classmethod
    def make(cls, hubs: list[str], var_dir: Path, base_port: int = 8000) -> NetworkPlan:
        plan = cls(hubs=hubs, var_dir=var_dir, base_port=base_port)
        for i, hub in enumerate(hubs):
            host = f"127.0.0.{2 + i}"
            for spec in SERVICES.values():
                port = free_port(host) if base_port == 0 else base_port + spec.port_offset
                plan.services.append(ServiceProcess(hub, spec.name, host, port))
        return plan

    def of_hub(self, hub: str) -> dict[str, ServiceProcess]:
        return {s.service: s for s in self.services if s.hub == hub}


def service_env(
    plan: NetworkPlan, svc: ServiceProcess, bootstrap: str | None, internal_token: str
) -> dict[str, str]:
    env = dict(os.environ)
    env["EHUB_INTERNAL_TOKEN"] = internal_token
    env["EHUB_HUB_ID"] = svc.hub
    env["EHUB_VAR_DIR"] = str(plan.var_dir)
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


def seed_demo(plan: NetworkPlan) -> dict[str, Any]:
    """Create each hub's demo seller (auto-accepting its orders) and product."""
    demo: dict[str, Any] = {}
    with httpx.Client(timeout=10.0) as client:
        for hub in plan.hubs:
            spec = DEMO_SELLERS.get(hub)
            if spec is None:
                continue
            catalog = plan.of_hub(hub)["catalog"].url
            seller = client.post(
                f"{catalog}/v1/sellers",
                json={**spec["seller"], "country": hub, "sme_verified": True, "auto_accept": True},
            )
            seller.raise_for_status()
            seller_id = seller.json()["id"]
            product = client.post(
                f"{catalog}/v1/products",
                json={
                    **spec["product"],
                    "seller_id": seller_id,
                    "origin_country": hub,
                    "stock": 500,
                },
            )
            product.raise_for_status()
            demo[hub] = {"seller_id": seller_id, "product_id": product.json()["id"]}
    return demo


class Supervisor:
    def __init__(self, plan: NetworkPlan, *, log_dir: Path | None = None) -> None:
        self.plan = plan
        self.log_dir = log_dir or plan.var_dir / "logs"
        self.broker: EmbeddedBroker | None = None
        self.bootstrap = os.environ.get("EHUB_KAFKA_BOOTSTRAP") or None
        self.procs: list[tuple[ServiceProcess, subprocess.Popen[bytes]]] = []
        self._stopping = False
        self.internal_token = os.environ.get("EHUB_INTERNAL_TOKEN") or secrets.token_urlsafe(24)
        self.fingerprints: dict[str, str] = {}
        self.demo: dict[str, Any] = {}

    def start(self, ready_timeout: float = 90.0) -> None:
        self.plan.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap:
            self.broker = EmbeddedBroker(log_path=self.log_dir / "broker.log").start()
            self.bootstrap = self.broker.bootstrap
        for hub in self.plan.hubs:
            ring, _ = init_hub(self._gateway_settings(hub))
            self.fingerprints[hub] = ring.active_key().fingerprint
        for svc in self.plan.services:
            log = (self.log_dir / f"{svc.hub.lower()}-{svc.service}.log").open("ab")
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
            log.close()
            svc.pid = proc.pid
            self.procs.append((svc, proc))
        self._wait_ready(ready_timeout)
        self._peer_hubs()
        self.demo = seed_demo(self.plan)
        self.write_manifest()

    def _gateway_settings(self, hub: str) -> GatewaySettings:
        return load_settings(
            GatewaySettings, hub_id=hub, var_dir=self.plan.var_dir, kafka_bootstrap=self.bootstrap
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
        pending = {svc.url: svc for svc, _ in self.procs}
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                for svc, proc in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"{svc.hub} {svc.service} exited with code {proc.returncode}; "
                            f"see {self.log_dir / f'{svc.hub.lower()}-{svc.service}.log'}"
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
            },
            "hubs": hubs,
            "demo": self.demo,
        }

    def write_manifest(self) -> Path:
        path = self.plan.var_dir / "network.json"
        # It holds the internal token: readable by the operator only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(self.manifest(), indent=2) + "\n")
        return path

    def wait(self) -> int:
        """Block until a signal or a child's death; return the exit code to use."""
        stop = {"sig": None}

        def _on_signal(signum: int, _frame: object) -> None:
            stop["sig"] = signum  # type: ignore[assignment]

        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)
        while stop["sig"] is None:
            for svc, proc in self.procs:
                if proc.poll() is not None:
                    print(
                        f"{svc.hub} {svc.service} exited ({proc.returncode}); stopping", flush=True
                    )
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.broker:
            self.broker.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.plan.var_dir / "network.json").unlink()


def status(var_dir: Path) -> tuple[dict[str, Any], list[tuple[str, str, str, int | str]]]:
    manifest = json.loads((var_dir / "network.json").read_text())
    rows: list[tuple[str, str, str, int | str]] = []
    with httpx.Client(timeout=3.0) as client:
        for hub, services in manifest["hubs"].items():
            for name, svc in services.items():
                try:
                    code: int | str = client.get(f"{svc['url']}/readyz").status_code
                except httpx.HTTPError as exc:
                    code = exc.__class__.__name__
                rows.append((hub, name, svc["url"], code))
    return manifest, rows

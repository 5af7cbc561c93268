"""``ehub network status``: each service of the running network (from its
``network.json``) and what its ``/readyz`` answers now."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


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

"""The deployment files stay in step with the code: every variable they set is a real
setting of the service that reads it, and the compose file runs each service of each hub."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ehub_catalog.settings import CatalogSettings
from ehub_cli.services import SERVICES
from ehub_customs.settings import CustomsSettings
from ehub_gateway.settings import GatewaySettings
from ehub_logistics.settings import LogisticsSettings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def known_variables() -> set[str]:
    names: set[str] = set()
    for cls in (GatewaySettings, CatalogSettings, CustomsSettings, LogisticsSettings):
        names |= {f"EHUB_{field.upper()}" for field in cls.model_fields}
    return names


def test_every_variable_in_the_deploy_files_is_a_setting():
    used: set[str] = set()
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.suffix in {".env", ".yaml", ".yml"}:
            used |= set(re.findall(r"\bEHUB_[A-Z_]+\b", path.read_text()))
    # Compose interpolates per-hub tokens from the operator's environment.
    used = {u for u in used if not re.fullmatch(r"EHUB_[A-Z]{2}_INTERNAL_TOKEN", u)}
    assert used, "no settings found in deploy/"
    assert used <= known_variables(), used - known_variables()


def test_compose_runs_every_service_of_each_hub():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    for hub in ("cn", "ca"):
        for name in SERVICES:
            svc = services[f"hub-{hub}-{name}"]
            assert svc["command"][:2] == ["serve", name]
            env = dict(
                line.split("=", 1)
                for line in (DEPLOY / svc["env_file"]).read_text().splitlines()
                if line and not line.startswith("#")
            )
            assert env["EHUB_HUB_ID"] == hub.upper()
            assert env["EHUB_DATABASE_URL"].startswith("postgresql+asyncpg://")
    databases = (DEPLOY / "postgres-init.sql").read_text()
    for hub in ("cn", "ca"):
        for name in SERVICES:
            assert f"ehub_{hub}_{name};" in databases

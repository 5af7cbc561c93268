"""The deployment files stay in step with the code and are checked, not just written.

Every variable they set is a real setting; the compose file follows the Compose
Specification's schema and runs each service of each hub; the Helm chart, rendered by
Helm's own template engine (helm-python-sdk, offline, no helm binary), gives manifests
that Kubernetes' schemas accept (kubernetes-validate, bundled schemas, strict), with the
properties a hub needs asserted one by one. The install picks the machine's newest
Python 3.13/3.12/3.11 and never downloads one."""

from __future__ import annotations

import copy
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

from ehub_catalog.settings import CatalogSettings
from ehub_cli.services import SERVICES
from ehub_customs.settings import CustomsSettings
from ehub_gateway.settings import GatewaySettings
from ehub_logistics.settings import LogisticsSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


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


# -- the install is portable ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.parametrize(
    ("pythons", "chosen"),
    [(["3.11"], "3.11"), (["3.11", "3.12"], "3.12"), (["3.12", "3.13", "3.11"], "3.13"), ([], "")],
)
def test_make_uses_the_newest_python_of_the_machine_and_never_downloads_one(
    tmp_path, pythons, chosen
):
    """Only what is on PATH counts, and only if it runs (pyenv shims exist for versions
    that are not selected)."""
    for version in pythons:
        (tmp_path / f"python{version}").symlink_to(sys.executable)
    broken = tmp_path / "python3.14"  # not a version we take, even when it works
    broken.symlink_to(sys.executable)
    shim = tmp_path / ("python3.13" if "3.13" not in pythons else "python3.10")
    shim.write_text("#!/bin/sh\necho 'pyenv: version not selected' >&2; exit 127\n")
    shim.chmod(0o755)
    show = 'show: ; @echo "$(UV_PYTHON)|$(UV_PYTHON_DOWNLOADS)|$(UV_PYTHON_PREFERENCE)"'
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    make = shutil.which("make")
    assert make is not None
    out = subprocess.run(
        [make, "-s", "--no-print-directory", "--eval", show, "show"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == f"{chosen}|never|only-system"
    refusal = subprocess.run([make, "-s", "python"], cwd=ROOT, env=env, capture_output=True)
    assert (refusal.returncode == 0) == bool(chosen), refusal.stderr


def test_the_image_build_context_leaves_out_state_keys_and_local_environments():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".tools", "var", "**/var", "**/__pycache__"} <= ignored
    # ...but never what the Dockerfile copies in.
    for source in re.findall(r"^COPY (.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M):
        for name in source.split():
            assert name not in ignored, name


# -- compose: the specification's schema ---------------------------------------------------


def compose_validator() -> jsonschema.protocols.Validator:
    # The Compose Specification's schema as check-jsonschema vendors it (Apache-2.0).
    schema = get_builtin_schema("vendor.compose-spec")
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def test_compose_file_follows_the_compose_specification():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    errors = [e.message for e in compose_validator().iter_errors(compose)]
    assert errors == []
    # The schema does reject what Compose would: a misspelt key, a port that is a list.
    broken = copy.deepcopy(compose)
    broken["services"]["hub-cn-gateway"]["port"] = ["8000:8000"]
    broken["services"]["hub-ca-gateway"]["depends_on"] = {"kafka": {"condition": "healthy"}}
    messages = " ".join(e.message for e in compose_validator().iter_errors(broken))
    assert "'port'" in messages and "'healthy'" in messages


def test_compose_keeps_hub_keys_on_volumes_and_publishes_only_the_gateways():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    published = sorted(name for name, svc in services.items() if svc.get("ports"))
    assert published == ["hub-ca-gateway", "hub-cn-gateway"]
    for hub in ("cn", "ca"):
        assert services[f"hub-{hub}-gateway"]["volumes"] == [f"hub-{hub}-keys:/var/lib/ehub"]


# -- Helm: the chart as Helm renders it, checked against Kubernetes' schemas ---------------

CHART = DEPLOY / "helm" / "ehub"
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def render(**values: Any) -> list[dict[str, Any]]:
    """The chart's manifests as ``helm template hub-cn`` makes them (Helm's own Go
    template engine, offline), hooks included."""
    helm = pytest.importorskip(
        "helm_python", reason="helm-python-sdk (Helm's engine, no helm binary) not installed"
    )
    out = helm.Chart.load(CHART).render(values or None, name="hub-cn", is_install=True)
    docs = [doc for text in out.values() for doc in yaml.safe_load_all(text)]
    return [doc for doc in docs if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render()


def test_every_rendered_manifest_is_valid_kubernetes(manifests):
    kinds = sorted({d["kind"] for d in manifests})
    assert kinds == ["Deployment", "Ingress", "Job", "PersistentVolumeClaim", "Service"]
    for version in KUBERNETES_VERSIONS:
        for doc in manifests:
            kubernetes_validate.validate(doc, version, strict=True)
    # Strict validation does catch a misspelt field.
    broken = copy.deepcopy(by_kind(manifests, "Deployment")["hub-cn-gateway"])
    broken["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_every_variable_the_chart_sets_is_a_setting(manifests):
    names = {
        e["name"]
        for spec in pod_specs(manifests).values()
        for c in spec["containers"]
        for e in c["env"]
    }
    assert names <= known_variables(), names - known_variables()


def test_pods_run_as_the_image_user_and_the_keys_volume_is_theirs(manifests):
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    uid = re.search(r"--uid (\d+)", dockerfile)
    gid = re.search(r"--gid (\d+)", dockerfile)
    assert uid and gid
    for name, spec in pod_specs(manifests).items():
        ctx = spec["securityContext"]
        assert ctx["runAsNonRoot"] is True, name
        assert (ctx["runAsUser"], ctx["runAsGroup"]) == (int(uid[1]), int(gid[1])), name
        # fsGroup: the volume is made group-writable for the image's group, so uid 10001
        # can create the hub key on a fresh volume.
        assert ctx["fsGroup"] == int(gid[1]), name


def test_the_gateway_is_replaced_not_rolled_because_its_keys_volume_is_read_write_once(
    manifests,
):
    (claim,) = by_kind(manifests, "PersistentVolumeClaim").values()
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    gateway = by_kind(manifests, "Deployment")["hub-cn-gateway"]
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"] == {"type": "Recreate"}
    pod = gateway["spec"]["template"]["spec"]
    (volume,) = pod["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (container,) = pod["containers"]
    (mount,) = container["volumeMounts"]
    # The keys land on the volume: the gateway's var dir is where it is mounted.
    assert env_of(container)["EHUB_VAR_DIR"]["value"] == mount["mountPath"]
    others = [d for n, d in by_kind(manifests, "Deployment").items() if n != "hub-cn-gateway"]
    assert others and all("volumes" not in d["spec"]["template"]["spec"] for d in others)
    assert all(d["spec"].get("strategy", {}).get("type") != "Recreate" for d in others)


def test_a_second_gateway_replica_is_refused_when_rendering():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    values["services"]["gateway"]["replicas"] = 2
    helm = pytest.importorskip("helm_python")
    with pytest.raises(helm.HelmError, match=r"services\.gateway\.replicas must be 1"):
        render(**values)


def test_migrations_run_once_in_hook_jobs_and_replicas_never_migrate(manifests, tmp_path):
    jobs = by_kind(manifests, "Job")
    assert sorted(jobs) == sorted(f"hub-cn-migrate-{s}" for s in SERVICES)
    for name, job in jobs.items():
        hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
        assert sorted(hooks) == ["pre-install", "pre-upgrade"], name
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for name, deployment in by_kind(manifests, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert env_of(container)["EHUB_MIGRATE_ON_START"]["value"] == "false", name
    # The Job's command does migrate: run it as the Job would, on a SQLite database.
    (container,) = jobs["hub-cn-migrate-catalog"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][0] == "python"
    env = {k: v["value"] for k, v in env_of(container).items() if "value" in v}
    env |= {"EHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/catalog.db"}
    env |= {"EHUB_KAFKA_BOOTSTRAP": "", "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [sys.executable, *container["command"][1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert done.stdout.strip() == f"ehub migrate catalog: at revision {revision}"


def test_secrets_come_from_secret_references_never_from_values(manifests):
    for name, spec in pod_specs(manifests).items():
        for container in spec["containers"]:
            env = env_of(container)
            for secret in ("EHUB_DATABASE_URL", "EHUB_INTERNAL_TOKEN"):
                assert "value" not in env[secret], (name, secret)
                assert env[secret]["valueFrom"]["secretKeyRef"]["name"], (name, secret)
    text = yaml.safe_dump_all(manifests)
    assert "postgresql" not in text and "CHANGE_ME" not in text


MEMORY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (cpu ``100m``/``1``, memory ``256Mi``) as a number."""
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    for suffix, factor in MEMORY.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_every_container_requests_and_is_limited_in_cpu_and_memory(manifests):
    for name, spec in pod_specs(manifests).items():
        for container in spec["containers"]:
            resources = container["resources"]
            for kind in ("cpu", "memory"):
                request = quantity(resources["requests"][kind])
                limit = quantity(resources["limits"][kind])
                assert 0 < request <= limit, (name, kind)


def test_the_gateway_is_the_only_door_and_the_ingress_leads_to_it(manifests):
    services = by_kind(manifests, "Service")
    assert all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services.values())
    (ingress,) = by_kind(manifests, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    gateway = services[backend["name"]]
    assert gateway["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert backend["port"]["name"] in {p["name"] for p in gateway["spec"]["ports"]}
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert not by_kind(render(ingress={"enabled": False}), "Ingress")

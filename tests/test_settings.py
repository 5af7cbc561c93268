"""Bad settings stop a service at start-up: exit code 2 and the variable on stderr."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _serve(service: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "ehub_cli", "serve", service, "--port", "1"],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("catalog", "EHUB_HUB_ID", "China"),
        ("customs", "EHUB_DATABASE_URL", "mysql://root@localhost/ehub"),
        ("logistics", "EHUB_RELAY_BATCH_SIZE", "many"),
        ("gateway", "EHUB_CATALOG_URL", "not a url"),
        ("gateway", "EHUB_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_setting_exits_2_naming_the_variable(service, variable, value):
    result = _serve(service, **{variable: value})
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


def test_unknown_service_exits_2():
    result = _serve("billing")
    assert result.returncode == 2
    assert "unknown service" in result.stderr

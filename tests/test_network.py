"""`ehub network up` as an operator runs it: real processes, real broker, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


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


@pytest.fixture
def network(tmp_path: Path):
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHUB_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ehub_cli",
            "network",
            "up",
            "--hubs",
            "CN,CA",
            "--base-port",
            "0",
            "--var-dir",
            str(var),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    manifest_path = var / "network.json"
    deadline = time.monotonic() + 120
    while not manifest_path.exists():
        if proc.poll() is not None:
            pytest.fail(f"network exited early: {proc.stdout.read() if proc.stdout else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("network did not come up within 120 s")
        time.sleep(0.2)
    yield proc, json.loads(manifest_path.read_text()), var
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_two_hubs_come_up_ready_and_sigterm_leaves_no_process(network):
    proc, manifest, var = network
    assert set(manifest["hubs"]) == {"CN", "CA"}
    urls = [svc["url"] for hub in manifest["hubs"].values() for svc in hub.values()]
    assert len(urls) == 8
    # Each hub binds its own loopback address.
    assert {svc["host"] for svc in manifest["hubs"]["CN"].values()} == {"127.0.0.2"}
    assert {svc["host"] for svc in manifest["hubs"]["CA"].values()} == {"127.0.0.3"}
    with httpx.Client(timeout=5) as client:
        for url in urls:
            r = client.get(f"{url}/readyz")
            assert r.status_code == 200, (url, r.text)
            assert r.json()["checks"] == {"database": "ok", "broker": "ok"}

    status = subprocess.run(
        [sys.executable, "-m", "ehub_cli", "network", "status", "--var-dir", str(var)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("readyz=200") == 8

    pids = [svc["pid"] for hub in manifest["hubs"].values() for svc in hub.values()]
    pids.append(manifest["broker"]["pid"])
    descendants = {p for pid in pids for p in _children_of(pid)}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids + list(descendants)):
        time.sleep(0.1)
    assert [p for p in pids + list(descendants) if _alive(p)] == []
    assert not (var / "network.json").exists()

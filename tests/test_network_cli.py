"""What an operator sees of `ehub network up` / `make run`: each service as it becomes
ready, a taken port refused at once by name, and the Makefile's options passed through.

Real processes and real sockets; nothing here asserts how long anything took (the
deadlines only bound a hung test on a loaded machine).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ehub_cli.services import SERVICES
from tests.federation_harness import gateway_env

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"^  ready  (?P<name>.+?)\s+(?P<where>\S+)\s+(?P<secs>\d+\.\d)s$")


def network_up(var: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ehub_cli",
        "network",
        "up",
        "--var-dir",
        str(var),
        *args,
    ]


def test_a_taken_port_stops_the_network_before_it_starts_naming_the_address(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.2", 0))  # CN, the first hub, lives on 127.0.0.2
        taken.listen()
        port = taken.getsockname()[1]
        var = tmp_path / "var"
        proc = subprocess.run(
            network_up(var, "--hubs", "CN", "--base-port", str(port)),
            env=gateway_env(),
            capture_output=True,
            text=True,
            timeout=60,  # generous for a loaded machine: the check itself is a bind
        )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"127.0.0.2:{port} (CN gateway: in use)" in proc.stderr
    assert "--base-port" in proc.stderr  # what to do about it
    # Refused before anything started: no broker, no service, no state.
    assert "ready" not in proc.stdout
    assert not (var / "logs").exists()
    assert not (var / "network.json").exists()


def test_each_service_is_printed_as_it_becomes_ready(tmp_path):
    var = tmp_path / "var"
    out_path = tmp_path / "supervisor.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            network_up(var, "--hubs", "CN", "--base-port", "0"),
            env=gateway_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240  # a loaded 2-core machine may take minutes
        while "Ctrl-C stops everything." not in out_path.read_text():
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.2)
        manifest = json.loads((var / "network.json").read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    lines = out_path.read_text().splitlines()
    ready = [m for line in lines if (m := READY.match(line))]
    urls = {f"CN {name}": svc["url"] for name, svc in manifest["hubs"]["CN"].items()}
    # The broker first (the services need it), then all four services, each once, with
    # its own URL; the seconds count up from the start.
    assert ready[0]["name"] == "broker"
    assert ready[0]["where"] == manifest["broker"]["bootstrap"]
    assert sorted(m["name"] for m in ready[1:]) == sorted(f"CN {s}" for s in SERVICES)
    assert {m["name"]: m["where"] for m in ready[1:]} == urls
    seconds = [float(m["secs"]) for m in ready]
    assert seconds == sorted(seconds) and seconds[0] > 0
    # ...and before the banner saying the network is ready.
    banner = next(i for i, line in enumerate(lines) if line.startswith("ehub network ready"))
    assert all(lines.index(m.string) < banner for m in ready)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "ehub network up --hubs CN,CA"),
        (["PORT_BASE=9100"], "ehub network up --hubs CN,CA --base-port 9100"),
        (
            ["PORT_BASE=9100", "STATE=var/other", "HUBS=CN,CA,MY"],
            "ehub network up --hubs CN,CA,MY --base-port 9100 --var-dir var/other",
        ),
    ],
)
def test_make_run_passes_ports_and_state_folder_to_network_up(args, expected):
    # -n: print the commands, run none of them.
    out = subprocess.run(
        ["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    command = next(line for line in out.splitlines() if "ehub network up" in line)
    assert command.split(" run --frozen ", 1)[1].strip() == expected


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_status_and_demo_read_the_same_state_folder():
    out = subprocess.run(
        ["make", "-n", "status", "demo", "STATE=var/other"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ehub network status --var-dir var/other" in out
    assert "scripts/demo_order.py --var-dir var/other" in out

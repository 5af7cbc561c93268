"""Shared benchmark plumbing: start a server pinned to one core, load it with wrk
pinned to the other, parse the result. Ratios are taken within one run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("installing wrk (Debian package) for the load generator...", file=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is required for HTTP benchmarks: apt-get install wrk")
    return path


def _taskset(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


@contextlib.contextmanager
def server(
    cmd: list[str], port: int, env: dict[str, str] | None = None, ready_path: str = "/healthz"
) -> Iterator[str]:
    """Run ``cmd`` (a uvicorn server on ``port``) on core 0 until the block ends."""
    proc = subprocess.Popen(
        _taskset(0) + cmd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + ready_path, timeout=1).status_code < 500:
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {cmd}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(
    url: str,
    *,
    seconds: int = 8,
    connections: int = 32,
    script: str | None = None,
    extra: list[str] | None = None,
) -> dict:
    """Run wrk on core 1; return req/s and latency percentiles (ms)."""
    cmd = [*_taskset(1), ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if extra:
        cmd += ["--", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            lat[f"p{pct}_ms"] = (
                value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
            )
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, **lat, "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def post_script(tmpdir: Path, body: dict | bytes, headers: dict[str, str] | None = None) -> str:
    """A wrk Lua script that POSTs ``body`` as JSON."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(payload.decode())}"]
    lines += [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in hdrs.items()]
    path = tmpdir / f"post-{abs(hash(payload))}.lua"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def uvicorn_cmd(app: str, port: int, factory: bool = False) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return cmd + (["--factory"] if factory else [])


def report(name: str, result: dict) -> None:
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({name: result}, indent=2))


def bare_baseline(path: str, *, seconds: int = 8, script: str | None = None) -> dict:
    """wrk against the bare FastAPI app (bench/bare_app.py): the same-run baseline."""
    port = free_port()
    with server(
        uvicorn_cmd("bare_app:app", port), port, env={"PYTHONPATH": str(ROOT / "bench")}
    ) as url:
        return wrk(url + path, seconds=seconds, script=script)


@contextlib.contextmanager
def local_network(var: Path, **env: str) -> Iterator[dict]:
    """``ehub network up --hubs CN,CA`` in ``var`` with ``EHUB_*`` overrides; yield its
    manifest once it is written, stop every process afterwards."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EHUB_")}
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
        env={**clean, "EHUB_LOG_LEVEL": "WARNING", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        manifest = var / "network.json"
        deadline = time.monotonic() + 180
        while not manifest.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("network did not come up")
            time.sleep(0.5)
        time.sleep(2)  # peers' keys are loaded by the trust store within ~1 s
        yield json.loads(manifest.read_text())
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

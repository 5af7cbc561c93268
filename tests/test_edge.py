"""The edge against greedy and slow clients, on a real ``ehub serve catalog`` process
(uvicorn, its HTTP protocol, real sockets), plus the body rules of every service in
process (docs/security.md).

The process runs with the hub's internal token (partners reach it only through the
gateway), a 1 s body timeout and a 1 s request-head timeout, so stalls resolve quickly.
Every refusal leaves the rows as they were and the log without a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ehub_catalog.app import create_app as catalog_app
from ehub_catalog.settings import CatalogSettings
from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app as customs_app
from ehub_customs.settings import CustomsSettings
from ehub_gateway.app import FEDERATION_EVENTS_MAX_BODY
from ehub_gateway.app import create_app as gateway_app
from ehub_gateway.settings import GatewaySettings
from ehub_logistics.app import create_app as logistics_app
from ehub_logistics.settings import LogisticsSettings

TOKEN = "edge-internal-token"
MiB = 1 << 20
PARTNER = {
    "X-Ehub-Gateway": TOKEN,
    "X-Ehub-Partner": "prt_edge",
    "X-Ehub-Partner-Role": "seller",
    "X-Ehub-Scopes": "catalog:read catalog:write",
}
SELLER = b'{"name": "Edge Shop", "country": "CA"}'


# -- a real process ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    db: Path
    created: int = 0  # sellers the tests made on purpose

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def sellers(self) -> int:
        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM sellers").fetchone()[0])

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.settimeout(10)
        return s

    def create_seller(self) -> None:
        r = httpx.post(f"{self.url}/v1/sellers", content=SELLER, headers=_json(PARTNER), timeout=10)
        assert r.status_code == 201, r.text
        self.created += 1


def _json(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    var = tmp_path_factory.mktemp("edge")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EHUB_")}
    env |= {
        "EHUB_HUB_ID": "CA",
        "EHUB_VAR_DIR": str(var),
        "EHUB_INTERNAL_TOKEN": TOKEN,
        "EHUB_BODY_TIMEOUT": "1",
        "EHUB_HEADER_TIMEOUT": "1",
        "EHUB_LOG_LEVEL": "INFO",
    }
    port = _free_port()
    log = var / "catalog.log"
    command = [sys.executable, "-m", "ehub_cli", "serve", "catalog", "--host", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Served(proc, port, log, var / "ca" / "catalog.db")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "catalog did not start"
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: edge"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Answer:
    status: int | None
    headers: dict[str, str]
    body: bytes
    seconds: float
    closed: bool  # the server closed the connection

    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/problem+json", self
        body: dict[str, Any] = json.loads(self.body)
        return body


def _read(sock: socket.socket, started: float | None = None) -> Answer:
    """Everything the server sends until it closes (a reset after the answer counts as
    closed: the server closed with our unread body in its buffer)."""
    started = time.monotonic() if started is None else started
    data, closed = b"", False
    try:
        while chunk := sock.recv(65536):
            data += chunk
        closed = True
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except TimeoutError:
        pass
    seconds = time.monotonic() - started
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, body, seconds, closed)


def _send_all(sock: socket.socket, chunks: Iterator[bytes]) -> int:
    """Send until done or the server hangs up; return the bytes sent."""
    sent = 0
    try:
        for chunk in chunks:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def _chunked(total: int, size: int = MiB) -> Iterator[bytes]:
    piece = b"x" * size
    for _ in range(total // size):
        yield f"{size:x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def _declared(total: int, size: int = MiB) -> Iterator[bytes]:
    piece = b"x" * size
    for _ in range(total // size):
        yield piece


# -- bodies --------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_413_before_any_byte_is_read(served: Served):
    before = served.sellers()
    with served.connect() as s:
        s.sendall(_head("POST", "/v1/sellers", _json({"Content-Length": str(1 << 30)})))
        s.sendall(b"x" * 1024)
        answer = _read(s)
    assert answer.status == 413
    problem = answer.problem()
    assert problem["type"] == "https://ehub.dev/problems/body-too-large"
    assert problem["max_bytes"] == MiB
    assert answer.headers["connection"] == "close" and answer.closed
    assert answer.seconds < 2  # answered at once, not after reading (or waiting for) 1 GiB
    assert served.sellers() == before


def test_the_length_is_checked_before_the_caller_and_the_caller_before_the_body(served: Served):
    # Unidentified: a small declared body is refused 401 at once (not read, not waited
    # for: 10 of 100 bytes sent), and the connection is closed rather than drained.
    with served.connect() as s:
        s.sendall(_head("POST", "/v1/sellers", _json({"Content-Length": "100"})) + b'{"name": "')
        answer = _read(s)
    assert answer.status == 401 and answer.seconds < 0.9
    assert answer.problem()["type"].endswith("/gateway-credential-required")
    assert answer.headers["connection"] == "close" and answer.closed
    # A 20 MiB unidentified body: 413 from its Content-Length, nothing read.
    with served.connect() as s:
        s.sendall(_head("POST", "/v1/sellers", _json({"Content-Length": str(20 * MiB)})))
        assert _read(s).status == 413


def test_a_chunked_body_over_the_limit_is_413_while_it_streams(served: Served):
    before = served.sellers()
    with served.connect() as s:
        s.sendall(_head("POST", "/v1/sellers", _json(PARTNER | {"Transfer-Encoding": "chunked"})))
        sent = _send_all(s, _chunked(3 * MiB, 64 * 1024))
        answer = _read(s)
    assert answer.status == 413, answer
    assert answer.problem()["type"] == "https://ehub.dev/problems/body-too-large"
    assert answer.closed
    assert sent >= MiB  # it was streaming, not refused from a header
    assert served.sellers() == before


def test_a_stalled_body_is_answered_408_after_the_body_timeout(served: Served):
    before = served.sellers()
    with served.connect() as s:
        started = time.monotonic()
        s.sendall(_head("POST", "/v1/sellers", _json(PARTNER | {"Content-Length": "100"})))
        s.sendall(b'{"name": "Sta')
        answer = _read(s, started)
    assert answer.status == 408
    assert answer.problem()["type"] == "https://ehub.dev/problems/body-timeout"
    assert answer.headers["connection"] == "close" and answer.closed
    assert 0.9 < answer.seconds < 5
    assert served.sellers() == before


def test_a_stalled_request_head_is_dropped_after_the_header_timeout(served: Served):
    with served.connect() as s:
        started = time.monotonic()
        s.sendall(b"POST /v1/sellers HTTP/1.1\r\nHost: edge\r\nContent-Ty")
        answer = _read(s, started)
    assert answer.closed and answer.status is None
    assert 0.9 < answer.seconds < 5
    with served.connect() as s:  # a connection that never says anything
        started = time.monotonic()
        answer = _read(s, started)
    assert answer.closed and 0.9 < answer.seconds < 5


def test_an_oversized_request_head_is_refused(served: Served):
    with served.connect() as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * (64 * 1024))
        answer = _read(s)
    assert answer.status in (400, 431) and answer.closed


def test_200_stalled_connections_do_not_stop_the_service(served: Served):
    stalled = []
    try:
        for i in range(200):
            s = served.connect()
            if i % 2:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: ed")
            else:
                s.sendall(_head("POST", "/v1/sellers", _json(PARTNER | {"Content-Length": "999"})))
                s.sendall(b'{"na')
            stalled.append(s)
        started = time.monotonic()
        r = httpx.get(f"{served.url}/healthz", timeout=5)
        assert r.status_code == 200
        served.create_seller()
        assert time.monotonic() - started < 3
        # Each stalled connection is answered (408) or dropped by the server on its own.
        deadline = time.monotonic() + 15
        for s in stalled:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            assert _read(s).closed
    finally:
        for s in stalled:
            s.close()


def test_rss_grows_less_than_50_mb_under_four_parallel_64_mb_posts(served: Served):
    served.create_seller()  # warm: the first real request allocates its share
    before = peak = served.rss_mb()
    answers: list[Answer] = []

    def post(chunked: bool) -> None:
        with served.connect() as s:
            extra = (
                {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(64 * MiB)}
            )
            s.sendall(_head("POST", "/v1/sellers", _json(PARTNER | extra)))
            _send_all(s, _chunked(64 * MiB) if chunked else _declared(64 * MiB))
            answers.append(_read(s))

    threads = [threading.Thread(target=post, args=(i % 2 == 0,)) for i in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, served.rss_mb())
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    print(f"\nRSS {before:.1f} MB -> peak {peak:.1f} MB (+{peak - before:.1f}) in {elapsed:.2f}s")
    assert [a.status for a in answers] == [413] * 4
    assert peak - before < 50


def test_a_client_going_away_mid_body_is_one_info_line(served: Served):
    for _ in range(3):
        with served.connect() as s:
            s.sendall(_head("POST", "/v1/sellers", _json(PARTNER | {"Content-Length": "5000"})))
            s.sendall(b'{"name": "Go')
            time.sleep(0.1)
    time.sleep(0.5)
    lines = [
        json.loads(line) for line in served.log.read_text().splitlines() if line.startswith("{")
    ]
    gone = [r for r in lines if "went away" in r["msg"]]
    assert len(gone) >= 3 and {r["level"] for r in gone} == {"info"}


def test_the_log_has_no_traceback_and_refusals_stored_nothing(served: Served):
    """Runs last: everything above left no error in the log and no row but its own."""
    text = served.log.read_text()
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if '"level": "error"' in line]
    assert not errors, errors[:5]
    assert served.sellers() == served.created
    assert served.proc.poll() is None


# -- every service, in process -------------------------------------------------------------


def _services(var: Path) -> dict[str, tuple[Any, str, dict[str, str]]]:
    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{var}/{name}.db"

    return {
        "catalog": (
            catalog_app(CatalogSettings(var_dir=var, database_url=db("catalog"))),
            "/v1/sellers",
            {},
        ),
        "customs": (
            customs_app(CustomsSettings(var_dir=var, database_url=db("customs"))),
            "/v1/landed-cost",
            {},
        ),
        "logistics": (
            logistics_app(LogisticsSettings(var_dir=var, database_url=db("logistics"))),
            "/v1/rates",
            {},
        ),
        "gateway": (
            gateway_app(
                GatewaySettings(var_dir=var, database_url=db("gateway"), internal_token=TOKEN)
            ),
            "/internal/v1/events",
            {"Authorization": f"Bearer {TOKEN}"},
        ),
    }


MALFORMED = {
    "nested too deeply": b"[" * 100_000 + b"]" * 100_000,
    "invalid UTF-8": b'{"name": "\xff\xfe\xc3"}',
    "a 5000-digit number": b'{"name": ' + b"9" * 5000 + b"}",
    "a NUL byte": b"\x00",
}


@pytest.mark.parametrize("service", ["catalog", "customs", "logistics", "gateway"])
async def test_bodies_that_are_not_json_are_malformed_json_problems(service, tmp_path):
    app, path, headers = _services(tmp_path)[service]
    async with serve_in_process(app) as client:
        for what, body in MALFORMED.items():
            r = await client.post(path, content=body, headers=_json(headers))
            assert r.status_code == 400, (what, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"] == "https://ehub.dev/problems/malformed-json", (what, r.text)


async def test_federation_batches_have_their_own_limit_and_nothing_else_does(tmp_path):
    app, _path, bearer = _services(tmp_path)["gateway"]
    signed_looking = {
        "Content-Type": "application/x-protobuf",
        "Signature-Input": 'sig1=("@method");created=1;keyid="CN#2026-11";nonce="n"',
        "Signature": "sig1=:AAAA:",
    }
    async with serve_in_process(app) as client:
        batch = b"\x00" * (2 * MiB)  # e.g. 1000 envelopes of 2 KiB
        # Unsigned: refused from its headers, the body unread.
        r = await client.post("/federation/v1/events", content=batch)
        assert r.status_code == 401 and r.json()["reason"] == "missing_signature"
        # Signed (here: badly): read, within the federation limit, then refused.
        r = await client.post("/federation/v1/events", content=batch, headers=signed_looking)
        assert r.status_code == 401, r.text
        assert r.json()["reason"] != "missing_signature"
        too_big = b"\x00" * (FEDERATION_EVENTS_MAX_BODY + 1)
        r = await client.post("/federation/v1/events", content=too_big, headers=signed_looking)
        assert r.status_code == 413 and r.json()["max_bytes"] == FEDERATION_EVENTS_MAX_BODY
        r = await client.post("/internal/v1/events", content=batch, headers=_json(bearer))
        assert r.status_code == 413 and r.json()["max_bytes"] == MiB
        doc = (await client.get("/openapi.json")).json()
        assert "413" in doc["paths"]["/internal/v1/events"]["post"]["responses"]

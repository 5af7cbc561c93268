"""Federation ingest benchmark: signed ``POST /federation/v1/events`` at a real gateway
(SQLite, embedded broker, relay running), batches of 1 and of 100 envelopes, beside a bare
FastAPI endpoint that only reads the body, in the same run.

Every request must be unique (fresh nonce, fresh events — replays are rejected), so the
requests are signed in advance and wrk replays the list once through a Lua script.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, report, server, uvicorn_cmd, wrk

from ehub_core.broker import EmbeddedBroker
from ehub_core.db import Database
from ehub_core.envelope import seal
from ehub_core.migrations import upgrade
from ehub_core.proto.ehub.v1.envelope_pb2 import EnvelopeBatch
from ehub_core.proto.ehub.v1.orders_pb2 import OrderPlaced
from ehub_core.signing import KeyRing, sign_request
from ehub_gateway.federation.trust import add_peer
from ehub_gateway.federation.wellknown import build_document

LUA = """
local requests = {}
local n = 0
local i = 0
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  while true do
    local line = f:read("*l")
    if not line then break end
    local sig_input = line
    local sig = f:read("*l")
    local digest = f:read("*l")
    local len = tonumber(f:read("*l"))
    local body = f:read(len)
    f:read("*l")
    n = n + 1
    requests[n] = wrk.format("POST", "/federation/v1/events", {
      ["Content-Type"] = "application/x-protobuf",
      ["EHub-Hub"] = "CN",
      ["Signature-Input"] = sig_input,
      ["Signature"] = sig,
      ["Content-Digest"] = digest,
    }, body)
  end
  f:close()
end
request = function()
  i = i + 1
  if i > n then i = 1 end
  return requests[i]
end
"""


def write_requests(path: Path, url: str, key, count: int, batch: int) -> None:
    with path.open("wb") as fh:
        for r in range(count):
            # Each a new order placed by CN with CA, keyed by its id (what CA's ingest admits).
            envs = [
                seal(
                    OrderPlaced(order_id=f"ord_{r}_{j}", buyer_hub="CN", seller_hub="CA"),
                    key,
                    target_hub="CA",
                    subject=f"ord_{r}_{j}",
                )
                for j in range(batch)
            ]
            body = EnvelopeBatch(envelopes=envs).SerializeToString()
            hdrs = sign_request(
                "POST", url, {"Content-Type": "application/x-protobuf"}, body, key, "CN", ttl=600
            )
            fh.write(hdrs["Signature-Input"].encode() + b"\n")
            fh.write(hdrs["Signature"].encode() + b"\n")
            fh.write(hdrs["Content-Digest"].encode() + b"\n")
            fh.write(f"{len(body)}\n".encode() + body + b"\n")


async def prepare_gateway(var: Path, cn_ring: KeyRing, url: str | None = None) -> None:
    db = Database(url or f"sqlite+aiosqlite:///{var}/ca/gateway.db")
    await upgrade(db, "ehub_gateway.migrations")
    key = cn_ring.active_key()
    doc = build_document(
        hub_id="CN",
        name="bench CN",
        base_url="http://127.0.0.1:9",
        keys=[key.public_info],
        signers=[key],
        now=datetime.now(UTC),
    )
    await add_peer(
        db,
        own_hub="CA",
        base_url="http://127.0.0.1:9",
        fingerprint=key.fingerprint,
        transport="http",
        document=doc,
    )
    await db.dispose()


async def make_pg_database(admin: str) -> str:
    import asyncpg

    name = f"ehub_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = admin.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+asyncpg://{base}/{name}"


def main() -> None:
    seconds = 8
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp_s, EmbeddedBroker() as broker:
        tmp = Path(tmp_s)
        lua = tmp / "replay.lua"
        lua.write_text(LUA)
        cn_ring = KeyRing(tmp / "cn-keys", "CN")
        cn_ring.ensure_active()
        asyncio.run(prepare_gateway(tmp, cn_ring))
        databases = {"sqlite": None}
        pg_admin = os.environ.get("EHUB_TEST_POSTGRES_URL")
        if pg_admin:
            databases["postgres"] = asyncio.run(make_pg_database(pg_admin))
            asyncio.run(prepare_gateway(tmp, cn_ring, databases["postgres"]))
        bare_port = free_port()
        with server(
            uvicorn_cmd("bare_app:app", bare_port),
            bare_port,
            env={"PYTHONPATH": str(ROOT / "bench")},
        ) as bare:
            blob = b"x" * 600
            (tmp / "bare.lua").write_text(
                f'wrk.method = "POST"\nwrk.body = string.rep("x", {len(blob)})\n'
            )
            results["bare_fastapi_post"] = wrk(
                bare + "/raw", seconds=seconds, script=str(tmp / "bare.lua")
            )
        port = free_port()
        env = {
            "EHUB_HUB_ID": "CA",
            "EHUB_VAR_DIR": str(tmp),
            "EHUB_LOG_LEVEL": "WARNING",
            "EHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
        }
        cmd = [sys.executable, "-m", "ehub_cli", "serve", "gateway", "--port", str(port)]
        url = f"http://127.0.0.1:{port}/federation/v1/events"
        for db_name, db_url in databases.items():
            db_env = {**env, "EHUB_DATABASE_URL": db_url} if db_url else env
            for batch, count in ((1, 30_000), (100, 1_500)):
                data = tmp / f"requests-{batch}.bin"
                write_requests(data, url, cn_ring.active_key(), count, batch)
                with server(cmd, port, env=db_env) as base:
                    r = wrk(
                        base + "/federation/v1/events",
                        seconds=seconds,
                        script=str(lua),
                        extra=[str(data)],
                        connections=int(os.environ.get("BENCH_CONNECTIONS", "32")),
                    )
                r["events_per_s"] = round(r["rps"] * batch)
                results[f"{db_name}_batch_{batch}"] = r
    bare_rps = results["bare_fastapi_post"]["rps"]
    for db_name in ("sqlite", "postgres"):
        if f"{db_name}_batch_1" in results:
            results[f"{db_name}_ratio_single_vs_bare"] = round(
                results[f"{db_name}_batch_1"]["rps"] / bare_rps, 3
            )
    report("federation_ingest", results)


if __name__ == "__main__":
    main()

"""Microseconds per operation for hub signing: RFC 9421 requests and signed envelopes.

    uv run python bench/bench_signing.py [--n 2000]

Prints one JSON object (also written to var/bench/signing.json). Each figure is the best
of 5 runs of ``n`` operations on one core (signatures are CPU-bound; the best run is the
least disturbed by the rest of the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nacl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from ehub_core.envelope import open_envelope, seal, verify_envelope
from ehub_core.proto.ehub.v1 import common_pb2, orders_pb2
from ehub_core.signing import HubKey, MemoryNonceStore, sign_request, verify_request

URL = "https://hub-ca.example/federation/v1/events"
BODY = b'{"event": "' + b"x" * 499 + b'"}'  # 512 bytes, as in ARCHITECTURE §10


def best_us(run: Callable[[], float], n: int) -> float:
    return round(min(run() for _ in range(5)) / n * 1e6, 2)


def timed(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n

    now = datetime.now(UTC).replace(microsecond=0)
    key = HubKey.generate(
        kid="CN#bench", not_before=now - timedelta(days=1), not_after=now + timedelta(days=1)
    )
    trust = {key.kid: key.public_info}.get
    headers = {"Content-Type": "application/json"}
    message = BODY

    def sign_one(_: int) -> dict[str, str]:
        return sign_request("POST", URL, headers, BODY, key, "CN", now=now)

    def verify_run() -> float:
        signed = [{**headers, **sign_one(i)} for i in range(n)]
        store = MemoryNonceStore(clock=lambda: now)

        async def go() -> float:
            start = time.perf_counter()
            for h in signed:
                await verify_request(
                    "POST", URL, h, BODY, resolve_key=trust, nonce_store=store, now=now
                )
            return time.perf_counter() - start

        return asyncio.run(go())

    payload = orders_pb2.OrderPlaced(
        order_id="ord_0123456789",
        buyer_hub="CN",
        seller_hub="CA",
        partner_id="ptn_42",
        lines=[
            orders_pb2.OrderLine(
                sku=f"SKU-{i}",
                hs_code="030632",
                quantity=1,
                unit_price=common_pb2.Money(amount="49.90", currency="CAD"),
            )
            for i in range(3)
        ],
    )

    def seal_one(_: int) -> bytes:
        return seal(payload, key, target_hub="CA", subject="ord_0123456789", now=now)

    envelope = seal_one(0)
    signature = key.sign(message)

    results = {
        "ed25519_sign_512B_us": best_us(lambda: timed(lambda _: key.sign(message), n), n),
        "ed25519_verify_512B_us": best_us(
            lambda: timed(lambda _: key.public_info.verify(message, signature), n), n
        ),
        "sign_request_us": best_us(lambda: timed(sign_one, n), n),
        "verify_request_us": best_us(verify_run, n),
        "seal_envelope_us": best_us(lambda: timed(seal_one, n), n),
        "verify_envelope_us": best_us(
            lambda: timed(lambda _: verify_envelope(envelope, trust, now=now), n), n
        ),
        "open_envelope_us": best_us(
            lambda: timed(lambda _: open_envelope(envelope, trust, now=now), n), n
        ),
    }
    report(
        "signing",
        {
            "n": n,
            "envelope_bytes": len(envelope),
            "request_body_bytes": len(BODY),
            "python": platform.python_version(),
            "pynacl": nacl.__version__,
            "us_per_op": results,
            "envelopes_verified_per_core_per_s": int(1e6 / results["verify_envelope_us"]),
            "requests_verified_per_core_per_s": int(1e6 / results["verify_request_us"]),
        },
    )


if __name__ == "__main__":
    main()

"""The signed request, response, envelope and receipt printed in docs/federation-wire.md
verify with the keys printed there: the document cannot drift from the code."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from ehub_core.envelope import confirms, envelope_digest, open_envelope, verify_receipt
from ehub_core.proto.ehub.v1.envelope_pb2 import EnvelopeBatch
from ehub_core.signing import MemoryNonceStore, PublicKeyInfo, verify_request, verify_response

DOC = Path(__file__).resolve().parents[4] / "docs" / "federation-wire.md"
URL = "https://hub-ca.example/federation/v1/events"


def example(name: str) -> str:
    match = re.search(
        rf"<!-- wire-example: {name} -->\n```\w*\n(.*?)\n```", DOC.read_text(), re.DOTALL
    )
    assert match, f"example {name!r} missing from {DOC.name}"
    return match.group(1)


def http_message(name: str) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = example(name).partition("\n\n")
    start, *lines = head.split("\n")
    headers = [(k, v) for k, _, v in (line.partition(": ") for line in lines)]
    return start, headers, base64.b64decode(body)


async def test_documented_request_and_response_verify_with_the_documented_keys():
    keys = {k["kid"]: PublicKeyInfo.from_dict(k) for k in json.loads(example("keys"))}
    trust = keys.get
    created = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)

    start, req_headers, req_body = http_message("request")
    assert start.startswith("POST /federation/v1/events ")
    request = await verify_request(
        "POST",
        URL,
        req_headers,
        req_body,
        resolve_key=trust,
        nonce_store=MemoryNonceStore(clock=lambda: created),
        now=created,
    )
    assert request.kid == "CN#2026-11"

    status, resp_headers, resp_body = http_message("response")
    response = await verify_response(
        int(status.split()[1]),
        resp_headers,
        resp_body,
        request_method="POST",
        request_url=URL,
        request_headers=req_headers,
        resolve_key=trust,
        expected_hub="CA",
        now=created,
    )
    assert response.kid == "CA#2026-11"

    [sealed] = EnvelopeBatch.FromString(req_body).envelopes
    envelope, payload = open_envelope(sealed, trust, expected_target="CA", now=created)
    assert envelope.type == "OrderPlaced" and payload.order_id == "ord_01JDEMO"  # type: ignore[attr-defined]
    receipt = verify_receipt(
        resp_body, trust, expected_receiver="CA", expected_sender="CN", now=created
    )
    assert confirms(receipt, envelope.event_id, envelope_digest(sealed))

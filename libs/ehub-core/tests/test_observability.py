"""Every service continues the caller's trace and counts requests by route template."""

from __future__ import annotations

import io
import json
import logging

from fastapi import APIRouter
from opentelemetry import trace

from ehub_catalog.settings import CatalogSettings
from ehub_core.app import create_service_app
from ehub_core.telemetry import JsonFormatter
from ehub_core.testing import serve_in_process

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

probe = APIRouter()


@probe.get("/v1/probe/{item}")
async def probe_route(item: str) -> dict[str, str]:
    ctx = trace.get_current_span().get_span_context()
    logging.getLogger("ehub.test").info("probing %s", item)
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}


def app_with_probe(tmp_path):
    return create_service_app(
        CatalogSettings(var_dir=tmp_path),
        title="probe",
        description="probe",
        migrations_package="ehub_catalog.migrations",
        routers=[probe],
    )


async def test_incoming_traceparent_is_continued(tmp_path):
    async with serve_in_process(app_with_probe(tmp_path)) as client:
        r = await client.get("/v1/probe/a", headers={"traceparent": PARENT})
    assert r.json()["trace_id"] == TRACE_ID
    assert r.json()["span_id"] != "00f067aa0ba902b7"  # a child span, not the caller's


async def test_request_without_traceparent_gets_a_fresh_trace(tmp_path):
    async with serve_in_process(app_with_probe(tmp_path)) as client:
        first = (await client.get("/v1/probe/a")).json()["trace_id"]
        second = (await client.get("/v1/probe/b")).json()["trace_id"]
    assert first != second and int(first, 16) != 0


async def test_log_lines_inside_a_request_carry_its_trace_id(tmp_path):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("catalog", "CN"))
    logger = logging.getLogger("ehub.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with serve_in_process(app_with_probe(tmp_path)) as client:
            await client.get("/v1/probe/x", headers={"traceparent": PARENT})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue().splitlines()[0])
    assert entry["msg"] == "probing x"
    assert entry["trace_id"] == TRACE_ID
    assert entry["service"] == "catalog" and entry["hub"] == "CN"


async def test_metrics_count_requests_by_route_template(tmp_path):
    async with serve_in_process(app_with_probe(tmp_path)) as client:
        for item in ("a", "b", "c"):
            await client.get(f"/v1/probe/{item}")
        text = (await client.get("/metrics")).text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("ehub_http_requests_total{")
        and 'route="/v1/probe/{item}"' in ln
        and 'status="200"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 3


class _Lines(logging.Handler):
    """The JSON lines the ``ehub.access`` logger writes, parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter("catalog", "CN"))
        self.entries: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))


def _capture_access() -> _Lines:
    lines = _Lines()
    logger = logging.getLogger("ehub.access")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    return lines


async def test_access_log_is_one_json_line_per_request(tmp_path):
    lines = _capture_access()
    try:
        async with serve_in_process(app_with_probe(tmp_path)) as client:
            await client.get("/v1/probe/a", headers={"traceparent": PARENT})
            await client.get("/v1/no-such-route")
    finally:
        logging.getLogger("ehub.access").removeHandler(lines)
    assert len(lines.entries) == 2
    probe, missing = lines.entries
    assert probe["logger"] == "ehub.access"
    assert (probe["method"], probe["route"], probe["status"]) == ("GET", "/v1/probe/{item}", 200)
    assert probe["trace_id"] == TRACE_ID
    assert isinstance(probe["latency_ms"], float) and probe["latency_ms"] >= 0
    assert probe["partner_id"] is None  # development mode: nobody authenticated
    assert (missing["route"], missing["status"]) == ("unmatched", 404)
    assert missing["trace_id"] not in (None, TRACE_ID)


async def test_access_log_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("EHUB_ACCESS_LOG", "false")
    lines = _capture_access()
    try:
        async with serve_in_process(app_with_probe(tmp_path)) as client:
            assert (await client.get("/v1/probe/a")).status_code == 200
    finally:
        logging.getLogger("ehub.access").removeHandler(lines)
    assert lines.entries == []


async def test_access_log_names_the_partner_the_gateway_admitted(tmp_path):
    from ehub_gateway.app import create_app
    from ehub_gateway.partners import service as partners
    from ehub_gateway.settings import GatewaySettings

    app = create_app(GatewaySettings(var_dir=tmp_path, internal_token="t" * 16))
    lines = _capture_access()
    try:
        async with serve_in_process(app) as client:
            async with app.state.ctx.db.transaction() as session:
                partner, key = await partners.create_partner(
                    session, name="Shop", role="seller", scopes=None
                )
            await app.state.keys.load()
            r = await client.get("/v1/webhooks", headers={"Authorization": f"Bearer {key.key}"})
            assert r.status_code == 200, r.text
            assert (await client.get("/v1/webhooks")).status_code == 401
    finally:
        logging.getLogger("ehub.access").removeHandler(lines)
    admitted, refused = lines.entries[-2:]
    assert admitted["route"] == "/v1/webhooks" and admitted["status"] == 200
    assert admitted["partner_id"] == partner.id
    # Refused at the door, before routing: no route template, no partner.
    assert (refused["route"], refused["status"], refused["partner_id"]) == ("unmatched", 401, None)

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

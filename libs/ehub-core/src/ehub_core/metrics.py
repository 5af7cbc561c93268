"""Prometheus metrics shared by all services (one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "ehub_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "ehub_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PUBLISHED = Counter(
    "ehub_outbox_published_total", "Outbox events published to the bus", ["service"]
)
OUTBOX_REPLAYED = Counter(
    "ehub_outbox_replayed_total",
    "Outbox events published again because the broker lost them",
    ["service"],
)
OUTBOX_DEAD = Counter(
    "ehub_outbox_dead_lettered_total",
    "Outbox events the broker refused for good (too large, invalid topic), set aside",
    ["service"],
)
INBOX_DUPLICATES = Counter(
    "ehub_inbox_duplicates_total", "Redelivered events skipped by the inbox", ["consumer"]
)
FED_RECEIPTED = Counter(
    "ehub_federation_receipted_total", "Outbound events confirmed by a peer's receipt", ["hub"]
)
FED_INGESTED = Counter(
    "ehub_federation_ingested_total",
    "Inbound federation events by outcome",
    ["hub", "via", "outcome"],
)

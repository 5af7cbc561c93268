"""Partner webhooks in one place: every name the routes, the worker and the saga use.

The code lives beside this module, by concern:

- ``events.py``: the event catalogue, :func:`emit` (delivery rows in the caller's
  transaction), ``order.state_changed``, waking the worker after the commit;
- ``endpoints.py``: registering, reading, listing and disabling endpoints;
- ``urls.py``: which URLs may receive webhooks (SSRF rules);
- ``signing.py``: secrets and Standard Webhooks signatures;
- ``deliveries.py``: the delivery log and redelivery.
"""

from __future__ import annotations

from ehub_gateway.webhooks.deliveries import list_deliveries, redeliver
from ehub_gateway.webhooks.endpoints import (
    MAX_ACTIVE_ENDPOINTS,
    create_endpoint,
    disable_endpoint,
    get_endpoint,
    list_endpoints,
)
from ehub_gateway.webhooks.events import (
    DELIVERED,
    EVENT_TYPES,
    FAILED,
    LABEL_READY,
    ORDER_STATE_CHANGED,
    PENDING,
    SHIPMENT_STATUS_CHANGED,
    add_listener,
    emit,
    iso,
    order_state_changed,
    remove_listener,
    wake_after_commit,
)
from ehub_gateway.webhooks.signing import SECRET_PREFIX, headers_for, new_secret, secret_bytes, sign
from ehub_gateway.webhooks.urls import (
    MAX_URL,
    METADATA_HOSTS,
    METADATA_IPS,
    forbidden_ip,
    is_loopback_host,
    literal_ip,
    validate_url,
)

__all__ = [
    "DELIVERED",
    "EVENT_TYPES",
    "FAILED",
    "LABEL_READY",
    "MAX_ACTIVE_ENDPOINTS",
    "MAX_URL",
    "METADATA_HOSTS",
    "METADATA_IPS",
    "ORDER_STATE_CHANGED",
    "PENDING",
    "SECRET_PREFIX",
    "SHIPMENT_STATUS_CHANGED",
    "add_listener",
    "create_endpoint",
    "disable_endpoint",
    "emit",
    "forbidden_ip",
    "get_endpoint",
    "headers_for",
    "is_loopback_host",
    "iso",
    "list_deliveries",
    "list_endpoints",
    "literal_ip",
    "new_secret",
    "order_state_changed",
    "redeliver",
    "remove_listener",
    "secret_bytes",
    "sign",
    "validate_url",
    "wake_after_commit",
]

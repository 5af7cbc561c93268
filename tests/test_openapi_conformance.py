"""Every service's published OpenAPI says what it answers.

For every operation of every service (the gateway's own and, in its merged document, the
services' partner operations) one real request that succeeds is made in process, against
the real app and a real SQLite database, and its body is validated against the response
schema the document publishes for that status and media type; a failure names the
operation. An operation that cannot succeed in one process (it needs a peer hub, or a
declaration only an order makes) is listed in ``NOT_EXERCISED`` with the reason, and the
list is asserted: it cannot grow unnoticed. The multi-hub tests (tests/test_orders.py,
tests/test_federation_*.py) exercise those.

The documents themselves are checked too: every operation has a summary, a description
and an example of its success answer that fits its schema; every error answer is
``application/problem+json`` with the problem schema; FastAPI's ``HTTPValidationError``
appears nowhere.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from ehub_catalog.app import create_app as catalog_app
from ehub_catalog.settings import CatalogSettings
from ehub_core.errors import PROBLEM_JSON, PROBLEM_SCHEMA
from ehub_core.openapi import operations
from ehub_core.testing import serve_in_process
from ehub_customs.app import create_app as customs_app
from ehub_customs.settings import CustomsSettings
from ehub_gateway.app import create_app as gateway_app
from ehub_gateway.partners import service as partners
from ehub_gateway.settings import GatewaySettings
from ehub_logistics.app import create_app as logistics_app
from ehub_logistics.settings import LogisticsSettings

TOKEN = "conformance-internal-token"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
# A partner call as the gateway forwards it to a service.
PARTNER = {
    "X-Ehub-Gateway": TOKEN,
    "X-Ehub-Partner": "prt_conformance",
    "X-Ehub-Partner-Role": "seller",
    "X-Ehub-Scopes": " ".join(sorted(partners.SCOPES)),
}
ADDRESS = {
    "name": "Li Wei",
    "street": ["88 Century Avenue"],
    "city": "Shanghai",
    "postal_code": "200120",
    "country": "CN",
}
SHIPPER = {
    "name": "Atlantic Lobster Co.",
    "street": ["1 Lower Water St"],
    "city": "Halifax",
    "postal_code": "B3J 1R7",
    "country": "CA",
}
PARCEL = {"weight": "2", "length": 30, "width": 20, "height": 15}
LANDED_COST = {
    "origin": "CA",
    "destination": "CN",
    "date": "2026-12-01",
    "currency": "CAD",
    "buyer_currency": "CNY",
    "shipping": "30.00",
    "items": [
        {
            "hs_code": "0306.32",
            "quantity": 2,
            "unit_value": "45.00",
            "country_of_origin": "CA",
            "unit_weight_kg": "0.9",
        }
    ],
}
RATES = {
    "origin": {"country": "CA", "postal_code": "B3J 1R7"},
    "destination": {"country": "CN", "postal_code": "200120", "city": "Shanghai"},
    "parcels": [PARCEL],
    "declared_value": {"amount": "90.00", "currency": "CAD"},
}
SHIPMENT = {
    "carrier": "express",
    "service": "express_worldwide",
    "shipper": SHIPPER,
    "recipient": ADDRESS,
    "parcels": [PARCEL],
    "customs": {
        "currency": "CAD",
        "items": [
            {
                "description": "Live lobster",
                "hs_code": "030632",
                "quantity": 2,
                "unit_value": "45.00",
                "origin_country": "CA",
            }
        ],
    },
    "order_id": "ord_conformance",
}

_PEER = "needs a peer hub (signed offer, federation): tests/test_orders.py"
_SIGNED = "takes only RFC 9421 requests signed by a peer hub: tests/test_federation_*.py"
_DECLARATION = "needs a held declaration, which only an order's import filing makes"
NOT_EXERCISED: dict[tuple[str, str, str], str] = {
    ("customs", "GET", "/v1/allowances/{country}/{buyer_id}"): (
        "a partner reads only the allowances of its own buyers, which only an order makes "
        "(the operator's read of the same allowance is exercised)"
    ),
    ("customs", "POST", "/v1/clearance/{declaration_id}/claim"): _DECLARATION,
    ("customs", "POST", "/v1/clearance/{declaration_id}/decide"): _DECLARATION,
    ("gateway", "POST", "/federation/v1/events"): _SIGNED,
    ("gateway", "POST", "/federation/v1/revocations"): _SIGNED,
    ("gateway", "POST", "/federation/v1/offers"): _SIGNED,
    ("gateway", "POST", "/internal/v1/events"): "relays only to a peer hub: " + _SIGNED,
    ("gateway", "POST", "/v1/orders"): _PEER,
    ("gateway", "GET", "/v1/orders/{order_id}"): _PEER,
    ("gateway", "POST", "/v1/orders/{order_id}/accept"): _PEER,
    ("gateway", "POST", "/v1/orders/{order_id}/reject"): _PEER,
    ("gateway", "POST", "/v1/orders/{order_id}/cancel"): _PEER,
    ("gateway", "POST", "/v1/orders/{order_id}/returns"): _PEER,
    ("gateway", "POST", "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver"): (
        "needs a webhook delivery, which only an order's state change makes"
    ),
}
# Known mismatches being fixed by their owners: (service, method, path) -> reason.
KNOWN_MISMATCH: dict[tuple[str, str, str], str] = {}
# Error answers that are not problems, on purpose: (path, status) -> why.
NOT_PROBLEMS = {("/readyz", "503"): "the readiness report, shaped as its 200 answer"}
# Operations whose description or example is still missing (api/federation.py, owned
# elsewhere for now): the list is asserted, so it only shrinks.
DOC_GAPS: set[str] = set()  # operations allowed to lack docs: none

Call = Callable[..., Awaitable[httpx.Response]]
Exchange = dict[tuple[str, str], httpx.Response]


async def _catalog(call: Call, app: Any) -> None:
    seller = (await call("POST", "/v1/sellers", json={"name": "Shop", "country": "CA"})).json()
    product = {
        "seller_id": seller["id"],
        "title": "Live lobster",
        "hs_code": "030632",
        "origin_country": "CA",
        "price": "45.00",
        "currency": "CAD",
        "weight_kg": "1.2",
        "stock": 10,
    }
    pid = (await call("POST", "/v1/products", json=product)).json()["id"]
    await call("GET", "/v1/sellers/{seller_id}", seller["id"])
    await call("GET", "/v1/products", params={"q": "lobster"})
    await call("GET", "/v1/products/{product_id}", pid)
    await call(
        "PATCH", "/v1/products/{product_id}", pid, json={"price": "44.00", "markets": ["CN"]}
    )
    body = {"name": "Op Shop", "country": "CA", "owner": "prt_conformance", "sme_verified": True}
    await call("POST", "/operator/v1/sellers", json=body, headers=OPERATOR)
    await call(
        "POST",
        "/operator/v1/sellers/{seller_id}/verification",
        seller["id"],
        json={"sme_verified": True},
        headers=OPERATOR,
    )
    await call("GET", "/operator/v1/sellers/{seller_id}", seller["id"], headers=OPERATOR)
    await call("GET", "/operator/v1/products/{product_id}", pid, headers=OPERATOR)


async def _customs(call: Call, app: Any) -> None:
    await call("POST", "/v1/landed-cost", json=LANDED_COST)
    batch = {
        "destination": "CN",
        "currency": "CNY",
        "date": "2026-12-01",
        "items": [
            {
                "ref": "sku-1",
                "hs_code": "0306.32",
                "unit_value": "45.00",
                "value_currency": "CAD",
                "origin": "CA",
            }
        ],
    }
    await call("POST", "/operator/v1/landed-cost/batch", json=batch, headers=OPERATOR)
    await call("GET", "/v1/rules/{country}", "CN")
    await call("GET", "/v1/declarations", params={"order_id": "ord_conformance"})
    await call("GET", "/v1/clearance/queue")
    # A name screening confused with a sanctions-list entry, cleared by an officer.
    entry = {"name": "ERIK  Badege", "entry": "un-consolidated:CDi.001", "reason": "another person"}
    added = (await call("POST", "/v1/screening/whitelist", json=entry)).json()
    await call("GET", "/v1/screening/whitelist")
    await call("DELETE", "/v1/screening/whitelist/{entry_id}", str(added["id"]))
    await call(
        "GET", "/operator/v1/allowances/{country}/{buyer_id}", "CN", "buyer-42", headers=OPERATOR
    )
    await call("POST", "/operator/v1/landed-cost", json=LANDED_COST, headers=OPERATOR)


async def _logistics(call: Call, app: Any) -> None:
    await call("POST", "/v1/rates", json=RATES)
    await call("GET", "/v1/carriers")
    shipment = (await call("POST", "/v1/shipments", json=SHIPMENT)).json()
    await call("GET", "/v1/shipments", params={"order_id": "ord_conformance"})
    await call("GET", "/v1/shipments/{shipment_id}", shipment["id"])
    await call("GET", "/v1/shipments/{shipment_id}/label.pdf", shipment["id"])
    express = app.state.carriers.get("express").carrier
    event = express.native_event(shipment["tracking_number"], "PU", datetime.now(UTC), country="CA")
    delivery = express.deliver([event])
    await call(
        "POST",
        "/v1/carriers/{carrier}/events",
        "express",
        content=delivery.body,
        headers={**delivery.headers, "X-Ehub-Gateway": None},
    )
    await call("POST", "/operator/v1/rates", json=RATES, headers=OPERATOR)
    await call(
        "GET", "/operator/v1/shipments", params={"order_id": "ord_conformance"}, headers=OPERATOR
    )
    await call("GET", "/operator/v1/shipments/{shipment_id}", shipment["id"], headers=OPERATOR)
    second = (await call("POST", "/v1/shipments", json=SHIPMENT)).json()  # not picked up
    await call("POST", "/v1/shipments/{shipment_id}/cancel", second["id"])


async def _gateway(call: Call, app: Any) -> None:
    created = await call(
        "POST", "/operator/v1/partners", json={"name": "Shop", "role": "seller"}, headers=OPERATOR
    )
    partner_id = created.json()["partner"]["id"]
    await call("GET", "/operator/v1/partners", headers=OPERATOR)
    key = (
        await call(
            "POST", "/operator/v1/partners/{partner_id}/keys", partner_id, json={}, headers=OPERATOR
        )
    ).json()
    await app.state.keys.load()
    bearer = {"Authorization": f"Bearer {key['key']}"}
    hook = {"url": "http://127.0.0.1:9/hook", "event_types": ["order.state_changed"]}
    endpoint = (await call("POST", "/v1/webhooks", json=hook, headers=bearer)).json()
    await call("GET", "/v1/webhooks", headers=bearer)
    await call("GET", "/v1/webhooks/{endpoint_id}", endpoint["id"], headers=bearer)
    await call("GET", "/v1/webhooks/{endpoint_id}/deliveries", endpoint["id"], headers=bearer)
    await call("DELETE", "/v1/webhooks/{endpoint_id}", endpoint["id"], headers=bearer)
    await call("GET", "/v1/orders", headers=bearer)
    await call("GET", "/.well-known/ehub")
    await call("DELETE", "/operator/v1/keys/{key_id}", key["key_id"], headers=OPERATOR)


def _apps(var: Path) -> dict[str, tuple[Any, Callable[[Call, Any], Awaitable[None]]]]:
    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{var}/{name}.db"

    closed = "http://127.0.0.1:9"  # nothing listens: no service part is fetched
    return {
        "catalog": (
            catalog_app(
                CatalogSettings(var_dir=var, database_url=db("catalog"), internal_token=TOKEN)
            ),
            _catalog,
        ),
        "customs": (
            customs_app(
                CustomsSettings(var_dir=var, database_url=db("customs"), internal_token=TOKEN)
            ),
            _customs,
        ),
        "logistics": (
            logistics_app(
                LogisticsSettings(var_dir=var, database_url=db("logistics"), internal_token=TOKEN)
            ),
            _logistics,
        ),
        "gateway": (
            gateway_app(
                GatewaySettings(
                    var_dir=var,
                    database_url=db("gateway"),
                    internal_token=TOKEN,
                    catalog_url=closed,
                    customs_url=closed,
                    logistics_url=closed,
                    webhook_allow_http=True,
                )
            ),
            _gateway,
        ),
    }


def _validator(schema: dict[str, Any], doc: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": doc.get("components", {})})


def _check(doc: dict[str, Any], method: str, path: str, response: httpx.Response) -> list[str]:
    """What is wrong with ``response`` as the answer of ``method path`` in ``doc``."""
    op = doc["paths"][path][method.lower()]
    documented = op["responses"].get(str(response.status_code))
    if documented is None:
        return [f"status {response.status_code} is not documented: {response.text[:300]}"]
    if not 200 <= response.status_code < 300:
        return [f"did not succeed: {response.status_code} {response.text[:300]}"]
    media = response.headers.get("content-type", "").split(";")[0]
    content = documented.get("content", {})
    if not content:
        return [] if not response.content else [f"a body where none is documented ({media})"]
    if media not in content:
        return [f"content-type {media} is not documented ({sorted(content)})"]
    if media != "application/json" and not media.endswith("+json"):
        return []
    validator = _validator(content[media].get("schema", {}), doc)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message[:200]}"
        for e in validator.iter_errors(response.json())
    ]


async def _exercise(service: str, var: Path) -> tuple[dict[str, Any], Exchange]:
    app, scenario = _apps(var)[service]
    seen: Exchange = {}
    async with serve_in_process(app) as client:

        async def call(method: str, template: str, *ids: str, **kwargs: Any) -> httpx.Response:
            path = template
            for value in ids:
                path = path[: path.index("{")] + value + path[path.index("}") + 1 :]
            headers = {**PARTNER, **(kwargs.pop("headers", None) or {})}
            headers = {k: v for k, v in headers.items() if v is not None}
            response = await client.request(method, path, headers=headers, **kwargs)
            seen[(method, template)] = response
            return response

        for ops in ("/healthz", "/readyz", "/metrics"):
            await call("GET", ops)
        await scenario(call, app)
        doc = (await client.get("/openapi.json")).json()
    return doc, seen


@pytest.mark.parametrize("service", ["catalog", "customs", "gateway", "logistics"])
async def test_every_operation_answers_what_its_document_says(service: str, tmp_path: Path):
    doc, seen = await _exercise(service, tmp_path)
    published = {(m, p) for m, p, _ in operations(doc)}
    skipped = {(m, p) for s, m, p in NOT_EXERCISED if s == service}
    assert skipped <= published, f"listed but not published: {skipped - published}"
    missing = published - skipped - set(seen)
    assert not missing, f"operations of {service} never exercised: {sorted(missing)}"
    assert not (skipped & set(seen)), "exercised although listed in NOT_EXERCISED"
    failures = []
    for (method, path), response in sorted(seen.items()):
        problems = _check(doc, method, path, response)
        known = KNOWN_MISMATCH.get((service, method, path))
        if problems and not known:
            failures.append(f"{method} {path}:\n  " + "\n  ".join(problems))
    assert not failures, f"{service}: answers that break the published document:\n" + "\n".join(
        failures
    )


def _examples_fit(doc: dict[str, Any], where: str, media: dict[str, Any]) -> list[str]:
    examples = [media["example"]] if "example" in media else []
    examples += [e.get("value") for e in media.get("examples", {}).values()]
    if not examples:
        return [f"{where}: no example"]
    if "schema" not in media:
        return []
    validator = _validator(media["schema"], doc)
    return [
        f"{where}: example: {e.message[:200]}" for x in examples for e in validator.iter_errors(x)
    ]


@pytest.mark.parametrize("service", ["catalog", "customs", "gateway", "logistics"])
async def test_every_operation_is_documented_with_problems_and_examples(service, tmp_path):
    app, _ = _apps(tmp_path)[service]
    async with serve_in_process(app) as client:
        doc = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(doc)
    problem = copy.deepcopy(PROBLEM_SCHEMA)
    wrong = []
    for method, path, op in operations(doc):
        name = f"{method} {path}"
        if not op.get("summary"):
            wrong.append(f"{name}: no summary")
        if not op.get("description"):
            wrong.append(f"{name}: no description")
        for code, response in op["responses"].items():
            content = response.get("content", {})
            if (path, code) in NOT_PROBLEMS:
                continue
            if code.startswith(("4", "5")):
                schema = content.get(PROBLEM_JSON, {}).get("schema")
                if schema not in (problem, {"$ref": "#/components/schemas/Problem"}):
                    wrong.append(f"{name}: {code} is not a problem+json answer")
                else:
                    wrong += _examples_fit(doc, f"{name} {code}", content[PROBLEM_JSON])
            elif code.startswith("2"):
                for media_type, media in content.items():
                    wrong += _examples_fit(doc, f"{name} {code} {media_type}", media)
    gaps = DOC_GAPS if service == "gateway" else set()
    assert set(wrong) >= gaps, f"fixed, drop from DOC_GAPS: {sorted(gaps - set(wrong))}"
    assert not set(wrong) - gaps, "\n".join(w for w in wrong if w not in gaps)

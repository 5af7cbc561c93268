"""Example values made from a JSON schema, for the OpenAPI documents' success answers.

A schema's own ``example``/``examples``, ``const``, ``enum`` and ``default`` come first;
otherwise a value is chosen by the property's name (a country is ``CN``, a currency
``CNY``, an HS code ``030632``) or its format, and checked against the schema's pattern
and bounds; a value that fits nothing is left out (optional properties) or made plain.
The examples are checked against their schemas by ``tests/test_openapi_conformance.py``.
"""

from __future__ import annotations

import re
from typing import Any

_BY_NAME: dict[str, Any] = {
    "country": "CN",
    "origin": "CA",
    "destination": "CN",
    "origin_country": "CA",
    "country_of_origin": "CA",
    "hub": "CN",
    "hub_id": "CN",
    "seller_hub": "CA",
    "buyer_hub": "CN",
    "currency": "CNY",
    "buyer_currency": "CNY",
    "hs_code": "030632",
    "carrier": "postal",
    "service": "surface_parcel",
    "email": "ops@example.com",
    "url": "https://shop.example.com/hooks/ehub",
    "name": "Atlantic Lobster Co.",
    "title": "Live lobster",
    "city": "Shanghai",
    "postal_code": "200120",
    "tracking_number": "EH123456789CA",
    "status": "ok",
    "state": "placed",
    "amount": "129.90",
    "total": "129.90",
}
_BY_FORMAT = {
    "date-time": "2026-12-01T08:30:00Z",
    "date": "2026-12-01",
    "time": "08:30:00",
    "uuid": "01938a6e-7c2b-7d4e-9f10-2a3b4c5d6e7f",
    "email": "ops@example.com",
    "uri": "https://example.com/",
    "binary": "%PDF-1.4 ...",
}
_CANDIDATES = (
    "CN",
    "CNY",
    "030632",
    "0306.32",
    "example",
    "example_1",
    "Example",
    "12345678",
    "1",
)


def _fits(value: str, schema: dict[str, Any]) -> bool:
    pattern = schema.get("pattern")
    if pattern is not None and re.search(pattern, value) is None:
        return False
    return schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 1 << 30)


def _string(schema: dict[str, Any], name: str | None) -> str | None:
    pattern = schema.get("pattern", "")
    prefix = re.match(r"\^([a-z]{2,4}_)", pattern)
    tries = [_BY_NAME.get(name or ""), _BY_FORMAT.get(schema.get("format", ""))]
    if prefix:  # a prefixed id such as ord_<32 hex>
        tries += [prefix.group(1) + "0" * n for n in (32, 26, 12, 1)]
    if name and name.endswith("_id") and not prefix:
        tries.append(f"{name[:-3]}_01")
    tries += list(_CANDIDATES)
    for value in tries:
        if isinstance(value, str) and _fits(value, schema):
            return value
    return None


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value = max(low + (1 if "exclusiveMinimum" in schema else 0), 1 if low <= 1 else low)
    if high is not None and value > high:
        value = high
    return int(value) if integer else float(value)


def example_for(
    schema: dict[str, Any], components: dict[str, Any], name: str | None = None, depth: int = 0
) -> Any:
    """An example of ``schema`` (``$ref``s resolved in ``components``); None if none."""
    if depth > 8:
        return None
    ref = schema.get("$ref")
    if ref:
        return example_for(components.get(ref.rsplit("/", 1)[-1], {}), components, name, depth)
    for key in ("example", "const", "default"):
        if key in schema and (key != "default" or schema[key] is not None):
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_for(options[0], components, name, depth + 1)
    if "allOf" in schema:
        return example_for(schema["allOf"][0], components, name, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        out = {}
        required = set(schema.get("required", ()))
        for prop, sub in schema.get("properties", {}).items():
            value = example_for(sub, components, prop, depth + 1)
            if value is not None or prop in required:
                out[prop] = value
        return out
    if kind == "array":
        item = example_for(schema.get("items", {}), components, name, depth + 1)
        return [] if item is None else [item]
    if kind == "string":
        return _string(schema, name)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    return None

"""``/docs`` and ``/redoc`` come from the service itself: every URL they reference is
same-origin and answers 200; ``field_error`` is the one shape of a field error."""

from __future__ import annotations

import re

from ehub_catalog.app import create_app
from ehub_catalog.settings import CatalogSettings
from ehub_core.apidocs import assets_dir
from ehub_core.errors import field_error
from ehub_core.testing import serve_in_process

URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


async def test_docs_reference_only_same_origin_urls_that_answer(tmp_path):
    async with serve_in_process(create_app(CatalogSettings(var_dir=tmp_path))) as client:
        for page in ("/docs", "/redoc"):
            r = await client.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            urls = URL.findall(r.text)
            assert urls, f"{page} references nothing"
            assert not [u for u in urls if "//" in u], f"{page} loads from elsewhere: {urls}"
            for url in urls:
                assert (await client.get(url)).status_code == 200, url
            if assets_dir() is None:  # the package with the Swagger UI files is missing
                assert "fastapi_offline" in r.text and "/openapi.json" in urls
            else:
                assert "/docs/assets/" in r.text
        assert (await client.get("/openapi.json")).status_code == 200


def test_field_error_has_the_shape_of_a_validation_error():
    assert field_error("lines.0.quantity", "more than in stock", "out_of_stock") == {
        "loc": ["body", "lines", 0, "quantity"],
        "field": "lines.0.quantity",
        "msg": "more than in stock",
        "type": "out_of_stock",
    }
    header = field_error("Idempotency-Key", "reused", where="header")
    assert header["loc"] == ["header", "Idempotency-Key"] and header["type"] == "value_error"
    assert field_error(["events", 3, "city"], "control character")["field"] == "events.3.city"

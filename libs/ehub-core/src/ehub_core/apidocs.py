"""``/docs`` (Swagger UI) and ``/redoc`` served by the service itself, never from a CDN:
a hub's operators read its API documentation where it runs, offline included.

The Swagger UI and ReDoc files come from the ``fastapi-offline`` package
(``fastapi_offline/static``: ``swagger-ui-bundle.js``, ``swagger-ui.css``,
``redoc.standalone.js``, ``favicon.png``), served under ``/docs/assets/``. Without that
package ``/docs`` says so and points to ``/openapi.json``, which is always served.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS_PACKAGE = "fastapi_offline"
_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def assets_dir() -> Path | None:
    """The directory holding the Swagger UI files, or None when not installed."""
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if all((static / name).is_file() for name in _FILES) else None


_MISSING = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title} - API documentation</title></head>
<body><h1>{title}</h1>
<p>The interactive API documentation needs the Swagger UI files of the
<code>{package}</code> Python package, which is not installed here.</p>
<p>The OpenAPI document is at <a href="{openapi}">{openapi}</a>.</p></body></html>
"""


def install(app: FastAPI) -> None:
    """Add ``/docs``, its OAuth2 redirect page, ``/redoc`` and their assets to ``app``
    (created with ``docs_url=None, redoc_url=None``)."""
    static = assets_dir()
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if static is None:
            page = _MISSING.format(
                title=app.title, package=ASSETS_PACKAGE, openapi=root + openapi_url
            )
            return HTMLResponse(page)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API documentation",
            oauth2_redirect_url=root + redirect_url,
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if static is None:
            return await docs(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API reference",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.add_api_route("/docs", docs, include_in_schema=False)
    app.add_api_route(redirect_url, redirect, include_in_schema=False)
    app.add_api_route("/redoc", redoc, include_in_schema=False)
    if static is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=static), name="docs-assets")

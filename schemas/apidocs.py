"""OpenAPI docs that work offline: Swagger UI (``/docs``) and ReDoc (``/redoc``) load their
scripts, styles and icon from this server, never from a CDN, so they render inside a
hospital network without internet access.

The assets come from the ``fastapi-standalone-docs`` package (Swagger UI 5, which renders
the OpenAPI 3.1 documents FastAPI writes, and ReDoc); its own patching of FastAPI is not
used. Build the app with ``docs_url=None, redoc_url=None`` and call :func:`serve_docs`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_standalone_docs") / "static"))
PREFIX = "/docs/assets"


def serve_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and ReDoc at ``/redoc`` from packaged assets."""
    for name in ("swagger", "redoc", "fastapi"):
        app.mount(f"{PREFIX}/{name}", StaticFiles(directory=ASSETS / name), name=f"docs-{name}")
    openapi = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{PREFIX}/swagger/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{PREFIX}/swagger/swagger-ui.css",
            swagger_favicon_url=f"{root}{PREFIX}/fastapi/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + openapi,
            title=f"{app.title} - API docs",
            redoc_js_url=f"{root}{PREFIX}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{PREFIX}/fastapi/favicon.png",
            with_google_fonts=False,
        )

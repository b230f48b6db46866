"""The API's documentation, served from the server itself (no CDN: it works offline).

``/docs`` is Swagger UI when the ``swagger-ui-bundle`` package (which ships its files) is installed,
else a plain page listing every operation of the OpenAPI schema; ``/api/v1/openapi.json`` is the schema.
"""

from __future__ import annotations

import html
from importlib.util import find_spec
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

__all__ = ["install_docs"]

OPENAPI_URL = "/api/v1/openapi.json"
_METHODS = ("get", "put", "post", "patch", "delete")


def operations_page(schema: dict[str, Any]) -> str:
    """A plain HTML page listing the operations of an OpenAPI schema.

    Example:
        >>> page = operations_page({"info": {"title": "T", "version": "1"}, "paths": {"/x": {"get": {"summary": "X"}}}})
        >>> "<code>GET /x</code>" in page
        True
    """
    rows = []
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                operation = item[method]
                text = html.escape(operation.get("description") or "").replace("\n", "<br>")
                rows.append(
                    f"<li><code>{method.upper()} {html.escape(path)}</code> {html.escape(operation.get('summary', ''))}"
                    f"<div>{text}</div></li>"
                )
    title = html.escape(f"{schema['info']['title']} {schema['info']['version']}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>"
        f"<p>The OpenAPI schema: <a href='{OPENAPI_URL}'>{OPENAPI_URL}</a></p><ul>{''.join(rows)}</ul></body></html>"
    )


def install_docs(app: FastAPI) -> None:
    """Mount ``/docs`` (Swagger UI from local files when available, else the plain operations page)."""
    if find_spec("swagger_ui_bundle") is not None:
        import importlib

        from fastapi.staticfiles import StaticFiles

        swagger_ui_path = importlib.import_module("swagger_ui_bundle").swagger_ui_path

        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        def swagger() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url=OPENAPI_URL,
                title=app.title,
                swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                swagger_css_url="/docs-assets/swagger-ui.css",
                swagger_favicon_url="/docs-assets/favicon-32x32.png",
            )

        return

    @app.get("/docs", include_in_schema=False)
    def operations() -> HTMLResponse:
        return HTMLResponse(operations_page(app.openapi()))

"""Swagger UI 5 served from the assets in the `fastapi-offline` package: /docs works with no internet access.

(`swagger-ui-bundle` ships Swagger UI 3.20, which cannot render the OpenAPI 3.1 that FastAPI writes.)
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def install(app: FastAPI, title: str) -> None:
    """Mount the Swagger UI assets and serve /docs from them (no CDN, no online validator)."""
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="swagger-ui")
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json", title=title,
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None, "displayRequestDuration": True, "tryItOutEnabled": True})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return page

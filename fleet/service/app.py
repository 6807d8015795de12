"""The ASGI app of ``fleet serve``: routes, error handlers, security headers, the console.

``create_app`` composes it from a ``Service`` (``fleet.service.auth``). The OpenAPI document
is at ``/openapi.json`` for callers with a token (no interactive docs: they would load scripts
from a CDN); ``/healthz`` is the only route that needs none, besides the console's static
files and sign-in configuration.

The console is static (``fleet/service/console/``: one HTML page, its script and styles, and
``@azure/msal-browser`` vendored from the npm registry under ``vendor/``): it holds no data,
so it loads without a token and then calls the API with one. Its configuration
(``/console/config.json``) is what any single-page app ships in its bundle: the tenant's
authority, the console's client id and the API scopes for MSAL (authorization code with
PKCE), or the dev issuer's demo users under ``--dev``. Never a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from fleet import __version__
from fleet.service import controls_api, errors, jobs_api, sweeps_api
from fleet.service.auth import Service, Viewer
from fleet.service.devissuer import DevIssuer
from fleet.service.headers import Guard, content_security_policy
from fleet.settings import Settings

FILES = Path(__file__).with_name("console")


def sign_in(settings: Settings, dev: bool) -> dict[str, Any]:
    """The console's sign-in configuration."""
    if dev:
        return {"mode": "dev", "users": DevIssuer.users()}
    if not settings.api_client_id or not settings.api_tenant_id:
        return {
            "mode": "none",
            "message": "browser sign-in is not configured: set FLEET_API_CLIENT_ID and "
            "FLEET_API_TENANT_ID",
        }
    audience = (settings.api_audience or [""])[0]
    return {
        "mode": "entra",
        "clientId": settings.api_client_id,
        "authority": f"{settings.api_authority.rstrip('/')}/{settings.api_tenant_id}",
        "scopes": settings.api_scopes or [f"{audience}/.default"],
    }


def mount_console(app: FastAPI, config: dict[str, Any]) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    @router.get("/console/config.json")
    def console_config() -> dict[str, Any]:
        return config

    app.include_router(router)
    app.mount("/console", StaticFiles(directory=FILES, html=True), name="console")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_app(service: Service, *, dev: DevIssuer | None = None) -> FastAPI:
    app = FastAPI(
        title="fleet",
        version=__version__,
        description="Policy-at-scale GitOps for Azure: sweeps, reports, remediation jobs.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service
    errors.install(app)
    app.include_router(controls_api.router)
    app.include_router(sweeps_api.router)
    app.include_router(jobs_api.router)
    if dev is not None:
        app.include_router(dev.router())

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Viewer) -> dict[str, Any]:
        return app.openapi()

    mount_console(app, service.console)
    authority = _origin(service.settings.api_authority)
    entra = service.console.get("mode") == "entra"
    csp = content_security_policy(
        connect=[authority] if entra else [], frames=[authority] if entra else []
    )
    app.add_middleware(Guard, csp=csp, max_body=service.settings.api_max_body_bytes)
    return app

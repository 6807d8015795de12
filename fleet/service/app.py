"""The ASGI app of ``fleet serve``: routes, error handlers, security headers, the console.

``create_app`` composes it from a ``Service`` (``fleet.service.auth``). The OpenAPI document
is at ``/openapi.json`` for callers with a token (no interactive docs: they would load scripts
from a CDN); ``/healthz`` is the only route that needs none, besides the console's static
files and sign-in configuration.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from fleet import __version__
from fleet.service import console, controls_api, errors, jobs_api, sweeps_api
from fleet.service.auth import Service, Viewer
from fleet.service.devissuer import DevIssuer
from fleet.service.headers import Guard, content_security_policy


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

    console.mount(app, service.console)
    authority = _origin(service.settings.api_authority)
    entra = service.console.get("mode") == "entra"
    csp = content_security_policy(
        connect=[authority] if entra else [], frames=[authority] if entra else []
    )
    app.add_middleware(Guard, csp=csp, max_body=service.settings.api_max_body_bytes)
    return app

"""The web console's files and its sign-in configuration, served by ``fleet serve``.

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

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from fleet.service import devissuer
from fleet.settings import Settings

FILES = Path(__file__).with_name("console")


def sign_in(settings: Settings, dev: bool) -> dict[str, Any]:
    """The console's sign-in configuration."""
    if dev:
        users = [
            {"user": k, "name": v[1], "roles": [r.value for r in v[2]]}
            for k, v in devissuer.USERS.items()
        ]
        return {"mode": "dev", "users": users}
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


def mount(app: FastAPI, config: dict[str, Any]) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/console/")

    @router.get("/console/config.json")
    def console_config() -> dict[str, Any]:
        return config

    app.include_router(router)
    app.mount("/console", StaticFiles(directory=FILES, html=True), name="console")

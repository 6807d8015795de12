"""The command line against a ``fleet serve`` API: ``fleet jobs approve|cancel --server URL``.

Through the API an action is taken under the identity of a bearer token (``FLEET_API_TOKEN``,
e.g. ``az account get-access-token --resource <API app id> --query accessToken -o tsv``), and
the service's rules hold: roles, separation of duties, the audit trail. Errors come back as
the API's ``{"error": {"code", "message"}}`` and end the command with exit 2 (refused) or 3 (the
server cannot be reached).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import requests
import typer

from fleet.cli.common import fail
from fleet.core.errors import EXIT_INVALID, EXIT_UNREACHABLE

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="FLEET_SERVER",
        help="Act through this fleet serve API (https://...) instead of the database.",
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="FLEET_API_TOKEN",
        help="Bearer token for --server (default: FLEET_API_TOKEN).",
        show_default=False,
        show_envvar=True,
    ),
]

TIMEOUT = 30.0


def api_call(server: str, token: str | None, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``/api/v1/<path>`` (its job reference escaped); the answer's JSON."""
    if not token:
        fail("--server needs a token: set FLEET_API_TOKEN (or pass --token)")
    parts = path.split("/")
    url = server.rstrip("/") + "/api/v1/" + "/".join(quote(p, safe="") for p in parts)
    try:
        response = requests.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )
    except requests.RequestException as exc:
        fail(f"cannot reach {server}: {exc.__class__.__name__}", EXIT_UNREACHABLE)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code >= 400:
        error = (answer.get("error") or {}) if isinstance(answer, dict) else {}
        message = error.get("message") or response.reason
        fail(f"{server} refused ({response.status_code}): {message}", EXIT_INVALID)
    return answer if isinstance(answer, dict) else {}

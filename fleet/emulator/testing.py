"""Test helpers: run the emulator for the duration of a ``with`` block, and talk to its admin API.

::

    with running_emulator("fleet.json", retry_after=0, lro_polls=1) as emu:
        client = SourceControlConfigurationClient(cred, sub, base_url=emu.endpoint,
                                                  connection_verify=str(emu.ca_bundle))
        ...
        emu.admin.advance_clock(48 * 3600)
        assert emu.admin.stats()["throttled"]["arm"] == 0

The admin client speaks HTTPS to ``/_emulator/`` like any other client (the server runs on its
own thread and owns its state), so the same helpers work against a ``fleet emulator serve``
started elsewhere: ``AdminClient(endpoint, ca_bundle)``. pytest fixtures live in the tests'
conftest; this module does not import pytest.
"""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from fleet.emulator.server import EmulatorServer, client_ssl_context


class AdminError(RuntimeError):
    """An admin call answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"admin call failed with HTTP {status}: {body}")
        self.status = status
        self.body = body


class AdminClient:
    """The ``/_emulator/`` routes as methods."""

    def __init__(self, endpoint: str, ca_bundle: str | Path, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 443
        self._context = client_ssl_context(ca_bundle)
        self._timeout = timeout

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        """One admin request; returns the decoded JSON body (None for 204)."""
        conn = http.client.HTTPSConnection(
            self._host, self._port, context=self._context, timeout=self._timeout
        )
        try:
            body = orjson.dumps(payload) if payload is not None else None
            headers = {"content-type": "application/json"} if body is not None else {}
            conn.request(method, f"/_emulator/{path.lstrip('/')}", body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        data = orjson.loads(raw) if raw else None
        if response.status >= 400:
            raise AdminError(response.status, data)
        return data

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "snapshot")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "stats")
        return result

    def reset_stats(self) -> None:
        self.call("POST", "stats/reset")

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "requests")["value"]
        return result

    def clear_requests(self) -> None:
        self.call("DELETE", "requests")

    def clock(self) -> datetime:
        return datetime.fromisoformat(self.call("GET", "clock")["now"].replace("Z", "+00:00"))

    def advance_clock(self, seconds: float) -> datetime:
        now = self.call("POST", "clock", {"advanceSeconds": seconds})["now"]
        return datetime.fromisoformat(now.replace("Z", "+00:00"))

    def set_clock(self, moment: datetime | str) -> datetime:
        value = moment if isinstance(moment, str) else moment.isoformat()
        now = self.call("POST", "clock", {"set": value})["now"]
        return datetime.fromisoformat(now.replace("Z", "+00:00"))

    def add_fault(self, **spec: Any) -> str:
        """Install one scripted fault (keys as in docs/emulator.md); returns its id."""
        added: list[dict[str, Any]] = self.call("POST", "faults", spec)["value"]
        return str(added[0]["id"])

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "faults")["value"]
        return result

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def set_catalog(self, catalog: Mapping[str, Any]) -> list[str]:
        """Replace the version catalogue; returns the ids of auto-upgraded extensions."""
        result: list[str] = self.call("PUT", "catalog", dict(catalog))["upgraded"]
        return result

    def publish_release(
        self, version: str, locations: list[str], *, at: str | None = None, **more: str
    ) -> dict[str, Any]:
        """Publish a catalogue release to ``locations`` (now, or ``at``; ``extensionType``,
        ``releaseTrain`` in ``more``); returns the catalogue, its regions and who upgraded."""
        body: dict[str, Any] = {"version": version, "locations": locations, **more}
        if at is not None:
            body["at"] = at
        result: dict[str, Any] = self.call("POST", "catalog/publish", body)
        return result

    def set_failing_sources(self, urls: list[str]) -> None:
        self.call("PUT", "failing-sources", {"failingSources": urls})

    def put_resource(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("PUT", "resources", dict(resource))
        return result

    def set_role(self, principal: str, actions: list[str]) -> None:
        self.call("POST", "roles", {"principal": principal, "actions": actions})

    def clear_roles(self) -> None:
        self.call("DELETE", "roles")

    def reset_throttle(self) -> None:
        self.call("POST", "throttle/reset")

    def vaults(self) -> dict[str, Any]:
        """The emulated Key Vaults (no values) and the data plane's recent requests."""
        result: dict[str, Any] = self.call("GET", "vaults")
        return result

    def add_secret_version(self, vault: str, name: str, value: str, **attributes: Any) -> str:
        """A new current version of a Key Vault secret (a rotation); returns its version id."""
        added = self.call("POST", f"vaults/{vault}/secrets/{name}", {"value": value, **attributes})
        return str(added["version"])

    def set_secret_enabled(self, vault: str, name: str, version: str, enabled: bool) -> None:
        self.call("PATCH", f"vaults/{vault}/secrets/{name}/{version}", {"enabled": enabled})


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    """A started emulator: where it listens, the CA to trust, its admin API and the server."""

    endpoint: str
    ca_bundle: Path
    admin: AdminClient
    server: EmulatorServer

    @property
    def keyvault_url(self) -> str:
        """``FLEET_KEYVAULT_URL`` for this emulator's Key Vaults."""
        return f"{self.endpoint}/vaults/{{vault}}"


@contextmanager
def running_emulator(
    snapshot: Mapping[str, Any] | str | Path, **options: Any
) -> Iterator[RunningEmulator]:
    """Start an emulator on loopback for the ``with`` block (options: ``EmulatorOptions``)."""
    server = EmulatorServer(snapshot, **options)
    endpoint, ca_path = server.start()
    try:
        yield RunningEmulator(endpoint, ca_path, AdminClient(endpoint, ca_path), server)
    finally:
        server.stop()

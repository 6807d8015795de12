"""The emulated Azure Key Vaults: vaults, their secrets and each secret's versions.

A snapshot may carry a ``vaults`` section (docs/emulator.md)::

    "vaults": [{"name": "kv-platform", "secrets": [{"name": "git-token", "versions": [
        {"version": "9a8b…", "value": "…", "created": "2026-11-01T00:00:00Z", "enabled": true}
    ]}]}]

Versions are kept in the order they were created; the last one is the secret's current
version, as in Key Vault, and adding a version (``add_version``: the admin API's rotation)
makes it current. Version ids are 32 hex digits; one the snapshot leaves out is derived from
the vault, the secret and its position, so that a replay gives the same ids. Timestamps come
from the emulated clock.

Values never leave through a dump: like every secret of the snapshot format, a dumped version
keeps its id and attributes without its value (a version loaded without one reads as empty).
This module is state only; the HTTP side of the data plane is ``keyvault.py``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleet.emulator.clock import iso, parse_time

VAULT_NAME = re.compile(r"^[A-Za-z](-?[A-Za-z0-9]){2,23}$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9-]{1,127}$")
VERSION_ID = re.compile(r"^[0-9A-Za-z]{1,64}$")


@dataclass(slots=True)
class Version:
    """One version of a secret."""

    version: str
    value: str
    created: datetime
    updated: datetime
    enabled: bool = True
    content_type: str | None = None

    def attributes(self) -> dict[str, Any]:
        """Key Vault's ``attributes`` object (times in seconds since the epoch)."""
        return {
            "enabled": self.enabled,
            "created": int(self.created.timestamp()),
            "updated": int(self.updated.timestamp()),
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        }

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "created": iso(self.created),
            "enabled": self.enabled,
        }
        if self.content_type is not None:
            out["contentType"] = self.content_type
        return out


@dataclass(slots=True)
class Secret:
    name: str
    versions: list[Version] = field(default_factory=list)

    @property
    def current(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    def find(self, version: str) -> Version | None:
        wanted = version.lower()
        return next((v for v in self.versions if v.version.lower() == wanted), None)


@dataclass(slots=True)
class Vault:
    name: str
    secrets: dict[str, Secret] = field(default_factory=dict)  # by lower-case name


def _derived_id(vault: str, secret: str, index: int) -> str:
    return hashlib.sha256(f"{vault}/{secret}/{index}".lower().encode()).hexdigest()[:32]


class Vaults:
    """Every emulated vault, by lower-case name (Key Vault names are case-insensitive)."""

    def __init__(self, section: Any, now: Callable[[], datetime]) -> None:
        self._now = now
        self._vaults: dict[str, Vault] = {}
        #: The data plane's recent requests (keyvault.py writes them; no values).
        self.requests: deque[dict[str, Any]] = deque(maxlen=1000)
        for item in section or ():
            vault = self._vault(str(item["name"]))
            for s in item.get("secrets") or ():
                secret = self._secret(vault, str(s["name"]))
                for i, v in enumerate(s.get("versions") or ()):
                    created = parse_time(v["created"]) if v.get("created") else now()
                    vid = v.get("version") or _derived_id(vault.name, secret.name, i)
                    secret.versions.append(
                        Version(
                            version=str(vid),
                            value=str(v.get("value") or ""),
                            created=created,
                            updated=created,
                            enabled=bool(v.get("enabled", True)),
                            content_type=v.get("contentType"),
                        )
                    )

    def __bool__(self) -> bool:
        return bool(self._vaults)

    def _vault(self, name: str) -> Vault:
        found = self._vaults.get(name.lower())
        if found is None:
            found = self._vaults[name.lower()] = Vault(name)
        return found

    @staticmethod
    def _secret(vault: Vault, name: str) -> Secret:
        found = vault.secrets.get(name.lower())
        if found is None:
            found = vault.secrets[name.lower()] = Secret(name)
        return found

    def vault(self, name: str) -> Vault | None:
        return self._vaults.get(name.lower())

    def add_version(
        self,
        vault: str,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        enabled: bool = True,
    ) -> Version:
        """A new version of a secret (made current), creating the vault and secret as needed."""
        now = self._now()
        version = Version(uuid.uuid4().hex, value, now, now, enabled, content_type)
        self._secret(self._vault(vault), name).versions.append(version)
        return version

    def set_enabled(self, vault: str, name: str, version: str, enabled: bool) -> Version | None:
        found = self.vault(vault)
        secret = found.secrets.get(name.lower()) if found else None
        v = secret.find(version) if secret else None
        if v is not None:
            v.enabled = enabled
            v.updated = self._now()
        return v

    def dump(self) -> list[dict[str, Any]]:
        """The ``vaults`` section without any value."""
        return [
            {
                "name": vault.name,
                "secrets": [
                    {"name": s.name, "versions": [v.dump() for v in s.versions]}
                    for s in vault.secrets.values()
                ],
            }
            for vault in self._vaults.values()
        ]


def validate(value: Any, issue: Callable[[str, str], None]) -> None:
    """Problems of a snapshot's ``vaults`` section, each reported with its place."""
    if value is None:
        return
    if not isinstance(value, list):
        issue("vaults", "must be a list")
        return
    names: set[str] = set()
    for i, vault in enumerate(value):
        where = f"vaults[{i}]"
        if not isinstance(vault, dict):
            issue(where, "must be an object {name, secrets}")
            continue
        name = vault.get("name")
        if not isinstance(name, str) or not VAULT_NAME.match(name):
            issue(f"{where}.name", "must be a Key Vault name (3-24 letters, digits, '-')")
        elif name.lower() in names:
            issue(f"{where}.name", f"duplicate vault {name!r}")
        else:
            names.add(name.lower())
        for where_s, secret in _items(vault.get("secrets"), f"{where}.secrets", issue):
            if not isinstance(secret.get("name"), str) or not SECRET_NAME.match(secret["name"]):
                issue(f"{where_s}.name", "must be a secret name (1-127 letters, digits, '-')")
            for where_v, version in _items(secret.get("versions"), f"{where_s}.versions", issue):
                _validate_version(version, where_v, issue)


def _items(value: Any, where: str, issue: Callable[[str, str], None]) -> Iterator[tuple[str, Any]]:
    if value is None:
        return
    if not isinstance(value, list):
        issue(where, "must be a list")
        return
    for i, item in enumerate(value):
        if isinstance(item, dict):
            yield f"{where}[{i}]", item
        else:
            issue(f"{where}[{i}]", "must be an object")


def _validate_version(
    version: dict[str, Any], where: str, issue: Callable[[str, str], None]
) -> None:
    vid = version.get("version")
    if vid is not None and (not isinstance(vid, str) or not VERSION_ID.match(vid)):
        issue(f"{where}.version", "must be a version id (letters and digits)")
    if "value" in version and not isinstance(version["value"], str):
        issue(f"{where}.value", "must be a string")
    if "enabled" in version and not isinstance(version["enabled"], bool):
        issue(f"{where}.enabled", "must be true or false")
    if "contentType" in version and not isinstance(version["contentType"], str):
        issue(f"{where}.contentType", "must be a string")
    created = version.get("created")
    if created is not None:
        try:
            parse_time(str(created)).astimezone(UTC)
        except (ValueError, OverflowError):
            issue(f"{where}.created", "must be an ISO timestamp")

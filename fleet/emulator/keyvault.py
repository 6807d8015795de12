"""The Key Vault data plane, served on the emulator's own host under ``/vaults/{vault}``.

A vault's URL is ``https://127.0.0.1:PORT/vaults/{vault}`` (``FLEET_KEYVAULT_URL``'s template
is ``{endpoint}/vaults/{vault}``): ``azure-keyvault-secrets`` accepts a vault URL with a path,
and a path keeps every vault on the one loopback host name the emulator's certificate and the
machine's resolver know (``{vault}.vault.azure.net`` has no loopback twin that resolves
everywhere). Below the prefix the paths and bodies are Key Vault's own::

    GET /vaults/{vault}/secrets                        list secrets (no values)
    GET /vaults/{vault}/secrets/{name}[/{version}]     a secret's value (current version)
    GET /vaults/{vault}/secrets/{name}/versions        list its versions (no values)

Authentication is Key Vault's challenge: a request without a bearer token, or with a token
for another audience (an ARM token), gets 401 with ``WWW-Authenticate: Bearer
authorization="https://login.microsoftonline.com/{tenant}", resource="https://vault.azure.net"``,
and the SDK asks its credential for a token of that scope. The token's ``aud`` must be the
vault resource (``fleet.azure.credentials.EmulatorCredential`` mints one per scope). The
emulator's roles (``/_emulator/roles``) apply to the data actions
(``Microsoft.KeyVault/vaults/secrets/getSecret/action``, ``.../readMetadata/action``): a
principal without them gets 403 ``Forbidden`` / ``ForbiddenByRbac``, as Key Vault's RBAC says.
``error`` faults match these paths with the resource type ``Microsoft.KeyVault/vaults/secrets``.

Secret ids in bodies are ``https://{host}/secrets/{name}/{version}``: the SDK parses an id as
exactly those three segments, so the ``/vaults/{vault}`` prefix cannot be in it. Every request
is kept in a short log (``GET /_emulator/vaults``: method, path, status, principal and the
token's audience, never a value).
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet.emulator.clock import iso
from fleet.emulator.errors import InvalidRequestContent, ResourceNotFound
from fleet.emulator.responses import Components, Reply, json_reply
from fleet.emulator.vaults import Version

PREFIX = "/vaults/"
#: The resource (audience) of Key Vault tokens in the public cloud.
RESOURCE = "https://vault.azure.net"
RESOURCE_TYPE = "Microsoft.KeyVault/vaults/secrets"
GET_ACTION = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
LIST_ACTION = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
#: What azure-keyvault-secrets may send (its ``ApiVersion``).
API_VERSIONS = frozenset(
    {"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"}
)
LATEST_API_VERSION = "2026-04-01"
_PAGE = 25

_SECRET = re.compile(r"^/vaults/(?P<vault>[^/]+)/secrets/(?P<name>[^/]+)(?:/(?P<version>[^/]+))?$")
_SECRETS = re.compile(r"^/vaults/(?P<vault>[^/]+)/secrets$")
_ERROR = frozenset({"error"})


def is_vault_path(path: str) -> bool:
    return path.lower().startswith(PREFIX)


@dataclass(slots=True)
class Caller:
    """What the server read from the bearer token (unverified, like the rest of the emulator)."""

    token: str | None
    principal: str = "anonymous"
    audience: str | None = None
    expires: float | None = None


class KvError(Exception):
    """A Key Vault error answer: ``{"error": {"code", "message", "innererror"?}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        inner: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner
        self.headers = headers or {}

    def reply(self) -> Reply:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        headers = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        return json_reply(self.status, {"error": error}, headers)


@dataclass(slots=True)
class _Request:
    c: Components
    method: str
    path: str
    query: Mapping[str, str]
    caller: Caller
    base_url: str


def serve(
    c: Components,
    method: str,
    path: str,
    query: Mapping[str, str],
    caller: Caller,
    base_url: str,
) -> Reply:
    """One data-plane request (``path`` already normalised)."""
    request = _Request(c, method, path, query, caller, base_url)
    try:
        reply = _serve(request)
    except KvError as exc:
        reply = exc.reply()
    c.backend.vaults.requests.append(
        {
            "time": iso(c.backend.clock.now()),
            "method": method,
            "path": path,
            "status": reply.status,
            "principal": caller.principal,
            "audience": caller.audience,
        }
    )
    c.stats.record(
        method=method,
        path=path,
        resource_type=RESOURCE_TYPE,
        status=reply.status,
        principal=caller.principal,
        body=b"",
        now=iso(c.backend.clock.now()),
        is_write=False,
    )
    return reply


def _serve(r: _Request) -> Reply:
    _authenticate(r)
    version = r.query.get("api-version")
    if version not in API_VERSIONS:
        raise KvError(
            400,
            "BadParameter",
            f"The specified version ({version or 'none'}) is not recognized. Consider using "
            f"the latest supported version ({LATEST_API_VERSION}).",
        )
    if r.method != "GET":
        raise KvError(
            405, "BadParameter", f"The emulator's Key Vault answers GET only, not {r.method}."
        )
    listing = _SECRETS.match(r.path)
    one = _SECRET.match(r.path)
    if listing is None and one is None:
        raise KvError(404, "NotFound", f"No Key Vault operation at {r.path}.")
    vault_name = (listing or one).group("vault")  # type: ignore[union-attr]
    vault = r.c.backend.vaults.vault(vault_name)
    if vault is None:
        # Key Vault itself would not resolve: a vault name nobody created.
        raise KvError(404, "VaultNotFound", f"The vault '{vault_name}' does not exist.")
    if listing is not None:
        _authorize(r, LIST_ACTION, vault_name)
        items = [
            _item(r, s.name, s.current) for s in vault.secrets.values() if s.current is not None
        ]
        return _paged(r, items)
    assert one is not None
    name, version = one.group("name"), one.group("version")
    secret = vault.secrets.get(name.lower())
    if version is not None and version.lower() == "versions":
        _authorize(r, LIST_ACTION, vault_name)
        if secret is None:
            raise _not_found(name, vault_name)
        return _paged(r, [_item(r, secret.name, v) for v in secret.versions])
    _authorize(r, GET_ACTION, vault_name)
    found = None if secret is None else (secret.find(version) if version else secret.current)
    if secret is None or found is None:
        raise _not_found(name if version is None else f"{name}/{version}", vault_name)
    _fault(r)
    if not found.enabled:
        raise KvError(
            403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"
        )
    body: dict[str, Any] = {
        "value": found.value,
        "id": _id(r, secret.name, found),
        "attributes": found.attributes(),
        "tags": {},
    }
    if found.content_type is not None:
        body["contentType"] = found.content_type
    return json_reply(200, body)


def _authenticate(r: _Request) -> None:
    tenant = r.c.backend.list_tenants()[0]["tenantId"]
    challenge = {
        "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{tenant}", '
        f'resource="{RESOURCE}"'
    }
    caller = r.caller
    if not caller.token:
        raise KvError(
            401,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
            None,
            challenge,
        )
    if (caller.audience or "").rstrip("/") != RESOURCE:
        raise KvError(
            401,
            "Unauthorized",
            f"AKV10022: Invalid audience. Expected {RESOURCE}, found: {caller.audience}.",
            None,
            challenge,
        )
    if caller.expires is not None and caller.expires < time.time():
        raise KvError(401, "Unauthorized", "AKV10032: Token expired.", None, challenge)


def _authorize(r: _Request, action: str, vault: str) -> None:
    if not r.c.roles.allowed(r.caller.principal, action):
        raise KvError(
            403,
            "Forbidden",
            "Caller is not authorized to perform action on resource. If role assignments, deny "
            "assignments or role definitions were changed recently, please observe propagation "
            f"time. Caller: oid={r.caller.principal}; Action: '{action}'; Resource: vault "
            f"'{vault}'",
            "ForbiddenByRbac",
        )


def _fault(r: _Request) -> None:
    fault = r.c.faults.take(r.method, r.path, RESOURCE_TYPE, _ERROR)
    if fault is not None:
        r.c.stats.fault("error")
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        raise KvError(fault.status, fault.code, fault.message, None, headers)


def _not_found(what: str, vault: str) -> KvError:
    return KvError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {what} was not found in this key vault ({vault}). If you "
        "recently deleted this secret you may be able to recover it using the correct recovery "
        "command.",
    )


def _host(r: _Request) -> str:
    return r.base_url.rstrip("/")


def _id(r: _Request, name: str, version: Version) -> str:
    return f"{_host(r)}/secrets/{name}/{version.version}"


def _item(r: _Request, name: str, version: Version | None) -> dict[str, Any]:
    """A ``SecretItem``: id and attributes, never the value."""
    assert version is not None
    item: dict[str, Any] = {
        "id": _id(r, name, version),
        "attributes": version.attributes(),
        "tags": {},
    }
    if version.content_type is not None:
        item["contentType"] = version.content_type
    return item


def _paged(r: _Request, items: list[dict[str, Any]]) -> Reply:
    """``{value, nextLink}`` pages of ``maxresults`` (Key Vault's paging; null on the last)."""
    try:
        size = max(1, min(25, int(r.query.get("maxresults") or _PAGE)))
        start = int(r.query.get("$skiptoken") or 0)
    except ValueError:
        raise KvError(400, "BadParameter", "maxresults and $skiptoken must be numbers.") from None
    page = items[start : start + size]
    next_link = None
    if start + size < len(items):
        params = {"api-version": r.query["api-version"], "maxresults": str(size)}
        params["$skiptoken"] = str(start + size)
        next_link = f"{_host(r)}{r.path}?{urllib.parse.urlencode(params)}"
    return json_reply(200, {"value": page, "nextLink": next_link})


# --------------------------------------------------------------------------- admin


def admin(c: Components, method: str, sub: str, payload: Any) -> Reply:
    """``/_emulator/vaults[...]``: list the vaults (no values) and the data-plane request log,
    add a version to a secret (a rotation), enable or disable a version."""
    parts = [urllib.parse.unquote(p) for p in sub.strip("/").split("/")]
    vaults = c.backend.vaults
    if method == "GET" and parts == ["vaults"]:
        return json_reply(200, {"value": vaults.dump(), "requests": list(vaults.requests)})
    if method == "POST" and len(parts) == 4 and parts[2] == "secrets":
        if not isinstance(payload, dict) or not isinstance(payload.get("value"), str):
            raise InvalidRequestContent('Expected {"value": str, "contentType"?, "enabled"?}.')
        content_type = payload.get("contentType")
        enabled = payload.get("enabled", True)
        if (content_type is not None and not isinstance(content_type, str)) or not isinstance(
            enabled, bool
        ):
            raise InvalidRequestContent("'contentType' must be a string, 'enabled' a boolean.")
        version = vaults.add_version(
            parts[1], parts[3], payload["value"], content_type=content_type, enabled=enabled
        )
        return json_reply(201, {"vault": parts[1], "name": parts[3], **version.dump()})
    if method == "PATCH" and len(parts) == 5 and parts[2] == "secrets":
        enabled = payload.get("enabled") if isinstance(payload, dict) else None
        if not isinstance(enabled, bool):
            raise InvalidRequestContent('Expected {"enabled": bool}.')
        found = vaults.set_enabled(parts[1], parts[3], parts[4], enabled)
        if found is None:
            raise ResourceNotFound(f"No version {parts[4]} of secret {parts[3]} in {parts[1]}.")
        return json_reply(200, found.dump())
    raise ResourceNotFound(f"No admin route '{method} /_emulator/{sub}' (see docs/emulator.md).")

"""The read-only properties the resource provider fills in, per resource kind.

What an extension, a flux configuration or a Flux v1 configuration shows while its operation
runs, once it succeeded or failed, and once Flux reconciled it: ``provisioningState``,
``currentVersion``, ``statuses``, ``errorInfo``, ``complianceState``, the Flux object statuses
and the synced commit. The LRO machine (lro.py) decides *when* each step happens; this module
alone decides what the resource then looks like.

Resources are kept in the shape of the newest api-version; ``for_version`` cuts an answer down
to the version it is asked with: members that version does not define are left out (as the
resource provider's model of that version has no place for them), defaults the provider reports
without storing are filled in where the version defines them, and ``null`` is left out where
the version's model does not allow it. An enumeration value is never rewritten: a 2023-05-01
client reading an ``OCIRepository`` configuration sees ``sourceKind: OCIRepository`` (the spec
marks its enums ``modelAsString``, so clients must accept values they do not know).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from fleet.emulator.errors import LroError
from fleet.emulator.rules import REPORTED_DEFAULTS, RULES, drop_path, source_of

#: Members of each Flux object status that are not nullable from 2025-04-01 on (2023-05-01
#: marks them ``x-nullable``), and the versions that say so.
_STATUS_NOT_NULL = ("helmReleaseProperties", "statusConditions")
_STATUS_NOT_NULL_IN = frozenset({"2025-04-01"})


def for_version(kind: str, resource: dict[str, Any], api_version: str) -> dict[str, Any]:
    """``resource`` as the resource provider answers it in ``api_version`` (a copy where it
    differs from the stored resource; the stored resource itself otherwise)."""
    rules = RULES[kind]
    unknown = rules.unknown_to(api_version)
    out = resource
    for path in unknown:
        if out is resource:
            out = dict(resource)
        drop_path(out, path)
    defaults = REPORTED_DEFAULTS.get(kind, {})
    props = out.get("properties")
    if defaults and isinstance(props, dict):
        missing = {
            p.split(".", 1)[1]: v
            for p, v in defaults.items()
            if p not in unknown and p.split(".", 1)[1] not in props
        }
        if missing:
            out = dict(out) if out is resource else out
            out["properties"] = {**props, **missing}
    if kind == "fluxConfigurations" and api_version in _STATUS_NOT_NULL_IN:
        out = _statuses_without_null(out, resource)
    return out


def operation_for_version(kind: str, status: dict[str, Any], api_version: str) -> dict[str, Any]:
    """An operation status as answered in ``api_version``: fluxConfigurations 2025-04-01 has
    its own ``OperationStatusResult``, whose ``error`` is not nullable (left out instead)."""
    not_null = kind == "fluxConfigurations" and api_version in _STATUS_NOT_NULL_IN
    if not_null and "error" in status and status["error"] is None:
        return {k: v for k, v in status.items() if k != "error"}
    return status


def _statuses_without_null(out: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    props = out.get("properties")
    if not isinstance(props, dict):
        return out
    statuses = props.get("statuses")
    if not isinstance(statuses, list) or not any(
        isinstance(s, dict) and any(k in s and s[k] is None for k in _STATUS_NOT_NULL)
        for s in statuses
    ):
        return out
    cleaned = [
        {k: v for k, v in s.items() if not (v is None and k in _STATUS_NOT_NULL)}
        if isinstance(s, dict)
        else s
        for s in statuses
    ]
    out = dict(out) if out is stored else out
    out["properties"] = {**props, "statuses": cleaned}
    return out


def accepted(kind: str, props: dict[str, Any], action: str, status: str) -> None:
    """A write was accepted and its operation started (``status``: Creating, Updating, ...)."""
    if kind == "extensions":
        props["provisioningState"] = status
        if action == "create":
            props.setdefault("currentVersion", None)
        props.setdefault("statuses", [])
        props.setdefault("isSystemExtension", False)
        props.pop("errorInfo", None)
    elif kind == "fluxConfigurations":
        props["provisioningState"] = status
        if action != "delete":
            props["complianceState"] = "Pending"
            props["errorMessage"] = ""
            props.setdefault("statuses", [])
            props.setdefault("repositoryPublicKey", "")
            props.setdefault("sourceSyncedCommitId", None)
            props.setdefault("sourceUpdatedAt", None)
            props.setdefault("statusUpdatedAt", None)
    else:
        props["provisioningState"] = "Deleting" if action == "delete" else "Succeeded"


def extension_installed(props: dict[str, Any], version: str | None) -> None:
    """An extension's operation succeeded with ``version`` (None: the catalogue has no say)."""
    props["currentVersion"] = version or props.get("version") or props.get("currentVersion")
    props["provisioningState"] = "Succeeded"
    props["statuses"] = []
    props.pop("errorInfo", None)


def flux_applied(props: dict[str, Any]) -> None:
    """A flux configuration's operation succeeded: Flux has yet to reconcile it."""
    props["provisioningState"] = "Succeeded"
    props["errorMessage"] = ""
    props["complianceState"] = "Pending"


def failed(kind: str, props: dict[str, Any], error: LroError, now: str) -> None:
    """An operation ended ``Failed`` with ``error``."""
    props["provisioningState"] = "Failed"
    if kind == "extensions":
        props["errorInfo"] = error.to_json()
        props["statuses"] = [
            {
                "code": error.code,
                "displayStatus": "Failed",
                "level": "Error",
                "message": error.message,
                "time": now,
            }
        ]
    elif kind == "fluxConfigurations":
        props["errorMessage"] = error.message
        props["complianceState"] = "Unknown"


def flux_reconciled(name: str, props: dict[str, Any], state: str, now: str) -> None:
    """Flux reconciled a configuration to ``state`` (Compliant, Non-Compliant, Suspended)."""
    props["complianceState"] = state
    props["statuses"] = flux_statuses(name, props, state, now)
    if state != "Suspended":
        props["sourceSyncedCommitId"] = commit_of(props)
        props["sourceUpdatedAt"] = now
    props["statusUpdatedAt"] = now


def scc_installed(props: dict[str, Any], now: str) -> None:
    """A Flux v1 configuration was written (synchronously: its operator reports at once)."""
    props.update(
        {
            "repositoryPublicKey": "",
            "provisioningState": "Succeeded",
            "complianceStatus": {
                "complianceState": "Installed",
                "lastConfigApplied": now,
                "message": "Operator installed.",
                "messageLevel": "Information",
            },
        }
    )


def commit_of(props: Mapping[str, Any]) -> str:
    """The ``{label}/{sha}`` revision Flux syncs: the pinned commit, or a stable stand-in."""
    git = props.get("gitRepository") or {}
    ref = (git.get("repositoryRef") or {}) if isinstance(git, Mapping) else {}
    label = next((str(ref[k]) for k in ("branch", "tag", "semver") if ref.get(k)), "HEAD")
    source = source_of(props)
    url = source.get("url", "") if isinstance(source, Mapping) else ""
    sha = ref.get("commit") or hashlib.sha1(f"{url}@{label}".encode()).hexdigest()
    return f"{label}/{sha}"


def flux_statuses(
    name: str, props: Mapping[str, Any], state: str, now: str
) -> list[dict[str, Any]]:
    """Flux objects' statuses as the fluxconfig-agent reports them."""
    namespace = str(props.get("namespace") or "default")
    source_kind = str(props.get("sourceKind") or "GitRepository")
    failing = state == "Non-Compliant"
    suspended = state == "Suspended"
    source_state = "Suspended" if suspended else state

    def condition(ok: bool, message: str, reason: str) -> list[dict[str, str]]:
        return [
            {
                "lastTransitionTime": now,
                "message": message,
                "reason": reason,
                "status": "True" if ok else "False",
                "type": "Ready",
            }
        ]

    source = source_of(props)
    url = source.get("url", "") if isinstance(source, Mapping) else ""
    statuses: list[dict[str, Any]] = [
        {
            "name": name,
            "namespace": namespace,
            "kind": source_kind,
            "complianceState": source_state,
            "appliedBy": None,
            "helmReleaseProperties": None,
            "statusConditions": condition(
                not failing,
                f"failed to checkout and determine revision: unable to clone '{url}'"
                if failing
                else f"stored artifact for revision '{commit_of(props)}'",
                "GitOperationFailed" if failing else "Succeeded",
            ),
        }
    ]
    for kust_name in props.get("kustomizations") or {}:
        statuses.append(
            {
                "name": f"{name}-{kust_name}",
                "namespace": namespace,
                "kind": "Kustomization",
                "complianceState": source_state,
                "appliedBy": None,
                "helmReleaseProperties": None,
                "statusConditions": condition(
                    not failing,
                    "dependency not ready: source artifact is not available"
                    if failing
                    else f"Applied revision: {commit_of(props)}",
                    "ArtifactFailed" if failing else "ReconciliationSucceeded",
                ),
            }
        )
    return statuses

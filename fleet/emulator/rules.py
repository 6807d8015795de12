"""ARM's body rules for Microsoft.KubernetesConfiguration, per resource kind.

What a PUT or PATCH body may carry and how ARM checks it, the defaults it fills in (the swagger
``default`` values), which properties are read-only, patchable or fixed at creation, and the
facts about a cluster and the version catalogue that decide whether a write can succeed.
``RULES`` holds one ``KindRules`` per kind: the writes (writes.py) look a kind's rules up there
instead of branching on the kind.

The api-versions sit side by side (``KindRules.versions``): resources are stored in the shape of
the newest version, and each served version lists the members it does not define yet (the
members later versions added, as dotted paths from the resource root). A write in an older
version that carries one of them is refused as the resource provider refuses a member its model
for that version lacks (400 ``InvalidRequestContent``, "Could not find member ..."); answers are
cut down to the version asked for by ``shapes.for_version``.

Everything here is a function of its arguments: no state, no clock. A bad body raises
``InvalidRequestContent`` (400) with the property's path in the message, as ARM does.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fleet.core.clusters import is_arm64
from fleet.core.ids import CLUSTER_PROVIDERS, cluster_type_of
from fleet.emulator import errors as e

FLUX_TYPE = "microsoft.flux"
ARM64_MIN_FLUX = (1, 7, 0)
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
#: The property that holds the source of each ``sourceKind``.
SOURCE_KEYS = {
    "GitRepository": "gitRepository",
    "Bucket": "bucket",
    "AzureBlob": "azureBlob",
    "OCIRepository": "ociRepository",
}

#: Members of a flux configuration that 2023-05-01 does not define (added by 2025-04-01).
_FLUX_AFTER_2023 = frozenset({"properties.ociRepository", "properties.gitRepository.provider"})
#: ``autoUpgradeMode`` (2025-03-01), and the value the resource provider reports when unset.
AUTO_UPGRADE_MODES = frozenset({"none", "patch", "compatible"})
#: Defaults the resource provider reports without storing them, per kind: shown in the answers
#: of the versions that define the member (``shapes.for_version``).
REPORTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "extensions": {"properties.autoUpgradeMode": "compatible"},
}
#: Members of an extension that 2023-05-01 does not define (added by 2025-03-01).
_EXTENSION_AFTER_2023 = frozenset(
    {
        "managedBy",
        "properties.autoUpgradeMode",
        "properties.extensionState",
        "properties.additionalDetails",
        "properties.managementDetails",
    }
)


@dataclass(frozen=True, slots=True)
class KindRules:
    """What ARM accepts in the properties of one resource kind."""

    #: Filled in by the resource provider: ignored in a body, kept across writes.
    readonly: frozenset[str]
    #: What a PATCH may change.
    patchable: frozenset[str]
    #: What may only be set at creation (a write may repeat it unchanged).
    create_only: tuple[str, ...]
    #: Check the writable properties (name, creating) and fill the defaults, in place.
    accept: Callable[[dict[str, Any], str, bool], None]
    #: The api-versions served, each with the members (dotted paths from the resource root)
    #: it does not define; the newest defines all.
    versions: Mapping[str, frozenset[str]]

    def writable(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """A body's properties without the read-only ones (a copy: the body is not kept)."""
        return {k: copy.deepcopy(v) for k, v in props.items() if k not in self.readonly}

    def unknown_to(self, api_version: str) -> frozenset[str]:
        """The members ``api_version`` does not define (empty for unknown or newest versions)."""
        return self.versions.get(api_version, frozenset())

    def refuse_unknown(self, body: Any, api_version: str) -> None:
        """Refuse a request body carrying a member ``api_version`` does not define, or a source
        kind that needs one (``OCIRepository`` before 2025-04-01)."""
        unknown = self.unknown_to(api_version)
        if not unknown or not isinstance(body, dict):
            return
        for path in sorted(unknown):
            if _has_path(body, path):
                member = path.rsplit(".", 1)[-1]
                raise e.InvalidRequestContent(
                    "The request content was invalid and could not be deserialized: could not "
                    f"find member '{member}' (path '{path}'): api-version {api_version} does "
                    "not define it."
                )
        props = body.get("properties")
        kind = props.get("sourceKind") if isinstance(props, dict) else None
        key = SOURCE_KEYS.get(kind) if isinstance(kind, str) else None
        if key is not None and f"properties.{key}" in unknown:
            known = ", ".join(k for k, v in SOURCE_KEYS.items() if f"properties.{v}" not in unknown)
            raise e.InvalidRequestContent(
                f"The property 'properties.sourceKind' must be one of {known} in api-version "
                f"{api_version}."
            )


def _has_path(body: Mapping[str, Any], path: str) -> bool:
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def drop_path(resource: dict[str, Any], path: str) -> None:
    """Remove the member at a dotted path, copying the objects on the way (``resource`` is a
    shallow copy of a stored resource, which must stay whole)."""
    if not _has_path(resource, path):
        return
    parts = path.split(".")
    node = resource
    for part in parts[:-1]:
        node[part] = child = dict(node[part])
        node = child
    node.pop(parts[-1], None)


# --------------------------------------------------------------------------- shared checks


def properties_of(body: Any) -> dict[str, Any]:
    """The ``properties`` of a request body (``{}`` when absent)."""
    if not isinstance(body, dict):
        raise e.InvalidRequestContent(
            "The request content was invalid and could not be deserialized."
        )
    props = body.get("properties")
    if props is None:
        return {}
    if not isinstance(props, dict):
        raise e.InvalidRequestContent("The property 'properties' must be an object.")
    return props


def same_value(field_name: str, new: Any, old: Any) -> bool:
    """Whether a create-only property is given unchanged (extension types ignore case)."""
    if field_name == "extensionType":
        return str(new).lower() == str(old).lower()
    return bool(new == old)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``null`` deletes, others replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def source_of(props: Mapping[str, Any]) -> Any:
    """The source object of a flux configuration's ``sourceKind`` (``{}`` when unset)."""
    return props.get(SOURCE_KEYS.get(str(props.get("sourceKind")), "gitRepository")) or {}


# --------------------------------------------------------------------------- extensions


def check_extension(props: dict[str, Any], *, creating: bool) -> None:
    ext_type = props.get("extensionType")
    if creating and (not isinstance(ext_type, str) or not ext_type):
        raise e.InvalidRequestContent("The property 'properties.extensionType' is required.")
    for name in ("autoUpgradeMinorVersion",):
        if name in props and props[name] is not None and not isinstance(props[name], bool):
            raise e.InvalidRequestContent(f"The property 'properties.{name}' must be a boolean.")
    for name in ("releaseTrain", "version"):
        if props.get(name) is not None and not isinstance(props[name], str):
            raise e.InvalidRequestContent(f"The property 'properties.{name}' must be a string.")
    mode = props.get("autoUpgradeMode")
    if mode is not None and str(mode).lower() not in AUTO_UPGRADE_MODES:
        raise e.InvalidRequestContent(
            "The property 'properties.autoUpgradeMode' must be one of none, patch, compatible."
        )
    for name in ("configurationSettings", "configurationProtectedSettings"):
        if props.get(name) is not None and not _is_str_map(props[name]):
            raise e.InvalidRequestContent(
                f"The property 'properties.{name}' must map setting names to string values."
            )
    if props.get("version") and props.get("autoUpgradeMinorVersion", True):
        raise e.InvalidRequestContent("To use 'version', autoUpgradeMinorVersion must be 'false'.")
    scope = props.get("scope")
    if scope is not None:
        if not isinstance(scope, dict) or len([k for k, v in scope.items() if v is not None]) != 1:
            raise e.InvalidRequestContent(
                "The property 'properties.scope' must set exactly one of 'cluster' or 'namespace'."
            )
        if str(ext_type or "").lower() == FLUX_TYPE and scope.get("namespace") is not None:
            raise e.InvalidRequestContent(
                "The microsoft.flux extension can only be installed at cluster scope."
            )


def extension_defaults(props: dict[str, Any]) -> None:
    props.setdefault("autoUpgradeMinorVersion", True)
    if props["autoUpgradeMinorVersion"] is None:
        props["autoUpgradeMinorVersion"] = True
    props.setdefault("releaseTrain", "Stable")
    props.setdefault("version", None)
    if not props.get("scope"):
        # The extension type's default scope: microsoft.flux lives in flux-system, the
        # others the catalogue describes default to kube-system (as the examples show).
        flux = str(props.get("extensionType", "")).lower() == FLUX_TYPE
        props["scope"] = {"cluster": {"releaseNamespace": "flux-system" if flux else "kube-system"}}
    if props.get("configurationSettings") is None:
        props["configurationSettings"] = {}


def _accept_extension(props: dict[str, Any], name: str, creating: bool) -> None:
    check_extension(props, creating=creating)
    extension_defaults(props)


# --------------------------------------------------------------------------- flux configurations


def check_flux(props: dict[str, Any]) -> None:
    def bad(where: str, what: str) -> e.InvalidRequestContent:
        return e.InvalidRequestContent(f"The property 'properties.{where}' {what}.")

    scope = props.get("scope", "cluster")
    if scope not in ("cluster", "namespace"):
        raise bad("scope", "must be 'cluster' or 'namespace'")
    namespace = props.get("namespace", "default")
    if not isinstance(namespace, str) or len(namespace) > 253 or not _NAMESPACE.match(namespace):
        raise bad("namespace", "must be at most 253 lower-case alphanumerics, '-' or '.'")
    kind = props.get("sourceKind", "GitRepository")
    if kind not in SOURCE_KEYS:
        raise bad("sourceKind", f"must be one of {', '.join(SOURCE_KEYS)}")
    if "suspend" in props and not isinstance(props["suspend"], bool):
        raise bad("suspend", "must be a boolean")
    for key in SOURCE_KEYS.values():
        if props.get(key) is not None and not isinstance(props[key], dict):
            raise bad(key, "must be an object")
    source = props.get(SOURCE_KEYS[str(kind)])
    if not isinstance(source, dict) or not isinstance(source.get("url"), str) or not source["url"]:
        raise bad(f"{SOURCE_KEYS[str(kind)]}.url", f"is required when sourceKind is {kind}")
    protected = props.get("configurationProtectedSettings")
    if protected is not None and not _is_str_map(protected):
        raise bad("configurationProtectedSettings", "must map names to strings")
    kustomizations = props.get("kustomizations")
    if kustomizations is None:
        return
    if not isinstance(kustomizations, dict):
        raise bad("kustomizations", "must be an object keyed by kustomization name")
    for name, kust in kustomizations.items():
        where = f"kustomizations.{name}"
        if not isinstance(kust, dict):
            raise bad(where, "must be an object")
        for int_field in ("timeoutInSeconds", "syncIntervalInSeconds", "retryIntervalInSeconds"):
            value = kust.get(int_field)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise bad(f"{where}.{int_field}", "must be an integer")
        for bool_field in ("prune", "force", "wait"):
            if kust.get(bool_field) is not None and not isinstance(kust[bool_field], bool):
                raise bad(f"{where}.{bool_field}", "must be a boolean")
        if kust.get("path") is not None and not isinstance(kust["path"], str):
            raise bad(f"{where}.path", "must be a string")
        # Names are not checked against the other kustomizations: Azure accepts a dangling
        # dependency and Flux reports the dependent as DependencyNotReady.
        depends = kust.get("dependsOn")
        if depends is not None and (
            not isinstance(depends, list) or not all(isinstance(d, str) for d in depends)
        ):
            raise bad(f"{where}.dependsOn", "must be a list of kustomization names")


def flux_defaults(props: dict[str, Any]) -> None:
    """Fill the defaults ARM fills (swagger ``default`` values of 2023-05-01 and 2025-04-01)."""
    props.setdefault("scope", "cluster")
    props.setdefault("namespace", "default")
    props.setdefault("sourceKind", "GitRepository")
    props.setdefault("suspend", False)
    git = _source_defaults(props.get("gitRepository"))
    ref = git.get("repositoryRef") if git else None
    if isinstance(ref, dict):
        for k in ("branch", "tag", "semver", "commit"):
            ref.setdefault(k, None)
    _source_defaults(props.get("bucket"), insecure=True)
    _source_defaults(props.get("ociRepository"), insecure=False, useWorkloadIdentity=False)
    blob = _source_defaults(props.get("azureBlob"))
    principal = blob.get("servicePrincipal") if blob else None
    if isinstance(principal, dict):
        principal.setdefault("clientCertificateSendChain", False)
    kustomizations = props.get("kustomizations")
    if isinstance(kustomizations, dict):
        for name, kust in kustomizations.items():
            if not isinstance(kust, dict):
                continue
            kust["name"] = name
            kust.setdefault("path", "")
            kust.setdefault("timeoutInSeconds", 600)
            kust.setdefault("syncIntervalInSeconds", 600)
            kust.setdefault("prune", False)
            kust.setdefault("force", False)
            kust.setdefault("wait", True)


def _source_defaults(source: Any, **first: Any) -> dict[str, Any] | None:
    """Fill a source's defaults (``first`` ahead of the intervals); None if it is no object."""
    if not isinstance(source, dict):
        return None
    for key, value in first.items():
        source.setdefault(key, value)
    source.setdefault("timeoutInSeconds", 600)
    source.setdefault("syncIntervalInSeconds", 600)
    return source


def _accept_flux(props: dict[str, Any], name: str, creating: bool) -> None:
    check_flux(props)
    flux_defaults(props)


# --------------------------------------------------------------------------- Flux v1


def _accept_scc(props: dict[str, Any], name: str, creating: bool) -> None:
    if not isinstance(props.get("repositoryUrl"), str) or not props["repositoryUrl"]:
        raise e.InvalidRequestContent("The property 'properties.repositoryUrl' is required.")
    protected = props.get("configurationProtectedSettings")
    if protected is not None and not _is_str_map(protected):
        raise e.InvalidRequestContent(
            "The property 'properties.configurationProtectedSettings' must map names to strings."
        )
    props.setdefault("operatorNamespace", "default")
    props.setdefault("operatorInstanceName", name)
    props.setdefault("operatorType", "Flux")
    props.setdefault("operatorScope", "cluster")
    props.setdefault("enableHelmOperator", False)


RULES: dict[str, KindRules] = {
    "extensions": KindRules(
        readonly=frozenset(
            {
                "currentVersion",
                "provisioningState",
                "statuses",
                "errorInfo",
                "customLocationSettings",
                "packageUri",
                "isSystemExtension",
                "extensionState",
                "additionalDetails",
                "managementDetails",
            }
        ),
        patchable=frozenset(
            {
                "autoUpgradeMinorVersion",
                "releaseTrain",
                "version",
                "autoUpgradeMode",
                "configurationSettings",
                "configurationProtectedSettings",
            }
        ),
        create_only=("extensionType", "scope"),
        accept=_accept_extension,
        versions={"2023-05-01": _EXTENSION_AFTER_2023, "2025-03-01": frozenset()},
    ),
    "fluxConfigurations": KindRules(
        readonly=frozenset(
            {
                "statuses",
                "repositoryPublicKey",
                "sourceSyncedCommitId",
                "sourceUpdatedAt",
                "statusUpdatedAt",
                "complianceState",
                "provisioningState",
                "errorMessage",
            }
        ),
        patchable=frozenset(
            {
                "sourceKind",
                "suspend",
                "gitRepository",
                "bucket",
                "azureBlob",
                "ociRepository",
                "kustomizations",
                "configurationProtectedSettings",
            }
        ),
        create_only=("scope", "namespace"),
        accept=_accept_flux,
        versions={"2023-05-01": _FLUX_AFTER_2023, "2025-04-01": frozenset()},
    ),
    # Flux v1 takes no PATCH (writes.py answers MethodNotAllowed before the rules apply).
    "sourceControlConfigurations": KindRules(
        readonly=frozenset({"repositoryPublicKey", "provisioningState", "complianceStatus"}),
        patchable=frozenset(),
        create_only=(),
        accept=_accept_scc,
        versions={"2023-05-01": frozenset()},
    ),
}


# --------------------------------------------------------------------------- versions


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Sort key of ``1.17.3`` / ``1.18.0-preview.1``: a pre-release sorts below its release."""
    main, _, pre = version.partition("-")
    nums = tuple(int(p) if p.isdigit() else 0 for p in main.split("."))
    return nums, 0 if pre else 1, pre


def target_version(
    trains: Mapping[str, list[str]] | None, props: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """(version to install, problem) from an extension type's trains in the catalogue (keyed
    by lower-cased train; None: a type the catalogue does not describe): the pinned version,
    or the newest of the release train."""
    ext_type = str(props.get("extensionType", ""))
    pinned = props.get("version")
    if not props.get("autoUpgradeMinorVersion", True) and pinned:
        if trains is not None and not any(pinned in vs for vs in trains.values()):
            return None, f"Version '{pinned}' of extension type '{ext_type}' is not available."
        return str(pinned), None
    if trains is None:
        return None, None  # nothing to check
    train = str(props.get("releaseTrain") or "Stable")
    versions = trains.get(train.lower())
    if not versions:
        return None, f"Release train '{train}' of extension type '{ext_type}' was not found."
    return max(versions, key=version_key), None


# --------------------------------------------------------------------------- cluster facts


def power_stopped(cluster: Mapping[str, Any]) -> bool:
    """Whether the cluster's ``powerState`` says ``Stopped``."""
    props = cluster.get("properties") or {}
    power = props.get("powerState") if isinstance(props, Mapping) else None
    return isinstance(power, Mapping) and str(power.get("code", "")).lower() == "stopped"


def aks_stopped(cluster: Mapping[str, Any]) -> bool:
    """A stopped AKS cluster (which refuses extension and flux writes)."""
    managed = CLUSTER_PROVIDERS["managedClusters"].lower()
    return str(cluster.get("type", "")).lower() == managed and power_stopped(cluster)


def disconnected(cluster: Mapping[str, Any]) -> bool:
    """An Arc cluster that is not ``Connected`` (its writes wait for it)."""
    if str(cluster.get("type", "")).lower() != CLUSTER_PROVIDERS["connectedClusters"].lower():
        return False
    status = (cluster.get("properties") or {}).get("connectivityStatus")
    return status is not None and str(status).lower() != "connected"


def arm64(cluster: Mapping[str, Any]) -> bool:
    ctype = cluster_type_of(str(cluster.get("type", "")))
    if ctype is None:
        return False
    props = cluster.get("properties") or {}
    tags = cluster.get("tags") or {}
    return is_arm64(ctype, props, tags)

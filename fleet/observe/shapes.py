"""What in an observation is new to fleet: enum values and properties it does not know.

Azure adds enum values (``sourceKind: OCIRepository``, a new ``provisioningState``) and
properties (``extensionState``, ``managementDetails``...) without notice, and a cluster must never
become unjudgeable because of them (issue 13, item 5). ``unrecognised(observed)`` lists them as
notes, each with the resource it was seen on; evaluation turns each into an
``UNRECOGNISED_SHAPE`` finding of severity ``info`` (it never changes a state) and judges
everything it knows as usual. Damage, as opposed to novelty (not an object, no ``id``, a
number where a string belongs), is ``fleet.observe.wellformed``'s business.

The known values and properties are those of the newest API versions fleet speaks
(fluxConfigurations 2025-04-01, extensions 2025-03-01, ``tests/arm-spec``), which include
everything of 2023-05-01. Only ``properties`` and below are looked at: the envelope
(``location``, ``tags``, ``systemData``...) differs between ARM and Resource Graph rows and
says nothing about what fleet judges. Enum values compare without case, as ARM does. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from fleet.core.diffing import MAPPING as _MAP
from fleet.observe.observed import ObservedCluster

#: ``ProvisioningState`` of the KubernetesConfiguration resources, and ARM's generic
#: ``Accepted``/``Running`` that the planner also knows as "in progress".
PROVISIONING_STATES = frozenset(
    {"succeeded", "failed", "canceled", "creating", "updating", "deleting", "accepted", "running"}
)
#: ``FluxComplianceState``.
COMPLIANCE_STATES = frozenset({"compliant", "non-compliant", "pending", "suspended", "unknown"})
#: ``SourceKindType`` (2025-04-01 adds ``OCIRepository``).
SOURCE_KINDS = frozenset({"gitrepository", "bucket", "azureblob", "ocirepository"})
#: ``ScopeType`` of a flux configuration.
FLUX_SCOPES = frozenset({"cluster", "namespace"})
#: ``ProviderType`` of a Git source (2025-04-01).
GIT_PROVIDERS = frozenset({"azure", "github", "generic"})
#: ``OperationType`` of an OCI layer selector (2025-04-01).
LAYER_OPERATIONS = frozenset({"extract", "copy"})
#: AKS ``powerState.code``.
POWER_STATES = frozenset({"running", "stopped"})
#: Arc ``connectivityStatus``.
CONNECTIVITY_STATES = frozenset(
    {"connecting", "connected", "offline", "expired", "agentnotinstalled"}
)

_EXTENSION_PROPS = frozenset(
    {
        "extensionType",
        "autoUpgradeMode",
        "autoUpgradeMinorVersion",
        "releaseTrain",
        "version",
        "scope",
        "configurationSettings",
        "configurationProtectedSettings",
        "currentVersion",
        "provisioningState",
        "statuses",
        "errorInfo",
        "customLocationSettings",
        "packageUri",
        "aksAssignedIdentity",
        "isSystemExtension",
        "managementDetails",
        "additionalDetails",
        "extensionState",
    }
)
_FLUX_PROPS = frozenset(
    {
        "scope",
        "namespace",
        "sourceKind",
        "suspend",
        "gitRepository",
        "bucket",
        "azureBlob",
        "ociRepository",
        "kustomizations",
        "configurationProtectedSettings",
        "statuses",
        "repositoryPublicKey",
        "sourceSyncedCommitId",
        "sourceUpdatedAt",
        "statusUpdatedAt",
        "waitForReconciliation",
        "reconciliationWaitDuration",
        "complianceState",
        "provisioningState",
        "errorMessage",
    }
)
_INTERVALS = frozenset({"url", "timeoutInSeconds", "syncIntervalInSeconds", "localAuthRef"})
#: Known properties of each nested object of a flux configuration, by JSON path below
#: ``properties`` (``*`` is any kustomization name).
_NESTED: dict[tuple[str, ...], frozenset[str]] = {
    ("gitRepository",): _INTERVALS
    | {"repositoryRef", "sshKnownHosts", "httpsUser", "httpsCACert", "provider"},
    ("gitRepository", "repositoryRef"): frozenset({"branch", "tag", "semver", "commit"}),
    ("bucket",): _INTERVALS | {"bucketName", "insecure", "accessKey"},
    ("azureBlob",): _INTERVALS
    | {"containerName", "servicePrincipal", "accountKey", "sasToken", "managedIdentity"},
    ("azureBlob", "servicePrincipal"): frozenset(
        {
            "clientId",
            "tenantId",
            "clientSecret",
            "clientCertificate",
            "clientCertificatePassword",
            "clientCertificateSendChain",
        }
    ),
    ("azureBlob", "managedIdentity"): frozenset({"clientId"}),
    ("ociRepository",): _INTERVALS
    | {
        "repositoryRef",
        "layerSelector",
        "verify",
        "insecure",
        "useWorkloadIdentity",
        "serviceAccountName",
        "tlsConfig",
    },
    ("ociRepository", "repositoryRef"): frozenset({"tag", "semver", "digest"}),
    ("ociRepository", "layerSelector"): frozenset({"mediaType", "operation"}),
    ("ociRepository", "verify"): frozenset({"provider", "verificationConfig", "matchOidcIdentity"}),
    ("ociRepository", "tlsConfig"): frozenset({"clientCertificate", "privateKey", "caCertificate"}),
    ("kustomizations", "*"): frozenset(
        {
            "name",
            "path",
            "dependsOn",
            "timeoutInSeconds",
            "syncIntervalInSeconds",
            "retryIntervalInSeconds",
            "prune",
            "force",
            "wait",
            "postBuild",
        }
    ),
    ("kustomizations", "*", "postBuild"): frozenset({"substitute", "substituteFrom"}),
}
_EXTENSION_NESTED: dict[tuple[str, ...], frozenset[str]] = {
    ("scope",): frozenset({"cluster", "namespace"}),
    ("scope", "cluster"): frozenset({"releaseNamespace"}),
    ("scope", "namespace"): frozenset({"targetNamespace"}),
}
_FLUX_ENUMS: dict[tuple[str, ...], frozenset[str]] = {
    ("provisioningState",): PROVISIONING_STATES,
    ("complianceState",): COMPLIANCE_STATES,
    ("sourceKind",): SOURCE_KINDS,
    ("scope",): FLUX_SCOPES,
    ("gitRepository", "provider"): GIT_PROVIDERS,
    ("ociRepository", "layerSelector", "operation"): LAYER_OPERATIONS,
}
#: Notes kept per cluster: enough to see what is new without flooding a report.
MAX_NOTES = 5


def _value(where: str, value: Any, known: frozenset[str]) -> str | None:
    if isinstance(value, str) and value.lower() not in known:
        return f"{where} has the value {value[:40]!r}, which fleet does not know"
    return None


def _extra(where: str, body: Any, known: frozenset[str]) -> Iterator[str]:
    if isinstance(body, _MAP):
        for key in sorted(k for k in body if isinstance(k, str) and k not in known):
            yield f"{where} has the property {key[:60]!r}, which fleet does not know"


def _at(props: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every object at ``path`` (``*`` expands map entries)."""
    items: list[tuple[str, Any]] = [("properties", props)]
    for part in path:
        nxt: list[tuple[str, Any]] = []
        for where, body in items:
            if not isinstance(body, _MAP):
                continue
            if part == "*":
                nxt += [(f"{where}.{k}", v) for k, v in body.items()]
            elif part in body:
                nxt.append((f"{where}.{part}", body[part]))
        items = nxt
    yield from items


def _flux(props: Mapping[str, Any]) -> Iterator[str]:
    yield from _extra("properties", props, _FLUX_PROPS)
    for path, known in _NESTED.items():
        for where, body in _at(props, path):
            yield from _extra(where, body, known)
    for path, values in _FLUX_ENUMS.items():
        for where, value in _at(props, path):
            note = _value(where, value, values)
            if note:
                yield note


def _extension(props: Mapping[str, Any]) -> Iterator[str]:
    yield from _extra("properties", props, _EXTENSION_PROPS)
    for path, known in _EXTENSION_NESTED.items():
        for where, body in _at(props, path):
            yield from _extra(where, body, known)
    state = props.get("provisioningState")
    note = _value("properties.provisioningState", state, PROVISIONING_STATES)
    if note:
        yield note


def unrecognised(observed: ObservedCluster) -> list[tuple[str, str]]:
    """(resource id, what is new) for each unknown enum value or property, at most
    ``MAX_NOTES`` plus one line saying how many more. Assumes a well-formed observation."""
    facts = observed.facts
    notes: list[tuple[str, str]] = []
    if facts.cluster_type == "managedClusters":
        note = _value("powerState.code", facts.power_state, POWER_STATES)
    else:
        note = _value("connectivityStatus", facts.connectivity_status, CONNECTIVITY_STATES)
    if note:
        notes.append((facts.id, f"the cluster's {note}"))
    for children, check in (
        (observed.extensions, _extension),
        (observed.flux_configurations, _flux),
    ):
        for child in children:
            if not isinstance(child, _MAP) or not isinstance(child.get("properties"), _MAP):
                continue
            rid = str(child.get("id") or facts.id)
            notes += [(rid, text) for text in check(child["properties"])]
    for child in observed.source_control_configurations:
        props = child.get("properties") if isinstance(child, _MAP) else None
        if isinstance(props, _MAP):
            note = _value(
                "properties.provisioningState", props.get("provisioningState"), PROVISIONING_STATES
            )
            if note:
                notes.append((str(child.get("id") or facts.id), note))
    if len(notes) > MAX_NOTES:
        more = len(notes) - MAX_NOTES
        notes = [*notes[:MAX_NOTES], (facts.id, f"and {more} more unrecognised values/properties")]
    return notes

"""The Azure RBAC actions fleet uses, and the custom role definitions built from them.

These lists are the least privilege fleet needs, kept next to the code that makes the calls:
an audit (sweep, plan, report, snapshot) only reads; a remediation also writes and deletes
Microsoft.KubernetesConfiguration resources and reads the status of its long-running
operations. Tests run an audit sweep under exactly ``READ_ACTIONS`` (the emulator enforces a
role per token), so an action fleet starts using without listing it here fails a test.
"""

from __future__ import annotations

from typing import Any, Literal

#: Everything an audit needs.
READ_ACTIONS: tuple[str, ...] = (
    "Microsoft.Resources/subscriptions/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/resources/read",
    # registrationState of Microsoft.KubernetesConfiguration (azure.inventory.registration_states)
    "Microsoft.Resources/subscriptions/providers/read",
    "Microsoft.ContainerService/managedClusters/read",
    # AKS planned maintenance, for policies with respectAksMaintenance (fleet.azure.maintenance)
    "Microsoft.ContainerService/managedClusters/maintenanceConfigurations/read",
    "Microsoft.Kubernetes/connectedClusters/read",
    "Microsoft.KubernetesConfiguration/extensions/read",
    "Microsoft.KubernetesConfiguration/fluxConfigurations/read",
    "Microsoft.KubernetesConfiguration/sourceControlConfigurations/read",
    "Microsoft.KubernetesConfiguration/extensionTypes/versions/read",
    "Microsoft.ResourceGraph/resources/read",
)

#: What remediation adds.
WRITE_ACTIONS: tuple[str, ...] = (
    "Microsoft.KubernetesConfiguration/extensions/write",
    "Microsoft.KubernetesConfiguration/extensions/delete",
    "Microsoft.KubernetesConfiguration/extensions/operations/read",
    "Microsoft.KubernetesConfiguration/fluxConfigurations/write",
    "Microsoft.KubernetesConfiguration/fluxConfigurations/delete",
    "Microsoft.KubernetesConfiguration/fluxConfigurations/operations/read",
    "Microsoft.KubernetesConfiguration/sourceControlConfigurations/delete",
)

Mode = Literal["audit", "remediate"]


def actions(mode: Mode) -> tuple[str, ...]:
    return READ_ACTIONS if mode == "audit" else READ_ACTIONS + WRITE_ACTIONS


def role_definition(mode: Mode, scopes: list[str], *, name: str | None = None) -> dict[str, Any]:
    """An Azure custom role (the JSON ``az role definition create --role-definition`` takes)."""
    title = name or ("fleet GitOps auditor" if mode == "audit" else "fleet GitOps remediator")
    if mode == "audit":
        what = "Read AKS and Arc clusters, their Flux extension and configurations (fleet audits)."
    else:
        what = (
            "fleet audits plus remediation: create, update and delete the microsoft.flux "
            "extension, Flux v2 configurations and (for migration) Flux v1 configurations."
        )
    return {
        "Name": title,
        "IsCustom": True,
        "Description": what,
        "Actions": list(actions(mode)),
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": scopes,
    }

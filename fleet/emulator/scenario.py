"""The seed scenario (docs/scenario.md) restated as data for the fleet generator.

The emulator may import nothing from fleet but ``fleet.core``, so it cannot ask
``fleet.policy`` what the example policies in ``policies/`` target and declare. This module
says it again, as plain data and two small functions. docs/scenario.md is the source of truth:
when it changes, this module changes in the same commit (``tests/emulator/test_generate.py``
parses the flux configuration bodies out of docs/scenario.md and fails when they disagree).
"""

from __future__ import annotations

from typing import Any, Final

from fleet.core.ids import ClusterType

# --- extension versions -------------------------------------------------------------------

#: The ``microsoft.flux`` catalogue, newest first (docs/scenario.md "Extension version catalogue").
STABLE_VERSIONS: Final = (
    "1.17.3", "1.17.2", "1.16.12", "1.16.3", "1.15.2", "1.15.1", "1.14.4", "1.13.3", "1.12.1",
    "1.11.5", "1.10.1", "1.9.1", "1.8.2", "1.7.6", "1.7.5", "1.7.0", "1.6.3", "1.6.1",
)  # fmt: skip
PREVIEW_VERSIONS: Final = ("1.18.0-preview.1", "1.17.3")

#: ``platform-baseline`` allows N-2; ``flux-version-audit`` holds ``env: prod`` to N-1.
VERSION_WINDOW: Final = 2
PROD_VERSION_WINDOW: Final = 1

#: The version the two version defects leave the extension stuck on.
OUT_OF_WINDOW_VERSION: Final = "1.15.2"
ARM64_OLD_VERSION: Final = "1.6.3"

# --- the extension every policy-targeted cluster carries (platform-baseline) ---------------

EXTENSION_NAME: Final = "flux"
EXTENSION_TYPE: Final = "microsoft.flux"
EXTENSION_NAMESPACE: Final = "flux-system"
EXTENSION_RELEASE_TRAIN: Final = "Stable"
EXTENSION_SETTINGS: Final[dict[str, str]] = {"multiTenancy.enforce": "true"}

# --- flux configuration bodies (policy fields only; ARM fills the rest) --------------------

CLUSTER_CONFIG: Final = "cluster-config"
TEAM_ALPHA: Final = "team-alpha"
EDGE_BASELINE: Final = "edge-baseline"

#: Policy bodies, in the order the policies are listed in docs/scenario.md. "The first declared
#: configuration" of a cluster (the one a flux configuration defect changes) is the first
#: of these that targets it.
FLUX_CONFIGS: Final[dict[str, dict[str, Any]]] = {
    CLUSTER_CONFIG: {
        "scope": "cluster",
        "namespace": "cluster-config",
        "sourceKind": "GitRepository",
        "gitRepository": {
            "url": "https://github.com/fluxcd/flux2-kustomize-helm-example",
            "repositoryRef": {"branch": "main"},
            "syncIntervalInSeconds": 600,
        },
        "kustomizations": {
            "infra": {"path": "./infrastructure", "prune": True},
            "apps": {"path": "./apps/staging", "prune": True, "dependsOn": ["infra"]},
        },
    },
    TEAM_ALPHA: {
        "scope": "namespace",
        "namespace": "team-alpha",
        "gitRepository": {
            "url": "https://github.com/fleet-examples/team-alpha-apps",
            "repositoryRef": {"branch": "main"},
        },
        "kustomizations": {"apps": {"path": "./deploy", "prune": True}},
    },
    EDGE_BASELINE: {
        "scope": "cluster",
        "namespace": "edge-system",
        "gitRepository": {
            "url": "https://github.com/fleet-examples/edge-baseline",
            "repositoryRef": {"branch": "main"},
            "syncIntervalInSeconds": 300,
        },
        "kustomizations": {"base": {"path": "./base", "prune": True}},
    },
}

#: The flux configuration no policy declares (the ``unmanaged_config`` defect).
UNMANAGED_CONFIG: Final = "legacy-apps"
UNMANAGED_BODY: Final[dict[str, Any]] = {
    "scope": "cluster",
    "namespace": "legacy-apps",
    "sourceKind": "GitRepository",
    "gitRepository": {
        "url": "https://github.com/contoso/legacy-apps",
        "repositoryRef": {"branch": "release"},
    },
    "kustomizations": {"apps": {"path": "./clusters/production", "prune": False}},
}

#: The kustomization the ``extra_kustomization`` defect adds.
DEBUG_KUSTOMIZATION: Final = "debug"

#: The Flux v1 configuration of the ``flux_v1`` defect.
FLUX_V1_NAME: Final = "legacy-v1"

# --- resource groups -------------------------------------------------------------------------

#: Resource group families: (name prefix, env tag of the clusters, locations, Arc only).
#: ``rg-edge-*`` groups carry ``prod`` or ``staging``; the generator picks one per group.
RG_FAMILIES: Final[dict[str, tuple[str, tuple[str, ...], tuple[str, ...], bool]]] = {
    "prod": ("rg-prod", ("prod",), ("westeurope", "northeurope", "eastus", "westus2"), False),
    "stg": ("rg-stg", ("staging",), ("westeurope", "eastus"), False),
    "dev": ("rg-dev", ("dev",), ("westeurope",), False),
    "edge": (
        "rg-edge",
        ("prod", "staging"),
        ("westeurope", "northeurope", "eastus", "westus2"),
        True,
    ),
}
#: Short region codes used in resource group names (``rg-prod-weu-1``).
REGION_CODES: Final[dict[str, str]] = {
    "westeurope": "weu",
    "northeurope": "neu",
    "eastus": "eus",
    "westus2": "wus2",
}
#: Families whose clusters ``cluster-config`` targets (``resourceGroups: [rg-prod-*, ...]``).
CLUSTER_CONFIG_FAMILIES: Final = frozenset({"prod", "stg", "edge"})

SUBSCRIPTION_NAMES: Final = ("prod-eu", "prod-us", "staging", "dev", "sandbox")


def subscription_id(i: int) -> str:
    """Id of the i-th subscription (1-based): ``00000000-0000-0000-0000-{i:012d}``."""
    return f"00000000-0000-0000-0000-{i:012d}"


def subscription_name(i: int) -> str:
    """``prod-eu, prod-us, staging, dev, sandbox``, then ``prod-eu-2``, ... (1-based i)."""
    base = SUBSCRIPTION_NAMES[(i - 1) % len(SUBSCRIPTION_NAMES)]
    lap = (i - 1) // len(SUBSCRIPTION_NAMES)
    return base if lap == 0 else f"{base}-{lap + 1}"


# --- targeting ---------------------------------------------------------------------------------


def declared_flux_configs(
    cluster_type: ClusterType, resource_group: str, tags: dict[str, str]
) -> list[str]:
    """Names of the flux configurations the example policies declare for a cluster, in order.

    - ``cluster-config`` targets ``resourceGroups: [rg-prod-*, rg-stg-*, rg-edge-*]``;
    - ``team-alpha`` targets ``tags: {team: alpha}`` excluding ``env: dev``;
    - ``arc-edge`` (configuration ``edge-baseline``) targets every ``connectedClusters``.
    """
    names = []
    if resource_group.startswith(("rg-prod-", "rg-stg-", "rg-edge-")):
        names.append(CLUSTER_CONFIG)
    if tags.get("team") == "alpha" and tags.get("env") != "dev":
        names.append(TEAM_ALPHA)
    if cluster_type == "connectedClusters":
        names.append(EDGE_BASELINE)
    return names


def version_window(tags: dict[str, str]) -> int:
    """The tightest version window of the policies targeting a cluster (audit counts too)."""
    return PROD_VERSION_WINDOW if tags.get("env") == "prod" else VERSION_WINDOW

"""Rendering of a generated cluster's KubernetesConfiguration children: the microsoft.flux
extension, flux configurations and Flux v1 sourceControlConfigurations, shaped exactly as ARM
2023-05-01 returns them (see the spec examples ``GetExtension.json`` and
``GetFluxConfiguration.json``), with the defect of the cluster's kind where it applies.

A cluster of kind ``unmanaged_config`` carries, besides ``legacy-apps``, the source shapes of
API 2025-04-01 that no policy names (``NEW_SHAPES``): an OCI artifact, a Git repository with
``provider: Azure``, and two S3 buckets, one created as the Azure CLI creates it
(``insecure: false``) and one whose body left ``insecure`` out (ARM's default, true). None of
them changes the cluster's verdict (compliant with ``FLUX_CONFIG_UNMANAGED`` warnings), and
every one must be read alike by ARM and Resource Graph (tests/graph/test_new_shapes.py).
"""

from __future__ import annotations

import copy
from random import Random

from fleet.core.ids import EXTENSIONS, FLUX_CONFIGURATIONS, SOURCE_CONTROL_CONFIGURATIONS, child_id
from fleet.emulator import scenario as sc
from fleet.emulator.generate_clusters import RenderContext, random_uuid
from fleet.emulator.generate_plan import Plan
from fleet.emulator.generate_tables import (
    ARM64_OLD_VERSION,
    BRANCH_DRIFT,
    COMPLIANT,
    DAY,
    DEPENDS_ON_DRIFT,
    EXTENSION_DRIFT,
    EXTENSION_FAILED,
    EXTRA_KUSTOMIZATION,
    FLUX_CONFIG_FAILED,
    FLUX_CONFIG_NONCOMPLIANT,
    MANAGED,
    USERS,
    VERSION_CUM,
    VERSION_OUT_OF_WINDOW,
    Json,
)


def extension(ctx: RenderContext, plan: Plan, cluster_id: str, installed: int) -> Json:
    rng = ctx.rng
    kind = plan.kind
    if kind == VERSION_OUT_OF_WINDOW:
        version = sc.OUT_OF_WINDOW_VERSION
    elif kind == ARM64_OLD_VERSION:
        version = sc.ARM64_OLD_VERSION
    else:
        # Auto-upgrade rolls a release out over days, so a compliant fleet is a mix of the
        # newest version and the ones just before it, within each cluster's window.
        window = sc.version_window(plan.tags)
        allowed = sc.STABLE_VERSIONS[: window + 1]
        version = rng.choices(allowed, cum_weights=VERSION_CUM[: len(allowed)])[0]
    settings = dict(sc.EXTENSION_SETTINGS)
    r = rng.random()
    # Ungoverned settings some teams add: a policy that does not name them ignores them.
    if r < 0.08:
        settings["image-automation-controller.enabled"] = "true"
        settings["image-reflector-controller.enabled"] = "true"
    elif r < 0.14 and plan.cluster_type == MANAGED:
        settings["useKubeletIdentity"] = "true"
    props: Json = {
        "extensionType": sc.EXTENSION_TYPE,
        "autoUpgradeMinorVersion": True,
        "releaseTrain": "Preview" if kind == EXTENSION_DRIFT else sc.EXTENSION_RELEASE_TRAIN,
        "version": None,
        "scope": {"cluster": {"releaseNamespace": sc.EXTENSION_NAMESPACE}},
        "configurationSettings": settings,
        "currentVersion": version,
        "provisioningState": "Succeeded",
        "statuses": [],
        "packageUri": None,
        "isSystemExtension": False,
    }
    if kind == EXTENSION_FAILED:
        props["provisioningState"] = "Failed"
        message = (
            "Helm upgrade failed: context deadline exceeded: timed out waiting for "
            "deployment flux-system/fluxconfig-agent to become ready"
        )
        props["statuses"] = [
            {
                "code": "InstallationFailed",
                "displayStatus": "Failed",
                "level": "Error",
                "message": message,
                "time": ctx.clock.ago(plan.silent_for + rng.randrange(600, 3 * DAY)),
            }
        ]
        props["errorInfo"] = {"code": "ExtensionOperationFailed", "message": message}
    resource: Json = {
        "id": child_id(cluster_id, "extensions", sc.EXTENSION_NAME),
        "type": EXTENSIONS,
        "name": sc.EXTENSION_NAME,
        "systemData": ctx.system_data(
            ctx.fleet_principal,
            "Application",
            installed,
            rng.randrange(plan.silent_for + 3600, installed),
        ),
        "properties": props,
    }
    if plan.cluster_type == MANAGED:
        props["aksAssignedIdentity"] = {
            "type": "SystemAssigned",
            "principalId": random_uuid(rng),
            "tenantId": ctx.tenant,
        }
    else:
        resource["identity"] = ctx.identity()
    return resource


#: Undeclared configurations of an ``unmanaged_config`` cluster (name -> policy-style body):
#: the sources that 2025-04-01 adds and both ways a bucket is created.
NEW_SHAPES: dict[str, Json] = {
    "podinfo-oci": {
        "namespace": "podinfo",
        "sourceKind": "OCIRepository",
        "ociRepository": {
            "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
            "repositoryRef": {"tag": None, "semver": ">=6.0.0", "digest": None},
            "layerSelector": {
                "mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip",
                "operation": "extract",
            },
            "verify": {
                "provider": "cosign",
                "matchOidcIdentity": [
                    {
                        "issuer": "^https://token.actions.githubusercontent.com$",
                        "subject": "^https://github.com/stefanprodan/podinfo.*$",
                    }
                ],
                "verificationConfig": None,
            },
            "insecure": False,
            "useWorkloadIdentity": False,
            "serviceAccountName": "podinfo-puller",
            "localAuthRef": None,
        },
        "kustomizations": {"podinfo": {"path": "./", "prune": True}},
    },
    "ado-apps": {
        "namespace": "ado-apps",
        "sourceKind": "GitRepository",
        "gitRepository": {
            "url": "https://dev.azure.com/contoso/platform/_git/apps",
            "repositoryRef": {"branch": "main"},
            "provider": "Azure",
        },
        "kustomizations": {"apps": {"path": "./apps", "prune": True}},
    },
    "s3-cli": {
        "namespace": "s3-cli",
        "sourceKind": "Bucket",
        "bucket": {
            "url": "https://s3.eu-west-1.amazonaws.com",
            "bucketName": "contoso-manifests",
            "insecure": False,  # az k8s-configuration flux create --kind bucket
            "accessKey": "AKIAEXAMPLE0000",
            "localAuthRef": None,
        },
        "kustomizations": {"apps": {"path": "./apps", "prune": False}},
    },
    "s3-arm-default": {
        "namespace": "s3-arm-default",
        "sourceKind": "Bucket",
        "bucket": {
            "url": "http://minio.minio.svc:9000",
            "bucketName": "manifests",
            "insecure": True,  # a body without insecure: ARM's swagger default
            "accessKey": None,
            "localAuthRef": "minio-credentials",
        },
        "kustomizations": {"apps": {"path": "./", "prune": False}},
    },
}


def flux_config(
    ctx: RenderContext,
    plan: Plan,
    cluster_id: str,
    name: str,
    body: Json,
    installed: int,
    kind: str,
    created_by: tuple[str, str] | None = None,
) -> Json:
    """One fluxConfigurations resource from a policy body, ARM defaults filled in.

    ``kind`` is the defect this configuration carries (``compliant`` when another one
    of the cluster's configurations carries it).
    """
    rng = ctx.rng
    clock = ctx.clock
    source_kind = body.get("sourceKind", "GitRepository")
    git = body.get("gitRepository") or _SOURCE_STANDIN[source_kind](body)
    ref = git.get("repositoryRef") or {}
    branch = "dev" if kind == BRANCH_DRIFT else ref.get("branch")
    namespace = body.get("namespace", "default")
    sync = git.get("syncIntervalInSeconds", 600)
    kustomizations = {k: _kustomization(k, v) for k, v in body["kustomizations"].items()}
    if kind == DEPENDS_ON_DRIFT:
        kustomizations["apps"]["dependsOn"] = []
    if kind == EXTRA_KUSTOMIZATION:
        kustomizations[sc.DEBUG_KUSTOMIZATION] = _kustomization(
            sc.DEBUG_KUSTOMIZATION, {"path": "./debug", "prune": False}
        )

    silent = plan.silent_for
    sha = ctx.commit(git["url"], str(branch), lagging=silent > 0)
    revision = f"{branch}@sha1:{sha}"
    fetched = silent + rng.randrange(0, sync)
    changed = fetched + rng.randrange(0, 3 * DAY)
    statuses = [
        _object_status(
            name,
            namespace,
            source_kind,
            "Succeeded",
            f"stored artifact for revision '{revision}'",
            clock.ago(changed),
        )
    ]
    failing = next(reversed(kustomizations)) if kind == FLUX_CONFIG_NONCOMPLIANT else None
    for k in kustomizations:
        status = _object_status(
            f"{name}-{k}",
            namespace,
            "Kustomization",
            "ReconciliationSucceeded",
            f"Applied revision: {revision}",
            clock.ago(max(silent, changed - rng.randrange(5, 120))),
        )
        if k == failing:
            status["complianceState"] = "Non-Compliant"
            condition = status["statusConditions"][0]
            condition["status"] = "False"
            condition["reason"] = "HealthCheckFailed"
            condition["message"] = (
                "health check failed after 9m30.1s: timeout waiting for: "
                f"[Deployment/{namespace}/{k} status: 'InProgress']"
            )
        statuses.append(status)

    props: Json = {
        "scope": body.get("scope", "cluster"),
        "namespace": namespace,
        "sourceKind": source_kind,
        "suspend": body.get("suspend", False),
        **_source(body, source_kind, git, branch, sync),
        "kustomizations": kustomizations,
        "statuses": statuses,
        "repositoryPublicKey": "",
        "sourceSyncedCommitId": revision,
        "sourceUpdatedAt": clock.ago(fetched),
        "statusUpdatedAt": clock.ago(silent + rng.randrange(0, 120)),
        "complianceState": "Non-Compliant" if failing else "Compliant",
        "provisioningState": "Succeeded",
        "errorMessage": "",
    }
    if kind == FLUX_CONFIG_FAILED:
        props["provisioningState"] = "Failed"
        props["errorMessage"] = (
            f"Error: {{failed to apply the flux configuration '{name}' to the cluster: "
            "fluxconfig-agent did not acknowledge the request within the timeout}"
        )
    by, by_type = created_by or (ctx.fleet_principal, "Application")
    created = rng.randrange(silent + 3600, max(installed, silent + 7200))
    return {
        "id": child_id(cluster_id, "fluxConfigurations", name),
        "type": FLUX_CONFIGURATIONS,
        "name": name,
        "systemData": ctx.system_data(by, by_type, created, rng.randrange(silent, created)),
        "properties": props,
    }


def new_shapes(ctx: RenderContext, plan: Plan, cluster_id: str, age: int) -> list[Json]:
    """The ``NEW_SHAPES`` configurations of an ``unmanaged_config`` cluster.

    Drawn from a Random of their own, seeded by the cluster's id, so that adding them left
    every other resource of a seed as it was (tests pin seeds that place every defect kind).
    """
    side = copy.copy(ctx)
    side.rng = Random(cluster_id)
    out = [
        flux_config(
            side, plan, cluster_id, name, body, age, COMPLIANT, (side.rng.choice(USERS), "User")
        )
        for name, body in NEW_SHAPES.items()
    ]
    for resource in out:
        # 2025-04-01 answers leave helmReleaseProperties out instead of null (not nullable
        # there), and these shapes are 2025-04-01 answers.
        for status in resource["properties"]["statuses"]:
            if status.get("helmReleaseProperties") is None:
                status.pop("helmReleaseProperties", None)
    return out


def _source(body: Json, kind: str, git: Json, branch: object, sync: int) -> Json:
    """The source properties as ARM returns them: the body's source with defaults filled."""
    intervals = {"timeoutInSeconds": 600, "syncIntervalInSeconds": sync}
    if kind == "GitRepository":
        ref = git.get("repositoryRef") or {}
        out: Json = {
            "url": git["url"],
            **intervals,
            "repositoryRef": {
                "branch": branch,
                "tag": ref.get("tag"),
                "semver": ref.get("semver"),
                "commit": ref.get("commit"),
            },
        }
        if "provider" in git:
            out["provider"] = git["provider"]
        return {"gitRepository": out}
    field = {"OCIRepository": "ociRepository", "Bucket": "bucket"}[kind]
    return {field: {**intervals, **body[field]}}


#: What stands in for ``gitRepository`` while statuses are rendered for another source: the
#: URL and the reference that names the revision Flux reports.
_SOURCE_STANDIN = {
    "OCIRepository": lambda body: {
        "url": body["ociRepository"]["url"],
        "repositoryRef": {"branch": "latest"},
    },
    "Bucket": lambda body: {"url": body["bucket"]["url"], "repositoryRef": {"branch": "bucket"}},
}


def flux_v1(ctx: RenderContext, plan: Plan, cluster_id: str, age: int) -> Json:
    rng = ctx.rng
    created = age - rng.randrange(DAY, 60 * DAY)
    name = sc.FLUX_V1_NAME
    return {
        "id": child_id(cluster_id, "sourceControlConfigurations", name),
        "type": SOURCE_CONTROL_CONFIGURATIONS,
        "name": name,
        "systemData": ctx.system_data(rng.choice(USERS), "User", created, created),
        "properties": {
            "repositoryUrl": "git@github.com:contoso/legacy-gitops.git",
            "operatorNamespace": name,
            "operatorInstanceName": name,
            "operatorType": "Flux",
            "operatorParams": "--git-readonly --git-path=releases/prod",
            "operatorScope": "cluster",
            "sshKnownHostsContents": "",
            "enableHelmOperator": False,
            "repositoryPublicKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"
            + f"{rng.getrandbits(256):064x}",
            "provisioningState": "Succeeded",
            "complianceStatus": {
                "complianceState": "Installed",
                "lastConfigApplied": ctx.clock.ago(plan.silent_for + rng.randrange(0, DAY)),
                "message": '{"OperatorMessage":null,"ClusterState":null}',
                "messageLevel": "Information",
            },
        },
    }


def _kustomization(name: str, body: Json) -> Json:
    """A kustomization as ARM returns it: every field present, defaults filled."""
    return {
        "name": name,
        "path": body.get("path", ""),
        "dependsOn": list(body.get("dependsOn") or ()),
        "timeoutInSeconds": body.get("timeoutInSeconds", 600),
        "syncIntervalInSeconds": body.get("syncIntervalInSeconds", 600),
        "retryIntervalInSeconds": body.get("retryIntervalInSeconds"),
        "prune": body.get("prune", False),
        "force": body.get("force", False),
        "wait": body.get("wait", True),
        "postBuild": body.get("postBuild"),
    }


def _object_status(
    name: str, namespace: str, kind: str, reason: str, message: str, since: str
) -> Json:
    """An ObjectStatus entry of a Ready Flux object (GitRepository or Kustomization)."""
    return {
        "name": name,
        "namespace": namespace,
        "kind": kind,
        "complianceState": "Compliant",
        "appliedBy": None,
        "helmReleaseProperties": None,
        "statusConditions": [
            {
                "lastTransitionTime": since,
                "message": message,
                "reason": reason,
                "status": "True",
                "type": "Ready",
            }
        ],
    }

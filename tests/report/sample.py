"""A realistic recorded history for the store and report tests: three sweeps of ~30 clusters.

The latest sweep holds every state and every finding code (checked by ``test_sample``), hostile
text in tags and messages (``<script>``, quotes, commas, newlines, pipes) for the escaping of
every format, and differences from the sweep before it: new drift, fixed findings, a new
cluster, a gone cluster, state changes. Built with the ``Verdict``/``Finding`` models and
``build_report`` as the engine would, so the fixtures cannot drift from the contract.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fleet.core.vocabulary import Code, Severity, State, worst
from fleet.evaluate.verdicts import Finding, FluxCommit, PolicyResult, Verdict
from fleet.report.model import SweepInfo, build_report

SUB_EU = "00000000-0000-0000-0000-000000000001"
SUB_US = "00000000-0000-0000-0000-000000000002"
SUB_DEV = "00000000-0000-0000-0000-000000000003"
BASELINE = "platform-baseline"
APPS = "team-apps"
KC = "providers/Microsoft.KubernetesConfiguration"
HOSTILE = '<script>alert("x")</script>, "quoted" | pipe\nnewline =cmd'
#: Commit convergence: most clusters on the head of main, some behind, a few not synced yet,
#: one with hostile text where a commit should be.
HEAD = "main@sha1:0ba6f0d30760d567de0bac86c8c4eec13ce1a590"
BEHIND = "main@sha1:5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"


def commit_for(n: int) -> str | None:
    """The commit the n-th cluster of a sweep runs (deterministic)."""
    if n == 5:
        return HOSTILE
    if n % 9 == 4:
        return None
    return BEHIND if n % 3 == 1 else HEAD


def cluster_id(sub: str, rg: str, name: str, arc: bool = False) -> str:
    if arc:
        provider = "Microsoft.Kubernetes/connectedClusters"
    else:
        provider = "Microsoft.ContainerService/managedClusters"
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/{name}"


def ext_id(cid: str) -> str:
    return f"{cid}/{KC}/extensions/flux"


def cfg_id(cid: str, name: str = "cluster-config") -> str:
    return f"{cid}/{KC}/fluxConfigurations/{name}"


class _Builder:
    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []

    def add(
        self,
        name: str,
        sub: str,
        rg: str,
        *,
        arc: bool = False,
        location: str = "westeurope",
        version: str | None = "1.17.3",
        in_window: bool | None = True,
        findings: list[dict[str, Any]] | None = None,
        policies: dict[str, State] | None = None,
        exempt: dict[str, tuple[str, date]] | None = None,
        tags: dict[str, str] | None = None,
        status: str | None = None,
        arm64: bool = False,
    ) -> str:
        cid = cluster_id(sub, rg, name, arc)
        fs = []
        for f in findings or ():
            data = dict(f)
            data.setdefault("policy", BASELINE)
            resource = data.pop("resource", "ext")
            short = {"ext": ext_id(cid), "cfg": cfg_id(cid), "cluster": cid}
            data["resource"] = short.get(resource, resource)
            fs.append(Finding(**data))
        wanted = {BASELINE: State.COMPLIANT} if policies is None else policies
        results = [
            PolicyResult(name=p, state=s, mode="enforce" if p == BASELINE else "audit")
            for p, s in wanted.items()
        ]
        for p, (reason, until) in (exempt or {}).items():
            results.append(
                PolicyResult(
                    name=p, state=State.EXEMPT, mode="audit", reason=reason, expires_on=until
                )
            )
        results.sort(key=lambda r: r.name)
        self.verdicts.append(
            Verdict(
                id=cid,
                name=name,
                type="connectedClusters" if arc else "managedClusters",
                subscription_id=sub,
                resource_group=rg,
                location=location,
                state=worst([r.state for r in results]),
                policies=results,
                findings=fs,
                extension_version=version,
                extension_version_in_window=in_window if version else None,
                tags=tags or {"env": "prod"},
                arm64=arm64,
                status=status or ("Connected" if arc else "Running"),
                flux_commits=[
                    FluxCommit(
                        configuration="cluster-config",
                        commit=commit_for(len(self.verdicts)),
                        updated_at="2026-11-25T05:40:00Z",
                    )
                ],
            )
        )
        return cid


def _f(code: Code, message: str, resource: str = "ext", **kw: Any) -> dict[str, Any]:
    """A finding as keyword arguments of ``Finding`` (``resource`` may be ext/cfg/cluster)."""
    return {"code": code, "message": message, "resource": resource, **kw}


def _drift(
    path: str,
    desired: Any,
    actual: Any,
    *,
    code: Code = Code.FLUX_CONFIG_DRIFT,
    resource: str = "cfg",
) -> dict[str, Any]:
    what = "flux configuration 'cluster-config'" if resource == "cfg" else "extension"
    message = f"{what} {path} is {actual!r}, policy wants {desired!r}"
    return _f(code, message, resource, path=path, desired=desired, actual=actual)


NC = {BASELINE: State.NONCOMPLIANT}
HIGH = Severity.HIGH
WINDOW = ["1.17.3", "1.17.2", "1.16.12"]
VERSION = "/properties/currentVersion"
STATE = "/properties/provisioningState"
BRANCH = "/properties/gitRepository/repositoryRef/branch"
CFG_MISSING = "flux configuration 'cluster-config' does not exist on the cluster"


def _fleet(stage: int) -> list[Verdict]:
    """The fleet at sweep ``stage`` (0 = oldest, 2 = latest)."""
    b = _Builder()
    # Ten healthy clusters over three subscriptions, AKS and Arc, every supported version.
    for i in range(10):
        sub = [SUB_EU, SUB_US, SUB_DEV][i % 3]
        # aks-004 was missing its configuration until the latest sweep (a fixed finding).
        fixed_later = i == 4 and stage < 2
        b.add(
            f"aks-{i:03d}" if i % 4 else f"arc-{i:03d}",
            sub,
            f"rg-prod-{i % 2}",
            arc=i % 4 == 0,
            location="eastus" if sub == SUB_US else "westeurope",
            version=WINDOW[i % 3],
            findings=[_f(Code.FLUX_CONFIG_MISSING, CFG_MISSING, "cfg", severity=HIGH)]
            if fixed_later
            else [],
            policies=NC if fixed_later else None,
            tags={"env": "prod", "ring": str(i % 3), "owner": HOSTILE if i == 7 else "platform"},
        )
    b.add(
        "aks-ext-missing",
        SUB_EU,
        "rg-prod-1",
        version=None,
        policies=NC,
        findings=[
            _f(
                Code.EXTENSION_MISSING,
                "the microsoft.flux extension is not installed",
                severity=HIGH,
            )
        ],
    )
    ext_drift = _drift(
        "/properties/configurationSettings/multiTenancy.enforce",
        "true",
        "false",
        code=Code.EXTENSION_DRIFT,
        resource="ext",
    )
    # aks-ext-drift drifted between the first and the second sweep.
    b.add(
        "aks-ext-drift",
        SUB_EU,
        "rg-prod-1",
        findings=[ext_drift] if stage >= 1 else [],
        policies=NC if stage >= 1 else None,
    )
    b.add(
        "aks-ext-failed",
        SUB_EU,
        "rg-prod-1",
        policies=NC,
        findings=[
            _f(
                Code.EXTENSION_FAILED,
                "the microsoft.flux extension is in provisioningState"
                " Failed: helm install timed out",
                path=STATE,
                desired="Succeeded",
                actual="Failed",
                severity=HIGH,
            )
        ],
    )
    b.add(
        "aks-old-version",
        SUB_US,
        "rg-prod-0",
        location="eastus",
        version="1.15.2",
        in_window=False,
        policies=NC,
        findings=[
            _f(
                Code.EXTENSION_VERSION_OUT_OF_WINDOW,
                "1.15.2 is older than the N-2 window (1.17.3, 1.17.2, 1.16.12)",
                path=VERSION,
                desired=WINDOW,
                actual="1.15.2",
            )
        ],
    )
    b.add(
        "aks-arm64",
        SUB_US,
        "rg-prod-0",
        location="eastus",
        version="1.6.3",
        in_window=False,
        arm64=True,
        policies=NC,
        findings=[
            _f(
                Code.EXTENSION_VERSION_OUT_OF_WINDOW,
                "1.6.3 is older than the N-2 window (1.17.3, 1.17.2, 1.16.12)",
                path=VERSION,
                desired=WINDOW,
                actual="1.6.3",
            ),
            _f(
                Code.EXTENSION_VERSION_UNSUPPORTED_ARCH,
                "1.6.3 is below 1.7.0, the oldest microsoft.flux version ARM64 clusters support",
                path=VERSION,
                desired=">= 1.7.0",
                actual="1.6.3",
                severity=HIGH,
            ),
        ],
    )
    b.add(
        "aks-cfg-missing",
        SUB_US,
        "rg-prod-1",
        location="eastus",
        policies=NC,
        findings=[_f(Code.FLUX_CONFIG_MISSING, CFG_MISSING, "cfg", severity=HIGH)],
    )
    drifts = [_drift(BRANCH, "main", "dev")]
    if stage >= 2:  # new drift in the latest sweep, with markup in the value
        drifts.append(
            _drift(
                "/properties/kustomizations/apps/path",
                "./apps/production",
                "./apps/staging </script><b>x</b>",
            )
        )
    # Someone changed the configuration by hand: who and when ride on every finding about it.
    who = {"by": "ops@contoso.com", "by_type": "User", "at": "2026-11-22T09:30:00Z"}
    drifts = [{**d, "last_modified": who} for d in drifts]
    b.add("aks-cfg-drift", SUB_EU, "rg-prod-0", findings=drifts, policies=NC)
    b.add(
        "aks-cfg-failed",
        SUB_EU,
        "rg-prod-0",
        policies=NC,
        findings=[
            _f(
                Code.FOREIGN_WRITER,
                "last modified by ops@contoso.com (User) at 2026-11-22T09:30:00Z, not by fleet",
                "cfg",
                severity=Severity.WARNING,
                last_modified={
                    "by": "ops@contoso.com",
                    "by_type": "User",
                    "at": "2026-11-22T09:30:00Z",
                },
            ),
            _f(
                Code.FLUX_CONFIG_FAILED,
                "flux configuration 'cluster-config' is in "
                "provisioningState Failed: source not found",
                "cfg",
                path=STATE,
                desired="Succeeded",
                actual="Failed",
                severity=HIGH,
            ),
            _f(
                Code.SECRET_ROTATION_PENDING,
                "protected setting httpsKey (keyvault:kv-platform/git-token): Key Vault has "
                "version 0f1e2d3c, fleet applied 9a8b7c6d: the rotation is pending",
                "cfg",
                path="/properties/configurationProtectedSettings/httpsKey",
                desired="0f1e2d3c",
                actual="9a8b7c6d",
            ),
            _f(
                Code.FLUX_OBJECT_NOT_READY,
                "Flux HelmRelease apps/podinfo of flux configuration 'cluster-config' is not "
                "ready (InstallFailed): cross-namespace references have been blocked",
                "cfg",
                path="/properties/statuses/HelmRelease/apps/podinfo",
                desired="Ready",
                actual={"kind": "HelmRelease", "namespace": "apps", "name": "podinfo"},
            ),
            _f(
                Code.FLUX_CONFIG_PENDING,
                "flux configuration 'cluster-config' has been Pending for 3 h",
                "cfg",
                path="/properties/complianceState",
                desired="Compliant",
                actual="Pending",
            ),
            _f(
                Code.CLUSTER_INELIGIBLE,
                "cannot take the extension: Kubernetes 1.19.16 is older than 1.20.6",
                "cluster",
                severity=HIGH,
            ),
        ],
    )
    b.add(
        "arc-cfg-noncompliant",
        SUB_DEV,
        "rg-edge",
        arc=True,
        policies=NC,
        findings=[
            _f(
                Code.FLUX_CONFIG_NONCOMPLIANT,
                "Flux reports flux configuration "
                "'cluster-config' as Non-Compliant: a source or kustomization does not "
                "reconcile",
                "cfg",
                path="/properties/complianceState",
                desired="Compliant",
                actual="Non-Compliant",
            ),
            _f(
                Code.UNRECOGNISED_SHAPE,
                "properties.ociRepository has the property 'cosignKeyless', which fleet does "
                "not know (a newer API shape; judged on what fleet knows)",
                "cfg",
                policy=None,
                severity=Severity.INFO,
            ),
        ],
    )
    unmanaged = cluster_id(SUB_DEV, "rg-dev", "aks-unmanaged")
    b.add(
        "aks-unmanaged",
        SUB_DEV,
        "rg-dev",
        policies=NC,
        findings=[
            _f(
                Code.FLUX_CONFIG_UNMANAGED,
                "flux configuration 'legacy-apps' is not "
                "declared by any policy; remediation.deleteUnmanaged will delete it",
                cfg_id(unmanaged, "legacy-apps"),
                severity=Severity.LOW,
            )
        ],
    )
    ungoverned = cluster_id(SUB_DEV, "rg-dev", "aks-unmanaged-ungoverned")
    b.add(
        "aks-unmanaged-ungoverned",
        SUB_DEV,
        "rg-dev",
        findings=[
            _f(
                Code.FLUX_CONFIG_UNMANAGED,
                "flux configuration 'sandbox' is not declared "
                "by any policy (not counted: no targeting policy sets "
                "remediation.deleteUnmanaged)",
                cfg_id(ungoverned, "sandbox"),
                policy=None,
                severity=Severity.WARNING,
            )
        ],
    )
    v1 = f"{cluster_id(SUB_DEV, 'rg-dev', 'aks-flux-v1')}/{KC}/sourceControlConfigurations/legacy"
    b.add(
        "aks-flux-v1",
        SUB_DEV,
        "rg-dev",
        policies=NC,
        findings=[
            _f(
                Code.FLUX_V1_PRESENT,
                "Flux v1 configuration 'legacy' blocks the "
                "microsoft.flux extension; migrate it to a Flux v2 configuration and "
                "delete it (remediation.migrateFluxV1)",
                v1,
                severity=HIGH,
            )
        ],
    )
    stale = _drift(
        "/properties/gitRepository/url",
        "https://github.com/org/fleet",
        "https://github.com/org/old",
    )
    b.add(
        "arc-offline",
        SUB_DEV,
        "rg-edge",
        arc=True,
        status="Offline",
        policies={BASELINE: State.UNKNOWN},
        findings=[
            _f(
                Code.CLUSTER_UNREACHABLE,
                "the Arc cluster is Offline since 2026-11-20T10:00:00Z: changes cannot be applied",
                "cluster",
                severity=Severity.LOW,
            ),
            {**stale, "severity": Severity.INFO},
            _f(
                Code.FLUX_STATUS_STALE,
                "Flux last reported on flux configuration 'edge-baseline' 5 days ago",
                "cfg",
                path="/properties/statusUpdatedAt",
                actual="2026-11-20T10:00:00Z",
                severity=Severity.LOW,
            ),
        ],
    )
    b.add(
        "aks-stopped",
        SUB_US,
        "rg-prod-1",
        location="eastus",
        status="Stopped",
        policies={BASELINE: State.UNKNOWN},
        findings=[
            _f(
                Code.CLUSTER_STOPPED,
                "the AKS cluster is stopped: extension operations are not possible",
                "cluster",
                severity=Severity.LOW,
            )
        ],
    )
    # Two policies of equal priority started to disagree in the second sweep.
    conflict_state = State.CONFLICTING if stage >= 1 else State.COMPLIANT
    conflicts = [
        _f(
            Code.POLICY_CONFLICT,
            f"policies of equal priority disagree on {BRANCH}",
            "cfg",
            path=BRANCH,
            desired={BASELINE: "main", APPS: "release"},
            actual=None,
            policy=p,
            severity=HIGH,
        )
        for p in (BASELINE, APPS)
    ]
    b.add(
        "aks-conflict",
        SUB_EU,
        "rg-prod-0",
        findings=conflicts if stage >= 1 else [],
        policies={BASELINE: conflict_state, APPS: conflict_state},
    )
    b.add(
        "aks-read-error",
        SUB_US,
        "rg-prod-0",
        location="eastus",
        version=None,
        policies={BASELINE: State.ERROR},
        findings=[
            _f(
                Code.READ_ERROR,
                "the cluster's configuration could not be read: 503 "
                "ServiceUnavailable after 4 attempts",
                "cluster",
                severity=HIGH,
            )
        ],
    )
    b.add(
        "aks-lab",
        SUB_DEV,
        "rg-lab",
        policies={},
        exempt={BASELINE: ("lab cluster, see TICKET-42", date(2027, 1, 31))},
    )
    b.add(
        "aks-two-policies",
        SUB_EU,
        "rg-prod-1",
        policies={BASELINE: State.NONCOMPLIANT, APPS: State.COMPLIANT},
        findings=[
            _drift("/properties/kustomizations/infra/prune", True, False),
            _drift(
                "/properties/autoUpgradeMinorVersion",
                True,
                False,
                code=Code.EXTENSION_DRIFT,
                resource="ext",
            ),
        ],
    )
    if stage >= 2:
        b.add("aks-new-1", SUB_EU, "rg-prod-2", tags={"env": "prod", "ring": "2"})
        b.add("aks-new-2", SUB_US, "rg-prod-2", location="eastus", version="1.17.2")
    if stage < 2:
        b.add("aks-retired", SUB_US, "rg-prod-1", location="eastus", version="1.16.12")
    return b.verdicts


SWEEP_IDS = ("20261123T060000Z-aaaaaa", "20261124T060000Z-bbbbbb", "20261125T060000Z-cccccc")


def reports() -> list[dict[str, Any]]:
    """The three sweeps' reports, oldest first."""
    out = []
    start = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    for stage, sweep_id in enumerate(SWEEP_IDS):
        verdicts = _fleet(stage)
        begun = start + timedelta(days=stage)
        info = SweepInfo(
            id=sweep_id,
            started_at=begun,
            finished_at=begun + timedelta(seconds=42.5 + stage),
            policy_revision=f"rev{stage}abcdef",
            engine="local",
            policies=[BASELINE, APPS],
            subscriptions=[SUB_EU, SUB_US, SUB_DEV],
            targets=len(verdicts),
            requests={"reads:200": 90 + stage, "reads:429": stage},
        )
        out.append(build_report(info, verdicts))
    return out


def latest() -> dict[str, Any]:
    return reports()[-1]

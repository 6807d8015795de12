"""Evaluation: judge one observed cluster against its desired state (docs/contracts.md, Compliance
vocabulary).

``evaluate(observed, desired, catalog=, now=, fingerprints=)`` returns the cluster's ``Verdict``:
a finding for everything wrong (or worth knowing), each attributed to the policy that asked for
the field concerned, and from them the state of every policy and of the cluster.

The order of judgement mirrors what can be trusted:

1. a read error means nothing was seen: every judged policy is ``error``;
2. an unreachable Arc cluster or a stopped AKS cluster cannot apply anything and its Flux
   status is stale: its policies are ``unknown``; ARM-level findings are still listed, with
   severity ``info`` so that they count for nothing, and Flux compliance is not judged;
3. otherwise Flux v1, the extension, the version window, every flux configuration, unmanaged
   configurations and policy conflicts are judged.

Conflicting fields are never judged (no one owns them); the rest of such a resource is.
Observed JSON is untrusted: any shape is accepted and never raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet.core.clusters import ClusterFacts
from fleet.core.diffing import MAPPING as _MAP
from fleet.core.diffing import Difference, copy_json, diff, overlaps
from fleet.core.vocabulary import (
    CODE_SEVERITY,
    CODE_STATE,
    NON_COUNTING,
    Code,
    Severity,
    State,
    worst,
)
from fleet.desired.fingerprints import Fingerprints, short
from fleet.desired.render import VERSION_PATH, WINDOW_PATH, DesiredExtension, DesiredState
from fleet.evaluate.verdicts import Finding, PolicyResult, Verdict
from fleet.evaluate.versions import ARM64_MINIMUM, DEFAULT_WINDOW, Catalog, judge, parse_version
from fleet.observe import essence
from fleet.observe.essence import SOURCE_CONTROL_CONFIGURATIONS
from fleet.observe.observed import ObservedCluster
from fleet.observe.view import ObservedView, properties, resource_id, resource_name, view
from fleet.observe.wellformed import checked

#: Arc: a change pending longer than this times out, so a cluster silent for longer is
#: treated as unreachable even when ARM still says Connected (docs/contracts.md, Domain facts).
STALE_AFTER = timedelta(hours=48)
CURRENT_VERSION_PATH = "/properties/currentVersion"
_UNREACHABLE_STATES = {"offline", "expired", "agentnotinstalled"}
_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}

#: Who owns the field at a JSON pointer (the policies a finding there counts against).
Owners = Callable[[str], Sequence[str]]

# --- small helpers ------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A short printable form of a value for messages."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        text = json.dumps(value)
    else:
        try:
            text = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reachability(facts: ClusterFacts, now: datetime) -> tuple[Code, str] | None:
    """Why the cluster cannot be judged now (code, message), or None when it can."""
    if facts.cluster_type == "managedClusters":
        if (facts.power_state or "").lower() == "stopped":
            return (
                Code.CLUSTER_STOPPED,
                "AKS cluster is stopped (powerState Stopped): extension operations cannot run",
            )
        return None
    status = facts.connectivity_status or ""
    last = facts.last_connectivity_time
    seen = f", last connected {last.isoformat()}" if last else ""
    if status.lower() in _UNREACHABLE_STATES:
        return (
            Code.CLUSTER_UNREACHABLE,
            f"Arc cluster is {status}{seen}: changes cannot reach it",
        )
    if last is not None and _aware(now) - _aware(last) > STALE_AFTER:
        return (
            Code.CLUSTER_UNREACHABLE,
            f"Arc cluster reports {status or 'no status'} but was last connected "
            f"{last.isoformat()}, more than 48 h ago: pending changes time out",
        )
    return None


def cluster_status(facts: ClusterFacts) -> str | None:
    return (
        facts.connectivity_status
        if facts.cluster_type == "connectedClusters"
        else (facts.power_state)
    )


# --- the evaluation -----------------------------------------------------------------------


class _Findings:
    """Collects findings with the default severity of their code."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(
        self,
        code: Code,
        policies: Sequence[str | None],
        resource: str,
        message: str,
        *,
        path: str | None = None,
        desired: Any = None,
        actual: Any = None,
        severity: Severity | None = None,
    ) -> None:
        sev = severity or CODE_SEVERITY[code]
        for policy in policies:
            # Plain validated construction: with pydantic 2.14 it is faster than
            # model_construct for models this small (measured in benchmarks/bench_engine.py).
            self.items.append(
                Finding(
                    code=code,
                    policy=policy,
                    resource=resource,
                    path=path,
                    desired=desired,
                    actual=actual,
                    message=message,
                    severity=sev,
                )
            )


def evaluate(
    observed: ObservedCluster,
    desired: DesiredState,
    *,
    catalog: Catalog,
    now: datetime,
    fingerprints: Fingerprints | None = None,
    seen: ObservedView | None = None,
) -> Verdict:
    """Judge one cluster. Pure: the same inputs always give the same verdict.

    ``seen`` is the parsed view of ``observed`` when the caller already has it (``judge``
    shares one between evaluation and planning). An observation that is not well-formed ARM
    is judged as a read error (``fleet.observe.wellformed``).
    """
    unchecked, observed = observed, checked(observed)
    if observed is not unchecked:
        seen = None
    facts = observed.facts
    cid = facts.id
    found = _Findings()
    version: str | None = None
    in_window: bool | None = None

    if observed.read_error is not None:
        found.add(
            Code.READ_ERROR,
            desired.policies,
            cid,
            f"the cluster's configuration could not be read: {observed.read_error}",
        )
        return _verdict(observed, desired, found.items, None, None)

    blocked = reachability(facts, now)
    stale = blocked is not None
    if seen is None:
        seen = view(observed, desired.extension.name if desired.extension else None)

    _judge_flux_v1(observed, desired, found)
    version, in_window = _judge_extension(seen, desired, found, catalog, fingerprints)
    _judge_flux_configs(seen, desired, found, fingerprints, judge_flux_status=not stale)

    if blocked is not None:
        # Nothing seen on this cluster is counted: it may be stale, and nothing can be fixed
        # until it is back. The findings stay in the report for information.
        code, message = blocked
        note = "not counted: " + (
            "cluster stopped" if code is Code.CLUSTER_STOPPED else "cluster unreachable"
        )
        found.items = [
            Finding(
                code=f.code,
                policy=f.policy,
                resource=f.resource,
                path=f.path,
                desired=f.desired,
                actual=f.actual,
                message=f"{f.message} ({note})",
                severity=Severity.INFO,
            )
            for f in found.items
        ]
        found.add(code, desired.policies, cid, message)

    for conflict in desired.conflicts:
        values = ", ".join(f"{p}: {_show(v)}" for p, v in sorted(conflict.values.items()))
        found.add(
            Code.POLICY_CONFLICT,
            conflict.policies,
            conflict.resource,
            f"policies of equal priority disagree on {conflict.path} ({values}); the field is "
            "neither judged nor remediated until one policy changes its priority or value",
            path=conflict.path,
            desired=copy_json(conflict.values),
        )
    return _verdict(observed, desired, found.items, version, in_window)


def _judge_flux_v1(observed: ObservedCluster, desired: DesiredState, found: _Findings) -> None:
    if not observed.source_control_configurations:
        return
    if desired.extension is None and not desired.flux_configurations:
        return
    owners = sorted(
        set(desired.extension.policies if desired.extension else ()) | set(desired.flux_policies)
    )
    cid = observed.facts.id
    for resource in observed.source_control_configurations:
        name = resource_name(resource) or "?"
        rid = resource_id(resource, cid, SOURCE_CONTROL_CONFIGURATIONS, name)
        found.add(
            Code.FLUX_V1_PRESENT,
            owners,
            rid,
            f"Flux v1 configuration {name!r} blocks the microsoft.flux extension; migrate it "
            "to a Flux v2 configuration and delete it (remediation.migrateFluxV1)",
        )


def _drift_findings(
    code: Code,
    diffs: list[Difference],
    conflict_paths: Sequence[str],
    owners_of: Owners,
    resource: str,
    kind: str,
    found: _Findings,
) -> None:
    for d in diffs:
        if any(overlaps(d.path, c) for c in conflict_paths):
            continue
        if d.actual is None:
            what = f"{kind} lacks {d.path} (policy wants {_show(d.desired)})"
        elif d.desired is None:
            what = f"{kind} has {d.path} = {_show(d.actual)}, which no policy declares"
        else:
            what = f"{kind} {d.path} is {_show(d.actual)}, policy wants {_show(d.desired)}"
        found.add(
            code,
            owners_of(d.path),
            resource,
            what,
            path=d.path,
            desired=copy_json(d.desired),
            actual=copy_json(d.actual),
        )


def _secret_findings(
    code: Code,
    fingerprints: Fingerprints | None,
    resource: str,
    protected: Mapping[str, str],
    owners: Owners,
    found: _Findings,
) -> None:
    if fingerprints is None or not protected:
        return
    for drift in fingerprints.drift(resource, protected):
        found.add(
            code,
            owners(drift.path),
            resource,
            f"protected setting {drift.setting} ({drift.ref}) no longer matches what fleet "
            f"applied (fingerprint {short(drift.desired)}, applied {short(drift.applied)})",
            path=drift.path,
            desired=short(drift.desired),
            actual=short(drift.applied),
        )


def _judge_extension(
    seen: ObservedView,
    desired: DesiredState,
    found: _Findings,
    catalog: Catalog,
    fingerprints: Fingerprints | None,
) -> tuple[str | None, bool | None]:
    facts = seen.observed.facts
    d = desired.extension
    ext = seen.extension
    if d is None:
        # No policy declares the extension, but flux configurations need it (Azure installs
        # it on the first PUT): it is not missing, yet what is installed must be supported.
        if ext is None or seen.extension_id is None:
            return None, None
        rid = seen.extension_id
        if not desired.flux_policies:
            return _text(properties(ext).get("currentVersion")), None
        return _judge_version(
            ext, rid, None, desired.flux_policies, desired.flux_policies, facts, catalog, found
        )

    if ext is None or seen.extension_id is None or seen.extension_essence is None:
        found.add(
            Code.EXTENSION_MISSING,
            d.policies,
            d.resource,
            "the microsoft.flux extension is not installed",
        )
        _arm64_guard(d, d.resource, None, facts, found)
        return None, None

    rid = seen.extension_id
    props = properties(ext)
    state = _text(props.get("provisioningState"))
    if state is not None and state.lower() == "failed":
        found.add(
            Code.EXTENSION_FAILED,
            d.policies,
            rid,
            "the microsoft.flux extension is in provisioningState Failed" + _error_info(props),
            path="/properties/provisioningState",
            desired="Succeeded",
            actual=state,
        )
    obs = essence.restrict_extension(
        seen.extension_essence, d.fields, name=d.name_governed, settings=d.settings
    )
    seen_name = obs.get("name")
    if d.name_governed and isinstance(seen_name, str) and seen_name.lower() == d.name.lower():
        obs["name"] = d.name  # ARM names are case-insensitive
    _drift_findings(
        Code.EXTENSION_DRIFT,
        diff(d.essence, obs),
        d.conflict_paths,
        d.owners_of,
        rid,
        "extension",
        found,
    )
    _secret_findings(Code.EXTENSION_DRIFT, fingerprints, rid, d.protected, d.owners_of, found)
    current = _text(props.get("currentVersion"))
    _arm64_guard(d, rid, current, facts, found)
    if WINDOW_PATH in d.conflict_paths:
        return current, None
    return _judge_version(
        ext, rid, d, d.window_owners or d.policies, d.policies, facts, catalog, found
    )


def _error_info(props: Mapping[str, Any]) -> str:
    info = props.get("errorInfo")
    if isinstance(info, _MAP):
        message = _text(info.get("message")) or _text(info.get("code"))
        if message:
            return f": {message[:200]}"
    return ""


def _arm64_guard(
    d: DesiredExtension, rid: str, current: str | None, facts: ClusterFacts, found: _Findings
) -> None:
    if not (facts.arm64 and d.version):
        return
    pinned = parse_version(d.version)
    if pinned is not None and pinned < ARM64_MINIMUM:
        found.add(
            Code.EXTENSION_VERSION_UNSUPPORTED_ARCH,
            d.owners_of(VERSION_PATH),
            rid,
            f"the policy pins version {d.version}, but ARM64 clusters need {ARM64_MINIMUM} "
            "or later",
            path=VERSION_PATH,
            desired=d.version,
            actual=current,
        )


def _judge_version(
    ext: Any,
    rid: str,
    d: DesiredExtension | None,
    window_owners: Sequence[str],
    arch_owners: Sequence[str],
    facts: ClusterFacts,
    catalog: Catalog,
    found: _Findings,
) -> tuple[str | None, bool | None]:
    props = properties(ext)
    current = _text(props.get("currentVersion"))
    # The train the policies ask for, else Stable: Microsoft's support window is stated over
    # releases, and a train nobody governs says nothing about which releases are current.
    train = (
        _text(d.body["properties"].get("releaseTrain"))
        if d is not None and "releaseTrain" in d.fields
        else None
    )
    window = d.version_window if d is not None else DEFAULT_WINDOW
    result = judge(
        current,
        catalog=catalog,
        train=train,
        window=window,
        arm64=facts.arm64,
        pinned=props.get("autoUpgradeMinorVersion") is False,
    )
    for code in result.codes:
        # The window is a policy's choice (its owner answers for it); the ARM64 floor is a
        # property of the extension itself, so every policy that declares it answers for it.
        if code is Code.EXTENSION_VERSION_OUT_OF_WINDOW:
            found.add(
                code,
                window_owners,
                rid,
                result.message,
                path=CURRENT_VERSION_PATH,
                desired=list(result.window_versions),
                actual=current,
            )
        else:
            found.add(
                code,
                arch_owners,
                rid,
                f"{current} is below {ARM64_MINIMUM}, the oldest microsoft.flux version "
                "ARM64 clusters support",
                path=CURRENT_VERSION_PATH,
                desired=f">= {ARM64_MINIMUM}",
                actual=current,
            )
    return current, result.in_window


def _judge_flux_configs(
    seen: ObservedView,
    desired: DesiredState,
    found: _Findings,
    fingerprints: Fingerprints | None,
    *,
    judge_flux_status: bool,
) -> None:
    on_cluster = seen.flux
    for name, dc in desired.flux_configurations.items():
        config = on_cluster.get(name.lower())
        if config is None:
            found.add(
                Code.FLUX_CONFIG_MISSING,
                dc.policies,
                dc.resource,
                f"flux configuration {name!r} does not exist on the cluster",
            )
            continue
        rid = config.id
        props = properties(config.resource)
        state = _text(props.get("provisioningState"))
        if state is not None and state.lower() == "failed":
            error = _text(props.get("errorMessage"))
            found.add(
                Code.FLUX_CONFIG_FAILED,
                dc.policies,
                rid,
                f"flux configuration {name!r} is in provisioningState Failed"
                + (f": {error[:200]}" if error else ""),
                path="/properties/provisioningState",
                desired="Succeeded",
                actual=state,
            )
        compliance = _text(props.get("complianceState"))
        if (
            judge_flux_status
            and compliance is not None
            and compliance.replace("-", "").replace("_", "").lower() == "noncompliant"
        ):
            found.add(
                Code.FLUX_CONFIG_NONCOMPLIANT,
                dc.policies,
                rid,
                f"Flux reports flux configuration {name!r} as {compliance}: a source or "
                "kustomization does not reconcile",
                path="/properties/complianceState",
                desired="Compliant",
                actual=compliance,
            )
        policies = dc.policies

        def owners(_path: str, policies: tuple[str, ...] = policies) -> tuple[str, ...]:
            return policies

        _drift_findings(
            Code.FLUX_CONFIG_DRIFT,
            diff(dc.essence, config.essence),
            dc.conflict_paths,
            owners,
            rid,
            f"flux configuration {name!r}",
            found,
        )
        _secret_findings(Code.FLUX_CONFIG_DRIFT, fingerprints, rid, dc.protected, owners, found)

    deleters = [p for p in desired.policies if desired.flags[p].delete_unmanaged]
    for key in sorted(on_cluster):
        if key in desired.declared_names:
            continue
        name, rid = on_cluster[key].name, on_cluster[key].id
        if deleters:
            found.add(
                Code.FLUX_CONFIG_UNMANAGED,
                deleters,
                rid,
                f"flux configuration {name!r} is not declared by any policy; "
                "remediation.deleteUnmanaged will delete it",
                severity=Severity.LOW,
            )
        else:
            found.add(
                Code.FLUX_CONFIG_UNMANAGED,
                [None],
                rid,
                f"flux configuration {name!r} is not declared by any policy (not counted: no "
                "targeting policy sets remediation.deleteUnmanaged)",
                severity=Severity.WARNING,
            )


def _finding_key(f: Finding) -> tuple[str, str, str, str, int]:
    return (
        f.resource.lower(),
        f.code.value,
        f.path or "",
        f.policy or "",
        _SEVERITY_RANK[f.severity],
    )


def _verdict(
    observed: ObservedCluster,
    desired: DesiredState,
    findings: list[Finding],
    version: str | None,
    in_window: bool | None,
) -> Verdict:
    facts = observed.facts
    states: dict[str, list[State]] = {p: [] for p in desired.policies}
    for f in findings:
        if f.policy is not None and f.severity not in NON_COUNTING and f.policy in states:
            states[f.policy].append(CODE_STATE[f.code])
    results = [
        PolicyResult(name=p, state=worst(s), mode=desired.modes.get(p, "audit"))
        for p, s in states.items()
    ]
    results += [
        PolicyResult(
            name=e.name,
            state=State.EXEMPT,
            mode=e.mode,
            reason=e.reason,
            expires_on=e.expires_on,
        )
        for e in desired.exempt
    ]
    results.sort(key=lambda r: r.name)
    findings.sort(key=_finding_key)
    return Verdict(
        id=facts.id,
        name=facts.name,
        type=facts.cluster_type,
        subscription_id=facts.subscription_id,
        resource_group=facts.resource_group,
        location=facts.location,
        state=worst([r.state for r in results]),
        policies=results,
        findings=findings,
        extension_version=version,
        extension_version_in_window=in_window,
        overrides=list(desired.overrides),
        tags=dict(facts.tags),
        arm64=facts.arm64,
        status=cluster_status(facts),
    )
